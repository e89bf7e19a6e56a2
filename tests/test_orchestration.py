"""Dagster behaviours beyond the happy path: models load once per batch, transient retries in place, typed run
config refused before the run, code versions, the nightly backfill plan, the gpu pool on the instance."""
import base64
import os
import json
import re

import dagster as dg
import pytest
import yaml

from v2v_assets.assets import code_version
from v2v_assets.definitions import build_resources, defs
from v2v_assets.resources import V2VConfig
from v2v_assets.schedules import contiguous_blocks, plan
from v2v_resources.errors import TransientError
from v2v_resources.phases import REGISTRY
from v2v_resources.phases import clean_plate as clean_plate_phase
from v2v_resources.settings import CONFIG_DIR, deep_merge, load_settings

from dagster_helpers import FAST, PHASE_ASSETS, drop, materialize_range, tick

SAMPLES = [f"sample-{i:05d}.jpg" for i in range(3)]


def _batch(home, instance, sample_dir, n=3):
    for i, name in enumerate(SAMPLES[:n]):
        drop(home, sample_dir / name, age_s=100 - i)
    return list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)


COUNTS = {"builds": 0, "calls": {}}


def counting_sanitizer(*args, **kwargs):
    """Counts engine builds (= model loads) and fails the first call of the second image transiently."""
    COUNTS["builds"] += 1
    engine = REAL_MAKE_SANITIZER(*args, **kwargs)
    real = engine.sanitize

    def flaky(rgb, alpha=None):
        calls = COUNTS["calls"]
        key = int(rgb.sum())
        calls[key] = calls.get(key, 0) + 1
        if len(calls) == 2 and calls[key] == 1:
            raise TransientError("CUDA out of memory (simulated)", phase="clean_plate")
        return real(rgb, alpha)

    engine.sanitize = flaky
    return engine


REAL_MAKE_SANITIZER = clean_plate_phase.make_sanitizer


def test_models_load_once_per_batch_and_transient_errors_retry_in_place(home, instance, sample_dir, monkeypatch):
    import v2v_assets.batch as batch

    monkeypatch.setattr(batch, "TRANSIENT_BACKOFF_S", 0.01)
    keys = _batch(home, instance, sample_dir)
    monkeypatch.setattr(clean_plate_phase, "make_sanitizer", counting_sanitizer)
    resources = build_resources(str(home.root), overrides_json=FAST)
    run = dg.materialize(PHASE_ASSETS, instance=instance, resources=resources,
                         selection=["photo", "clean_plate"],
                         tags={"dagster/asset_partition_range_start": keys[0],
                               "dagster/asset_partition_range_end": keys[-1]})
    assert run.success
    assert COUNTS["builds"] == 1  # one load for the three images of the batch
    assert sorted(COUNTS["calls"].values()) == [1, 1, 2]  # only the flaky image ran twice
    assert instance.get_materialized_partitions(dg.AssetKey("clean_plate")) == set(keys)
    logs = [e.message for e in instance.all_logs(run.run_id) if e.message]
    assert any("transient error" in m and "retry 1" in m for m in logs)


def test_bad_run_config_is_refused_before_the_run_names_the_field(instance):
    job = defs.resolve_job_def("process_images")
    for field, value in [("preset", "turbo"), ("backend_phase2", "gpu"), ("steps", "thirty")]:
        with pytest.raises(dg.DagsterInvalidConfigError, match=f"v2v_config:config:{field}"):
            job.execute_in_process(instance=instance, run_config={
                "resources": {"v2v_config": {"config": {field: value}}}})
    assert not instance.get_run_records()  # refused before any run was created
    # A palette is checked entry by entry when the resource starts, before any step runs.
    with pytest.raises(dg.DagsterResourceFunctionError) as e:
        job.execute_in_process(instance=instance, run_config={
            "resources": {"v2v_config": {"config": {"palette": "FF0000,zz"}}}})
    assert "palette entry 2 ('zz')" in str(e.value.__cause__)


def test_code_versions_follow_output_parameters_not_operational_knobs():
    base = load_settings()
    changed = load_settings(overrides={"phase3": {"noise_removal": {"min_area_percent": 0.2}}})
    assert {p.name for p in REGISTRY if code_version(p, base) != code_version(p, changed)} == {"palette_raster"}
    knobs = load_settings(overrides={"intake": {"max_batch": 7, "settle_seconds": 9, "scan_limit": 5},
                                     "hardware": {"compile": True, "reserve_vram_gb": 3.0, "cpu_threads": 1},
                                     "phase3": {"esrgan_tile": 256}, "phase4": {"time_limit_s": 10}})
    assert all(code_version(p, base) == code_version(p, knobs) for p in REGISTRY)


def _config(extra: dict | None = None, **fields) -> V2VConfig:
    """The FAST test config, with more overrides."""
    return V2VConfig(overrides_json=json.dumps(deep_merge(json.loads(FAST), extra or {})), **fields)


