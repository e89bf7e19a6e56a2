"""Where an image is: its phases' files under storage (done, failed with reason and fix) and the Dagster
instance (whether a run covering it is in progress, and which of its steps is running)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg

from v2v_resources import intake
from v2v_resources.errors import V2VError
from v2v_resources.imaging import HASH_CHARS
from v2v_resources.phases import REGISTRY
from v2v_resources.storage import Home

from ..partitions import images_partitions
from ..sensors import RANGE_END, RANGE_START

ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
PARTITION_TAG = "dagster/partition"
IMAGE_STATES = ("received", "pending", "running", "done", "failed")
KEY = re.compile(rf"[a-z0-9_-]+-[0-9a-f]{{{HASH_CHARS}}}")   # imaging.partition_key's shape: nothing else is looked up


def covering_runs(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, dg.DagsterRun]:
    """key → the in-progress run that covers it (a single-partition run, or a range in insertion order)."""
    runs = instance.get_runs(dg.RunsFilter(statuses=ACTIVE))
    if not runs:
        return {}
    wanted, order, out = set(keys), None, {}
    for run in runs:
        if run.tags.get(PARTITION_TAG) in wanted:
            out[run.tags[PARTITION_TAG]] = run
        elif RANGE_START in run.tags and RANGE_END in run.tags:
            if order is None:
                order = {k: i for i, k in enumerate(instance.get_dynamic_partitions(images_partitions.name))}
            lo, hi = order.get(run.tags[RANGE_START]), order.get(run.tags[RANGE_END])
            if lo is not None and hi is not None:
                out.update({k: run for k in wanted if lo <= order.get(k, -1) <= hi})
    return out


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _phase(home: Home, name: str, key: str, run: dg.DagsterRun | None, run_start: float | None,
           step) -> dict:
    meta = _read(home.path(name, key, "meta.json"))
    if meta is not None:
        return {"name": name, "state": "done", "backend": meta.get("backend"), "seconds": meta.get("seconds"),
                "checks": meta.get("checks", []), "metadata": meta.get("metadata", {})}
    if step is not None and step.start_time and step.end_time is None:
        return {"name": name, "state": "running", "started_at": step.start_time}
    failure = _read(home.path(name, key, "failure.json"))
    # A failure recorded before the run now covering the key is being redone: pending, not failed.
    if failure is not None and (run is None or (run_start and failure.get("time", 0) >= run_start)):
        return {"name": name, "state": "failed", "error": failure.get("error"), "reason": failure.get("reason"),
                "fix": failure.get("fix"), "retryable": failure.get("retryable", False),
                "run_id": failure.get("run_id") or None}
    return {"name": name, "state": "pending"}


def image_status(home: Home, instance: dg.DagsterInstance, key: str) -> dict | None:
    """The image's state and each phase's, or None for a key nobody handed in."""
    if not KEY.fullmatch(key):
        return None
    partition = instance.has_dynamic_partition(images_partitions.name, key)
    received = intake.inbox_image(home, key)
    if not (partition or received or any(home.asset_dir("photo", key).glob("source.*"))):
        return None
    run = covering_runs(instance, [key]).get(key) if partition else None
    record = instance.get_run_record_by_id(run.run_id) if run else None
    steps = {s.step_key: s for s in instance.get_run_step_stats(run.run_id)} if run else {}
    start = record.start_time if record else None
    phases = [_phase(home, p.name, key, run, start, steps.get(p.name)) for p in REGISTRY]
    states = [p["state"] for p in phases]
    if not partition:
        state = "received"
    elif all(s == "done" for s in states):
        state = "done"
    elif "failed" in states:
        state = "failed"
    elif run is not None:
        state = "running"
    else:
        state = "pending"
    try:
        handed_in = intake.read_sidecar(received) if received else intake.stored_sidecar(home, key)
    except V2VError:   # a hand-written sidecar the sensor will quarantine
        handed_in = {}
    return {"key": key, "state": state, "options": handed_in.get("options"), "name": handed_in.get("name"),
            "received_at": handed_in.get("received"), "phases": phases,
            "seconds": round(sum(p.get("seconds") or 0 for p in phases), 4),
            "run": {"id": run.run_id, "status": run.status.value, "started_at": start} if run else None}


def output_file(home: Home, key: str, name: str) -> Path | None:
    """A finished image's output (`svg`, `preview`) as recorded by its last phase."""
    if not KEY.fullmatch(key):
        return None
    meta = _read(home.path(REGISTRY.last.name, key, "meta.json"))
    path = (meta or {}).get("files", {}).get(name)
    return Path(path) if path and Path(path).is_file() else None


def count_states(home: Home, instance: dg.DagsterInstance) -> dict[str, int]:
    """Images by state, from file existence only (cheap enough for every scrape)."""
    keys = list(instance.get_dynamic_partitions(images_partitions.name))
    running = covering_runs(instance, keys)
    counts = dict.fromkeys(IMAGE_STATES, 0)
    counts["received"] = sum(1 for p in home.inbox.iterdir() if not p.name.startswith(".")
                             and not p.name.endswith(intake.OPTIONS_SUFFIX)) if home.inbox.is_dir() else 0
    last = REGISTRY.last.name
    for k in keys:
        if home.path(last, k, "meta.json").is_file():
            counts["done"] += 1
        elif k in running:
            counts["running"] += 1
        elif any(home.path(p, k, "failure.json").is_file() for p in REGISTRY.names):
            counts["failed"] += 1
        else:
            counts["pending"] += 1
    return counts
