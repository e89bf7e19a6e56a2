"""One declaration per phase: a toy phase registered in a test-only registry becomes an asset with its checks,
code version, job membership and nightly plan, with no other edit."""
import dagster as dg
import numpy as np
import pytest

from v2v_assets.assets import code_version
from v2v_assets.definitions import build_definitions, build_resources
from v2v_assets.schedules import plan
from v2v_resources import imaging
from v2v_resources.phases import REGISTRY, CheckOutcome, Phase, PhaseOutcome, Registry
from v2v_resources.phases.base import finish
from v2v_resources.settings import load_settings

from dagster_helpers import FAST, check_results, drop, tick

BUILDS = []


class Greyscaler:
    """The toy engine: built once per step, like a model."""

    def __init__(self, long_side: int):
        BUILDS.append(self)
        self.long_side = long_side

    def grey(self, rgb: np.ndarray) -> np.ndarray:
        return imaging.resize_long_side(rgb.mean(axis=2).astype(np.uint8), self.long_side)


def run_grey(home, key, settings, engine) -> PhaseOutcome:
    grey = engine.grey(imaging.load_png(home.path("photo", key, "photo.png")))
    path = imaging.save_png(home.path("grey", key, "grey.png"), grey)
    spread = float(grey.std())
    out = PhaseOutcome(key, "grey", "toy", 0.0, {"grey": str(path)}, {"spread": spread},
                       [CheckOutcome("not_flat", spread > 1.0, True, f"grey spread {spread:.1f}")])
    return finish(home, out, TOY, settings)


TOY = Phase(name="grey", description="A greyscale copy of the photo.", upstream="photo", run=run_grey,
            checks={"not_flat": "The greyscale copy is not one flat tone."}, sections=("intake",),
            engine=lambda kit: Greyscaler(kit.settings.intake.working_long_side // 2))


def test_a_toy_phase_is_one_module_and_one_registry_entry(home, instance, sample_dir):
    registry = REGISTRY.extended(TOY)
    defs = build_definitions(registry)
    assert "grey" in {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    job = defs.resolve_job_def("process_images")
    assert "grey" in {k.to_user_string() for k in job.asset_layer.selected_asset_keys}

    for i in range(2):
        drop(home, sample_dir / f"sample-{i:05d}.jpg", age_s=100 - i)
    keys = list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)
    assets = [a for a in defs.assets if a.key.to_user_string() in ("photo", "grey")]
    run = dg.materialize(assets, instance=instance, resources=build_resources(str(home.root), overrides_json=FAST),
                         tags={"dagster/asset_partition_range_start": keys[0],
                               "dagster/asset_partition_range_end": keys[-1]})
    assert run.success
    assert instance.get_materialized_partitions(dg.AssetKey("grey")) == set(keys)
    assert check_results(run, "grey") == {("not_flat", k): True for k in keys}
    assert len(BUILDS) == 1 and BUILDS[0].long_side == 256          # engine built once, from the run's settings
    assert imaging.load_png(home.path("grey", keys[0], "grey.png")).ndim == 2
    md = instance.fetch_materializations(dg.AssetKey("grey"), limit=1).records[0].asset_materialization.metadata
    assert md["recipe/engine_version"].value == "1" and md["recipe/backend"].value == "toy"
    # The nightly plan covers the new phase: both keys still miss the rest of the chain, and nothing else.
    config = build_resources(str(home.root), overrides_json=FAST)["v2v_config"]
    assert plan(instance, registry, config, home) == keys
    assert plan(instance, Registry([REGISTRY["photo"], TOY]), config, home) == []
    assert code_version(TOY, load_settings()) != code_version(TOY, load_settings(
        overrides={"intake": {"working_long_side": 640}}))


def test_registry_refuses_duplicates_and_unknown_upstreams():
    with pytest.raises(ValueError, match="registered twice"):
        REGISTRY.extended(REGISTRY["photo"])
    with pytest.raises(ValueError, match="upstream 'nowhere'"):
        Registry([Phase(name="x", description="", upstream="nowhere", run=run_grey, checks={}, sections=())])
    assert REGISTRY.names == ("photo", "clean_plate", "illustration", "palette_raster", "vector_svg")