def test_nightly_plan_compares_what_each_run_really_used(home, instance, sample_dir):
    """Missing, failed and stale keys, as contiguous ranges; a run's own overrides are what it is judged by."""
    assert contiguous_blocks(list("abcdef"), list("acdf")) == [["a"], ["c", "d"], ["f"]]
    keys = _batch(home, instance, sample_dir)
    fast = _config()
    assert plan(instance, REGISTRY, fast, home) == keys  # nothing materialised yet
    assert materialize_range(instance, home, keys[1], keys[1], overrides_json=FAST).success
    assert plan(instance, REGISTRY, fast, home) == [keys[0], keys[2]]
    # The same settings with an operational knob tuned: still up to date.
    tuned = _config({"intake": {"max_batch": 3}, "hardware": {"compile": True}})
    assert plan(instance, REGISTRY, tuned, home) == [keys[0], keys[2]]
    # vtracer settings changed since: keys[1] is stale too.
    assert plan(instance, REGISTRY, _config({"phase4": {"vtracer": {"filter_speckle": 9}}}), home) == keys
    # A run with its own seed is judged by that seed, not by the config file the definitions loaded.
    assert materialize_range(instance, home, keys[2], keys[2], overrides_json=FAST, seed=7).success
    assert keys[2] in plan(instance, REGISTRY, fast, home)
    assert keys[2] not in plan(instance, REGISTRY, _config(seed=7), home)
    import datetime

    schedule = defs.get_schedule_def("nightly_backfill")
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.datetime(2026, 11, 27, 3),
                                    resources={"v2v_config": V2VConfig(overrides_json=FAST),
                                               "v2v_home": build_resources(str(home.root))["v2v_home"]})
    reqs = schedule(ctx)
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in reqs] == [(keys[0], keys[0]), (keys[2], keys[2])]


def test_gpu_pool_and_instance_config(tmp_path):
    gpu = {a.key.to_user_string() for a in PHASE_ASSETS if a.op.pool == "gpu"}
    assert gpu == {"clean_plate", "illustration", "palette_raster"}
    overrides = yaml.safe_load((CONFIG_DIR / "dagster.yaml").read_text())
    d = tmp_path / "dh"
    d.mkdir()
    with dg.instance_for_test(overrides=overrides, temp_dir=str(d)) as inst:
        assert inst.get_concurrency_config().pool_config.default_pool_limit == 1
        assert inst.run_monitoring_enabled
        assert inst.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 3
        assert inst.run_coordinator.dequeue_interval_seconds == 1


def test_steps_run_in_the_run_process_when_model_hosts_serve_the_gpu_phases():
    from v2v_assets.definitions import build_definitions, executor_for

    def executor(**resource_args):
        return build_definitions(**resource_args).resolve_job_def("process_images").executor_def

    assert executor() is dg.multi_or_in_process_executor        # each step loads (and frees) its own models
    assert executor(hosts=["http://127.0.0.1:8765"]) is dg.in_process_executor     # thin clients
    hosted = load_settings(overrides={"host": {"urls": ["http://127.0.0.1:8765"]}})
    assert executor_for(hosted) is dg.in_process_executor
    named = deep_merge(hosted.model_dump(mode="json"), {"orchestration": {"executor": "multiprocess"}})
    assert executor_for(load_settings(overrides=named)) is dg.multi_or_in_process_executor


def test_thumbnails_are_small_data_uris(home, instance, sample_dir):
    keys = _batch(home, instance, sample_dir, n=1)
    assert materialize_range(instance, home, keys[0], keys[0], overrides_json=FAST).success
    for asset in PHASE_ASSETS:
        rec = instance.fetch_materializations(asset.key, limit=1).records[0]
        md = rec.asset_materialization.metadata
        b64 = re.search(r"base64,([A-Za-z0-9+/=]+)\)", md["preview"].value).group(1)
        assert len(base64.b64decode(b64)) <= 8000
        assert isinstance(md["seconds"].value, float)


def test_an_images_own_options_hold_in_follow_up_runs(home, instance, sample_dir):
    """An image handed in with its palette keeps it in runs that do not carry it (automation, the UI, the
    nightly plan), and the nightly requests carry it again."""
    from v2v_resources import intake

    palette = "FF0000,00FF00,0000FF,000000,FFFFFF,808080"
    sub = intake.submit(home, (sample_dir / SAMPLES[0]).read_bytes(), "own.jpg", {"palette": palette},
                        load_settings().intake)
    old = 1_000_000_000
    for p in home.inbox.iterdir():
        os.utime(p, (old, old))
    result = tick(instance, home)
    assert result.run_requests[0].run_config["resources"]["v2v_config"]["config"] == {"palette": palette}
    # A run without the options, as Dagster's automation sensor or a UI launch would start it. (Six primaries
    # trace to regions too small for the 98 % agreement bound at the test's small sizes.)
    loose = {"phase4": {"quality": {"min_agreement": 0.9}}}
    assert materialize_range(instance, home, sub.key, sub.key,
                             overrides_json=json.dumps(deep_merge(json.loads(FAST), loose))).success
    used = home.read_json("palette_raster", sub.key)["palette_colors"]
    assert used == ["#" + c for c in palette.split(",")]
    assert plan(instance, REGISTRY, _config(loose), home) == []       # judged by its own palette: up to date
    other = _config(loose, palette="default15")                        # the run's palette loses to the image's
    assert plan(instance, REGISTRY, other, home) == []
    changed = deep_merge(loose, {"phase4": {"vtracer": {"filter_speckle": 9}}})
    assert plan(instance, REGISTRY, _config(changed), home) == [sub.key]
    import datetime

    schedule = defs.get_schedule_def("nightly_backfill")
    ctx = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=datetime.datetime(2026, 11, 27, 3),
        resources={"v2v_config": _config(changed),
                   "v2v_home": build_resources(str(home.root))["v2v_home"]})
    (req,) = schedule(ctx)
    assert req.run_config["resources"]["v2v_config"]["config"] == {"palette": palette}
