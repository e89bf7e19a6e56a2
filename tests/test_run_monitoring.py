"""A run past its max runtime is stopped by run monitoring: the real `dagster-daemon` on an instance built
from configs/dagster.yaml (only the poll interval shortened), a photo dropped into the inbox, the inbox
sensor's batch run of `process_images` whose `dagster/max_runtime` tag comes from the settings, and a first
phase that never returns (tests/stuck_defs.py)."""
from pathlib import Path

import dagster as dg

from v2v_assets.jobs import MAX_RUNTIME_TAG

from daemon_helpers import ROOT, dagster_home, running_daemon, settings_dir
from dagster_helpers import drop

MAX_RUNTIME_S = 3
POLL_S = 1
# Run start to its end: the runtime, a poll, the cancel reaching the step process; generous for a busy CI box.
STOP_WITHIN_S = MAX_RUNTIME_S + POLL_S + 30


def test_run_past_max_runtime_is_stopped_by_monitoring(home, tmp_path, sample_dir):
    dh = dagster_home(tmp_path / "dh", "dagster.yaml", run_monitoring={"poll_interval_seconds": POLL_S})
    config_dir = settings_dir(tmp_path / "configs", {"orchestration": {"max_runtime_s": MAX_RUNTIME_S}})
    drop(home, sample_dir / "sample-00000.jpg")
    env = {"V2V_HOME": str(home.root), "V2V_CONFIG_DIR": str(config_dir)}

    # The instance first: it creates the storage, which the daemon and its code server would otherwise race to do.
    with dg.DagsterInstance.from_config(str(dh)) as instance, \
            running_daemon(dh, tmp_path / "daemon.log", env, "-f", str(ROOT / "tests" / "stuck_defs.py")) as daemon:
        run = daemon.wait_for(lambda: next(iter(instance.get_runs()), None), 90, "run from the inbox sensor")
        assert run.job_name == "process_images" and run.tags[MAX_RUNTIME_TAG] == str(MAX_RUNTIME_S), run.tags
        record = daemon.wait_for(lambda: _finished(instance, run.run_id), 120, "end of the stuck run")
        # Marked failed is not yet stopped: the run worker and the stuck step's process must exit too.
        pids = [e.dagster_event.pid for e in instance.all_logs(run.run_id) if e.dagster_event
                and e.dagster_event.event_type in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START)]
        assert len(pids) == 2, pids
        daemon.wait_for(lambda: not any(map(_alive, pids)), 30, "run worker and step process gone")
        # While the daemon still runs: the step's gpu slot must not outlive the run.
        daemon.wait_for(lambda: not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots,
                        30, "gpu slot released")
        messages = [e.message for e in instance.all_logs(run.run_id)]
        keys = instance.get_dynamic_partitions("images")
        materialized = instance.get_materialized_partitions(dg.AssetKey("photo"))

    assert record.dagster_run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
    assert f"Canceling due to exceeding maximum runtime of {MAX_RUNTIME_S} seconds." in messages, messages
    assert record.start_time and record.end_time - record.start_time < STOP_WITHIN_S, \
        (record.start_time, record.end_time)
    assert len(keys) == 1  # the photo became a partition, and that partition is not materialised
    assert not materialized
    assert not home.path("photo", keys[0], "meta.json").exists()


def _alive(pid: int) -> bool:
    """Running, and not just an exited process its parent has yet to reap (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _finished(instance, run_id):
    record = instance.get_run_record_by_id(run_id)
    return record if record.dagster_run.is_finished else None
