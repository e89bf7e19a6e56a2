"""Dagster behaviours beyond the happy path: models load once per batch, transient retries in place, typed run
config refused before the run, code versions, the nightly backfill plan, the gpu pool on the instance."""
import base64
import re

import dagster as dg
import pytest
import yaml

from v2v_assets import resources as res_mod
from v2v_assets.definitions import PHASE_ASSETS, build_resources, defs
from v2v_assets.schedules import contiguous_blocks, keys_to_redo, nightly_backfill
from v2v_resources.errors import TransientError
from v2v_resources.settings import CONFIG_DIR

from dagster_helpers import FAST, drop, materialize_range, tick

SAMPLES = [f"sample-{i:05d}.jpg" for i in range(3)]


def _batch(home, instance, sample_dir, n=3):
    for i, name in enumerate(SAMPLES[:n]):
        drop(home, sample_dir / name, age_s=100 - i)
    return list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)


COUNTS = {"builds": 0, "calls": {}}


class CountingSanitizer(res_mod.SanitizerEngine):
    """Counts engine builds (= model loads) and fails the first call of the second image transiently."""

    def build(self, cfg):
        COUNTS["builds"] += 1
        engine = super().build(cfg)
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


def test_models_load_once_per_batch_and_transient_errors_retry_in_place(home, instance, sample_dir, monkeypatch):
    import v2v_assets.batch as batch

    monkeypatch.setattr(batch, "TRANSIENT_BACKOFF_S", 0.01)
    keys = _batch(home, instance, sample_dir)
    resources = build_resources(str(home.root), overrides_json=FAST)
    resources["sanitizer"] = CountingSanitizer(v2v_home=resources["v2v_home"])
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


def test_code_versions_follow_parameters(monkeypatch, tmp_path):
    from v2v_assets import versions

    before = {a: versions.code_version(a) for a in versions.SECTIONS}
    data = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    data["phase3"]["noise_removal"]["min_area_percent"] = 0.2
    cfg = tmp_path / "changed.yaml"
    cfg.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("V2V_CONFIG", str(cfg))
    versions.definition_settings.cache_clear()
    try:
        after = {a: versions.code_version(a) for a in versions.SECTIONS}
    finally:
        versions.definition_settings.cache_clear()
    changed = {a for a in before if before[a] != after[a]}
    assert changed == {"palette_raster"}


def test_nightly_plan_covers_missing_failed_and_stale_as_contiguous_ranges(home, instance, sample_dir):
    assert contiguous_blocks(list("abcdef"), list("acdf")) == [["a"], ["c", "d"], ["f"]]
    keys = _batch(home, instance, sample_dir)
    graph = defs.resolve_asset_graph()
    current = {a.key.to_user_string(): graph.get(a.key).code_version for a in PHASE_ASSETS}
    assert keys_to_redo(instance, current) == keys  # nothing materialised yet
    assert materialize_range(instance, home, keys[1], keys[1], overrides_json=FAST).success
    assert keys_to_redo(instance, current) == [keys[0], keys[2]]
    stale = {**current, "vector_svg": "a-different-version"}  # e.g. vtracer settings changed
    assert keys_to_redo(instance, stale) == keys
    import datetime

    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.datetime(2026, 11, 27, 3))
    reqs = nightly_backfill(ctx)
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


def test_thumbnails_are_small_data_uris(home, instance, sample_dir):
    keys = _batch(home, instance, sample_dir, n=1)
    assert materialize_range(instance, home, keys[0], keys[0], overrides_json=FAST).success
    for asset in PHASE_ASSETS:
        rec = instance.fetch_materializations(asset.key, limit=1).records[0]
        md = rec.asset_materialization.metadata
        b64 = re.search(r"base64,([A-Za-z0-9+/=]+)\)", md["preview"].value).group(1)
        assert len(base64.b64decode(b64)) <= 8000
        assert isinstance(md["seconds"].value, float)
