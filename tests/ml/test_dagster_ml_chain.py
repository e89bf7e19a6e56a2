"""The whole chain through Dagster with backend=ml on tiny random-weight models in the real formats."""
import json

import dagster as dg
from PIL import Image

from dagster_helpers import drop, materialize_range, tick
from host_helpers import ML as TINY_ML
from v2v_resources.settings import deep_merge

ML = deep_merge(TINY_ML, {"phase2": {"iou_retry": {"max_retries": 0}},
                          "phase4": {"trace_long_side": 256, "preview_long_side": 128,
                                     "quality": {"min_agreement": 0.0}}})


def test_whole_chain_with_ml_backends(home, instance, sample_dir, tiny_manifest, monkeypatch, tmp_path):
    monkeypatch.setenv("V2V_MODELS", str(tiny_manifest.parent))
    monkeypatch.setenv("V2V_MODELS_MANIFEST", str(tiny_manifest))
    for i in range(2):  # cut-outs: random SAM weights give arbitrary masks, the alpha gives the real one
        rgba = Image.open(sample_dir / f"sample-{i:05d}.jpg").convert("RGBA")
        rgba.putalpha(Image.open(sample_dir / f"sample-{i:05d}.mask.png").convert("L"))
        rgba.save(tmp_path / f"cutout-{i}.png")
        drop(home, tmp_path / f"cutout-{i}.png")
    keys = list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)
    run = materialize_range(instance, home, keys[0], keys[-1], overrides_json=json.dumps(ML))
    assert run.success
    assert instance.get_materialized_partitions(dg.AssetKey("vector_svg")) == set(keys)
    for key in keys:
        backends = {a: json.loads(home.path(a, key, "meta.json").read_text())["backend"]
                    for a in ("clean_plate", "illustration", "palette_raster")}
        assert backends == {"clean_plate": "ml", "illustration": "ml", "palette_raster": "ml"}
        ill = json.loads(home.path("illustration", key, "meta.json").read_text())
        assert ill["metadata"]["width"] == 64 or ill["metadata"]["height"] == 64
