"""The inbox sensor: new photos become partitions and one batch run per tick (up to `max_batch` images)."""
from __future__ import annotations

import json
import os

import dagster as dg

from v2v_resources import intake
from v2v_resources.settings import Settings

from .jobs import JOB_NAME, max_runtime_tags
from .partitions import images_partitions
from .resources import V2VConfig, V2VHome

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def batch_run_requests(keys: list[str], settings: Settings, reason: str = "inbox") -> list[dg.RunRequest]:
    """Contiguous chunks of keys, in the order they were added (= partition insertion order)."""
    size = settings.intake.max_batch
    chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
    return [dg.RunRequest(run_key=f"{reason}:{c[0]}..{c[-1]}",
                          tags={RANGE_START: c[0], RANGE_END: c[-1], "v2v/batch_size": str(len(c)),
                                "v2v/reason": reason, **max_runtime_tags(settings)})
            for c in chunks]


def reap_dead_local_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs whose worker process on this host was killed (SIGKILL, OOM killer, reboot) stay STARTED and keep
    their `gpu` slot forever: the DefaultRunLauncher cannot report dead workers to run monitoring. Mark them
    failed and free their slots, so the next batch does not wait on a dead run. Returns their ids."""
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return []  # container launchers report dead workers to run monitoring themselves
    reaped = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pid = starts[0].dagster_event.pid if starts and starts[0].dagster_event else None
        if pid is None or _alive(pid):
            continue
        instance.report_run_failed(run, f"run worker (pid {pid}) is gone; its slots are freed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@dg.sensor(job_name=JOB_NAME, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches $V2V_HOME/inbox: adds a partition per new image and requests one batch run.")
def inbox_sensor(context: dg.SensorEvaluationContext, v2v_home: V2VHome, v2v_config: V2VConfig):
    home, settings = v2v_home.home, v2v_config.settings
    cfg = settings.intake
    for run_id in reap_dead_local_runs(context.instance):
        context.log.warning(f"run {run_id} lost its worker process: marked failed, gpu slot freed")
    cursor = json.loads(context.cursor) if context.cursor else {}
    scan = intake.scan_inbox(home, cursor.get("waiting", {}), extensions=cfg.extensions,
                             settle_s=cfg.settle_seconds, limit=cfg.scan_limit)
    for name, reason in scan.quarantined:
        context.log.warning(f"quarantined {name}: {reason}")
    # Keys admitted by an earlier tick whose partition never got added (a crash in between) come first.
    new_keys = [k for k in intake.pending_keys(home)
                if not context.instance.has_dynamic_partition(images_partitions.name, k)]
    for path in scan.ready:
        try:
            adm = intake.admit(home, path)
        except FileNotFoundError:  # removed by its owner since the scan
            continue
        if adm.new and adm.key not in new_keys:
            new_keys.append(adm.key)
        elif not adm.new:
            context.log.info(f"{path.name}: same content as {adm.key}; kept as a duplicate")
    intake.confirm_pending(home, [k for k in intake.pending_keys(home) if k not in new_keys])
    new_cursor = json.dumps({"waiting": scan.waiting}, sort_keys=True)
    if not new_keys:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"no new images ({len(scan.waiting)} still being written)" if scan.waiting else "no new images"),
            cursor=new_cursor)
    return dg.SensorResult(
        run_requests=batch_run_requests(new_keys, settings),
        dynamic_partitions_requests=[images_partitions.build_add_request(new_keys)],
        cursor=new_cursor,
    )


def tick_inbox(instance: dg.DagsterInstance, defs: dg.Definitions, resources: dict,
               cursor: str | None = None) -> dg.SensorResult:
    """Evaluate the inbox sensor once and apply its partition requests, as the daemon does (the demo and the
    tests use it to run a tick without a daemon)."""
    result = inbox_sensor(dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs,
        resources={k: resources[k] for k in ("v2v_home", "v2v_config")}))
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result
