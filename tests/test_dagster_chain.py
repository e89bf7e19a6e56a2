"""The five assets over a batch of images on a real (temporary) Dagster instance."""
import json

import dagster as dg
from PIL import Image

from v2v_assets.definitions import defs
from v2v_resources.palette import Palette
from dagster_helpers import ASSETS
from v2v_resources.vector.safety import validate_svg

from dagster_helpers import FAST, check_results, drop, materialize_range, tick

SAMPLES = [f"sample-{i:05d}.jpg" for i in range(4)]


def test_batch_of_three_materialises_every_phase(home, instance, sample_dir):
    for name in SAMPLES[:3]:
        drop(home, sample_dir / name)
    result = tick(instance, home)
    keys = list(result.dynamic_partitions_requests[0].partition_keys)
    assert len(keys) == 3 and len(result.run_requests) == 1
    rr = result.run_requests[0]
    assert rr.tags[RANGE_START_TAG] == keys[0] and rr.tags[RANGE_END_TAG] == keys[-1]

    run = materialize_range(instance, home, keys[0], keys[-1], overrides_json=FAST)
    assert run.success
    for asset in ASSETS:
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(keys), asset
    checks = {k: v for a in ASSETS for k, v in check_results(run, a).items()}
    assert checks and all(checks.values()), [k for k, v in checks.items() if not v]
    assert {p for (_, p) in checks} == set(keys)  # evaluated per partition, not once per batch

    palette = Palette.from_name("default15")
    for key in keys:
        svg = home.path("vector_svg", key, f"{key}.svg")
        assert validate_svg(svg.read_text(), palette) == []
        assert Image.open(home.path("vector_svg", key, f"{key}.png")).size[0] == 512
        rec = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("vector_svg"), asset_partitions=[key]), limit=1).records[0]
        md = rec.asset_materialization.metadata
        assert md["path/svg"].value == str(svg)
        assert md["v2v/agreement"].value >= 0.98
        assert md["preview"].value.startswith("![thumbnail](data:image/png;base64,")
        meta = json.loads(home.path("clean_plate", key, "meta.json").read_text())
        assert meta["backend"] == "lite" and 0.05 < meta["metadata"]["vehicle_area"] < 0.95


def test_one_bad_image_does_not_sink_its_batch(home, instance, sample_dir, tmp_path):
    good = sample_dir / SAMPLES[0]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(good.read_bytes()[:3000])  # a truncated JPEG: valid header, missing data
    drop(home, good, age_s=90)
    drop(home, bad, age_s=80)
    drop(home, sample_dir / SAMPLES[1], age_s=70)
    keys = list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)
    bad_key = next(k for k in keys if k.startswith("broken"))
    good_keys = [k for k in keys if k != bad_key]

    auto = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the running sensor's baseline
    run = materialize_range(instance, home, keys[0], keys[-1], overrides_json=FAST)
    assert instance.get_materialized_partitions(dg.AssetKey("photo")) == set(good_keys)
    failure = json.loads(home.path("photo", bad_key, "failure.json").read_text())
    assert "truncated" in failure["reason"] and failure["asset"] == "photo"
    assert check_results(run, "photo")[("decodable", bad_key)] is False
    assert not instance.get_materialized_partitions(dg.AssetKey("clean_plate"))

    # The automation sensor picks the good images up downstream without anyone acting.
    auto = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=auto.cursor)
    assert set(auto.get_requested_partitions(dg.AssetKey("clean_plate"))) == set(good_keys)
    for k in good_keys:  # one contiguous run per range, as the automation backfill would launch
        follow = materialize_range(instance, home, k, k, selection=ASSETS[1:], overrides_json=FAST)
        assert follow.success
    assert instance.get_materialized_partitions(dg.AssetKey("vector_svg")) == set(good_keys)


RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
