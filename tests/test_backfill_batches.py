"""What the UI launches becomes batch runs: GraphQL (the UI's own API) against a real workspace and instance.

- "Backfill" over N partitions (`launchPartitionBackfill`, an asset backfill) is executed by the backfill
  daemon's iteration; `BackfillPolicy.single_run()` on every phase turns it into runs over partition
  *ranges*, not one run per image.
- "Materialize" of a selection over a range of partitions (`launchPipelineExecution` with the range tags,
  what the launch dialog sends for single-run assets) is one run.

Runs execute in this process (SyncInMemoryRunLauncher, in-process executor) so the test stays quick; the
backfill records, run tags and materialisations are those the daemon and webserver would produce."""
import logging

import dagster as dg
import pytest
from PIL import Image
# Dagster has no public API to run one backfill-daemon iteration; these two names are its internals.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION, LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from v2v_assets.sensors import RANGE_END, RANGE_START

from dagster_helpers import ASSETS, FAST, LOCATION, drop, in_process_workspace, tick

# What the launch dialog's "run config" would carry: small images, and steps in the run process.
RUN_CONFIG = {"resources": {"v2v_config": {"config": {"overrides_json": FAST}}},
              "execution": {"config": {"in_process": {}}}}


@pytest.fixture
def sync_instance(tmp_path):
    d = tmp_path / "dagster_home"
    d.mkdir()
    with dg.instance_for_test(temp_dir=str(d), synchronous_run_coordinator=True,
                              synchronous_run_launcher=True) as inst:
        yield inst


@pytest.fixture
def workspace(sync_instance):
    with in_process_workspace(sync_instance) as ctx:
        yield ctx


def _images(home, instance, sample_dir, n: int) -> list[str]:
    for i in range(n):
        drop(home, sample_dir / f"sample-{i:05d}.jpg", age_s=100 - i)
    return list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)


def _gql(workspace, query, variables):
    result = execute_dagster_graphql(workspace.create_request_context(), query, variables)
    return next(iter(result.data.values()))


def _run_backfill_daemon(workspace, backfill_id: str, max_iterations: int = 10):
    """Iterations of the backfill daemon's loop until the backfill is done (runs execute synchronously)."""
    logger = logging.getLogger("backfill-daemon")
    for _ in range(max_iterations):
        errors = [e for e in execute_backfill_iteration(workspace, logger) if e is not None]
        assert not errors, errors
        backfill = workspace.instance.get_backfill(backfill_id)
        if backfill.status != BulkActionStatus.REQUESTED:
            return backfill
    raise AssertionError(f"backfill {backfill_id} still {backfill.status} after {max_iterations} iterations")


def _backfill(workspace, assets: list[str], keys: list[str]) -> list:
    """Launch an asset backfill as the UI does, let the daemon finish it, return its runs."""
    launched = _gql(workspace, LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": {
        "assetSelection": [{"path": [a]} for a in assets], "partitionNames": keys, "runConfigData": RUN_CONFIG}})
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = _run_backfill_daemon(workspace, launched["backfillId"])
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    return workspace.instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": launched["backfillId"]}))


def _launch_range_run(workspace, assets: list[str], first: str, last: str) -> None:
    """"Materialize" in the UI over a partition range of single-run assets: one run with the range tags."""
    launched = _gql(workspace, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                     "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": [a]} for a in assets]},
        "runConfigData": RUN_CONFIG, "mode": "default",
        "executionMetadata": {"tags": [{"key": RANGE_START, "value": first}, {"key": RANGE_END, "value": last}]}}})
    assert launched["__typename"] == "LaunchRunSuccess", launched


def _materialised(instance, asset: str) -> set[str]:
    return instance.get_materialized_partitions(dg.AssetKey(asset))


def test_ui_backfill_over_many_partitions_runs_as_one_batch(home, sync_instance, workspace, sample_dir):
    keys = _images(home, sync_instance, sample_dir, 4)
    runs = _backfill(workspace, ASSETS, keys[::-1])  # the order the UI lists them in does not matter
    # 4 images x 5 assets: one run over the whole range instead of 20 (or 4) runs.
    assert len(runs) == 1
    run = runs[0]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert (run.tags[RANGE_START], run.tags[RANGE_END]) == (keys[0], keys[-1])  # insertion order
    assert {k.to_user_string() for k in run.asset_selection} == set(ASSETS)
    for asset in ASSETS:
        assert _materialised(sync_instance, asset) == set(keys), asset
    for key in keys:
        assert home.path("vector_svg", key, f"{key}.svg").is_file()
        with Image.open(home.path("photo", key, "photo.png")) as photo:
            assert max(photo.size) == 512  # the backfill's run config (FAST) reached the run


def test_ui_backfill_of_scattered_partitions_runs_one_batch_per_contiguous_block(
        home, sync_instance, workspace, sample_dir):
    keys = _images(home, sync_instance, sample_dir, 4)
    chosen = [keys[0], keys[1], keys[3]]  # keys[2] left out: two blocks in insertion order
    runs = _backfill(workspace, ["photo"], chosen)
    assert sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in runs) == sorted(
        [(keys[0], keys[1]), (keys[3], keys[3])])
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert _materialised(sync_instance, "photo") == set(chosen)


def test_ui_materialize_of_a_partition_range_is_one_run(home, sync_instance, workspace, sample_dir):
    keys = _images(home, sync_instance, sample_dir, 3)
    selection = ASSETS[:2]  # photo and clean_plate, over the range keys[0]..keys[-1]
    _launch_range_run(workspace, selection, keys[0], keys[-1])
    runs = sync_instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert (runs[0].tags[RANGE_START], runs[0].tags[RANGE_END]) == (keys[0], keys[-1])
    for asset in selection:
        assert _materialised(sync_instance, asset) == set(keys), asset
    assert not _materialised(sync_instance, "illustration")


def test_ui_run_config_reaches_every_phase(home, sync_instance, workspace, sample_dir):
    key = _images(home, sync_instance, sample_dir, 1)[0]
    _launch_range_run(workspace, ASSETS[:4], key, key)
    with Image.open(home.path("photo", key, "photo.png")) as photo:
        assert max(photo.size) == 512  # intake.working_long_side, read through the asset's v2v_config
    with Image.open(home.path("palette_raster", key, "raster.png")) as raster:
        assert max(raster.size) == 1024  # phase3.output_long_side, read through the chroma engine's config
