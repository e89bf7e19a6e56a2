"""A Dagster batch whose GPU phases run on a `v2v host` (CPU, tiny models): the step sends its keys at once,
the host batches their SDXL attempts, and the outputs match the in-process path's."""
from __future__ import annotations

import json

import dagster as dg
import httpx
import numpy as np
from PIL import Image

from dagster_helpers import drop, materialize_range, tick
from host_helpers import ML, arrays, same_but_rounding, thread_host
from v2v_resources.settings import deep_merge, load_settings

RUN = deep_merge(ML, {"phase2": {"iou_retry": {"max_retries": 0}},
                      "phase4": {"trace_long_side": 256, "preview_long_side": 128, "quality": {"min_agreement": 0.0}}})


def _batch(instance, home, sample_dir, tmp_path, run: dict = RUN):
    tmp_path.mkdir(exist_ok=True)
    for i in range(3):
        rgba = Image.open(sample_dir / f"sample-{i:05d}.jpg").convert("RGBA")
        rgba.putalpha(Image.open(sample_dir / f"sample-{i:05d}.mask.png").convert("L"))
        rgba.save(tmp_path / f"cutout-{i}.png")
        drop(home, tmp_path / f"cutout-{i}.png")
    keys = list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)
    return keys, materialize_range(instance, home, keys[0], keys[-1], overrides_json=json.dumps(run))


def test_a_dagster_batch_served_by_a_host(tmp_path, tiny_root, tiny_manifest, sample_dir, monkeypatch):
    from v2v_resources.host.engines import ResidentEngines
    from v2v_resources.storage import Home

    monkeypatch.setenv("V2V_MODELS", str(tiny_root))          # the in-process run's models
    monkeypatch.setenv("V2V_MODELS_MANIFEST", str(tiny_manifest))
    run_settings = load_settings(overrides=RUN)
    engines = ResidentEngines(run_settings, models_root=tiny_root, manifest=tiny_manifest)
    host_settings = load_settings(overrides=deep_merge(RUN, {"host": {"warmup": False, "max_batch": 3,
                                                                      "max_wait_ms": 20000}}))
    results = {}
    for name in ("host", "local"):
        home = Home(tmp_path / name).ensure()
        monkeypatch.setenv("V2V_HOME", str(home.root))
        (tmp_path / f"{name}-dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / f"{name}-dagster")) as instance:
            if name == "host":
                with thread_host(engines, host_settings) as (url, _):
                    # routed by the run's settings (host.urls), as a deployment's config file does
                    keys, run = _batch(instance, home, sample_dir, tmp_path / "drops",
                                       deep_merge(RUN, {"host": {"urls": [url]}}))
                    metrics = httpx.get(f"{url}/metrics").text
            else:
                keys, run = _batch(instance, home, sample_dir, tmp_path / "drops")
            assert run.success
            assert instance.get_materialized_partitions(dg.AssetKey("vector_svg")) == set(keys)
        results[name] = (home, keys)
    # the host did the GPU phases of every key, and the step's three keys shared one SDXL call
    for phase in ("clean_plate", "illustration", "palette_raster"):
        assert f'v2v_host_requests_total{{outcome="ok",phase="{phase}"}} 3.0' in metrics
    assert engines.batcher.batch_sizes == [3]
    (hh, keys), (lh, lkeys) = results["host"], results["local"]
    assert keys == lkeys
    for key in keys:
        assert json.loads(hh.path("illustration", key, "meta.json").read_text())["backend"] == "ml"
        for a, b in zip(arrays(hh, "clean_plate", key, ["clean.png", "vehicle_mask.png"]),
                        arrays(lh, "clean_plate", key, ["clean.png", "vehicle_mask.png"])):
            assert np.array_equal(a, b)
        (ha, hm), (la, lm) = (arrays(h, "illustration", key, ["illustration.png", "mask.png"]) for h in (hh, lh))
        assert np.array_equal(hm, lm) and same_but_rounding(ha, la)          # batched on the host
        assert hh.path("vector_svg", key, f"{key}.svg").is_file()
