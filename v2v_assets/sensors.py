"""The inbox sensor: new photos become partitions and one batch run per tick (up to `max_batch` images).

Images handed in with per-image options (an options sidecar: palette, preset, backends) are batched with the
images of equal options; each such batch runs with those options as the run config of `v2v_config`. The keys
of one batch are added next to each other, since a batch run covers a contiguous range of partitions."""
from __future__ import annotations

import json
import os

import dagster as dg
from pydantic import ValidationError

from v2v_resources import intake
from v2v_resources.errors import V2VError
from v2v_resources.settings import Settings, format_validation_error

from .jobs import JOB_NAME, max_runtime_tags
from .partitions import images_partitions
from .resources import V2VConfig, V2VHome

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def batch_run_requests(keys: list[str], settings: Settings, reason: str = "inbox",
                       options: dict | None = None) -> list[dg.RunRequest]:
    """Contiguous chunks of keys, in the order they were added (= partition insertion order); `options` (the
    `v2v_config` fields the images were handed in with) become each run's config."""
    size = settings.intake.max_batch
    chunks = [keys[i:i + size] for i in range(0, len(keys), size)]
    run_config = {"resources": {"v2v_config": {"config": options}}} if options else None
    return [dg.RunRequest(run_key=f"{reason}:{c[0]}..{c[-1]}", run_config=run_config,
                          tags={RANGE_START: c[0], RANGE_END: c[-1], "v2v/batch_size": str(len(c)),
                                "v2v/reason": reason, **max_runtime_tags(settings)})
            for c in chunks]


# The run settings an image may choose for itself; not another settings file or arbitrary overrides.
OPTION_FIELDS = tuple(f for f in V2VConfig.model_fields if f not in ("config_path", "overrides_json"))


def options_problem(options: dict) -> str | None:
    """Why these per-image options cannot configure a run (None when they can)."""
    unknown = sorted(set(options) - set(OPTION_FIELDS))
    if unknown:
        return f"unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTION_FIELDS)}"
    try:
        V2VConfig(**options).settings
    except ValidationError as e:
        return format_validation_error(e)
    except V2VError as e:
        return e.one_line()
    return None


def group_by_options(home, keys: list[str]) -> dict[str, list[str]]:
    """Keys by their stored options (as canonical JSON), groups in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(json.dumps(intake.stored_options(home, k), sort_keys=True), []).append(k)
    return groups


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


# A tick lists the inbox and reads a few run records: cheap enough that a dropped photo need not wait long.
@dg.sensor(job_name=JOB_NAME, minimum_interval_seconds=3, default_status=dg.DefaultSensorStatus.RUNNING,
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
            problem = options_problem(intake.read_sidecar(path).get("options", {}))
            problem = problem and f"options sidecar: {problem}"
        except V2VError as e:
            problem = e.reason
        if problem:
            try:
                intake.quarantine(home, path, problem)
            except FileNotFoundError:  # removed by its owner since the scan
                continue
            context.log.warning(f"quarantined {path.name}: {problem}")
            continue
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
    groups = group_by_options(home, new_keys)
    return dg.SensorResult(
        run_requests=[rr for opts, keys in groups.items()
                      for rr in batch_run_requests(keys, settings, options=json.loads(opts))],
        dynamic_partitions_requests=[images_partitions.build_add_request([k for g in groups.values() for k in g])],
        cursor=new_cursor,
    )


def tick_inbox(instance: dg.DagsterInstance, defs: dg.Definitions, resources: dict,
               cursor: str | None = None) -> dg.SensorResult:
    """Evaluate the inbox sensor once and apply its partition requests, as the daemon does (the demo and the
    tests use it to run a tick without a daemon)."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources={k: resources[k] for k in ("v2v_home", "v2v_config")}) as context:
        result = inbox_sensor(context)
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result
