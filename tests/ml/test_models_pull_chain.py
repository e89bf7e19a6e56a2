"""The whole chain through Dagster (backend=ml) on the files `v2v models pull` fetched from the local endpoint:
the published layouts (fp16 variants, params_ema, LaMa converted from its TorchScript archive) are what runs."""
import json

import dagster as dg
from PIL import Image

from dagster_helpers import drop, materialize_range, tick
from test_dagster_ml_chain import ML


def test_whole_chain_on_pulled_models(pulled, home, instance, sample_dir, monkeypatch, tmp_path):
    vol, manifest, _ = pulled
    monkeypatch.setenv("V2V_MODELS", str(vol))
    monkeypatch.setenv("V2V_MODELS_MANIFEST", str(manifest))
    rgba = Image.open(sample_dir / "sample-00000.jpg").convert("RGBA")   # a cut-out: random SAM weights give
    rgba.putalpha(Image.open(sample_dir / "sample-00000.mask.png").convert("L"))   # arbitrary masks
    rgba.save(tmp_path / "cutout.png")
    drop(home, tmp_path / "cutout.png")
    [key] = tick(instance, home).dynamic_partitions_requests[0].partition_keys
    run = materialize_range(instance, home, key, key, overrides_json=json.dumps(ML))
    assert run.success
    assert instance.get_materialized_partitions(dg.AssetKey("vector_svg")) == {key}
    for asset in ("clean_plate", "illustration", "palette_raster"):
        meta = json.loads(home.path(asset, key, "meta.json").read_text())
        assert meta["backend"] == "ml", asset
    ill = json.loads(home.path("illustration", key, "meta.json").read_text())
    assert "none at" in json.dumps(ill)          # the pulled volume has no style LoRA: the base model ran
