"""Two inbox batches through the real daemon, and the timeline of their steps.

Starts `dagster-daemon run -w workspace.yaml` on a fresh temp $V2V_HOME whose instance uses
configs/dagster.yaml (QueuedRunCoordinator limits, pool `gpu` = 1 slot), drops batch A into the inbox, and
drops batch B as soon as the inbox sensor has launched A's run. When both runs are done it prints every
step's start/end per run, then checks from the event log that no two `gpu`-pool steps ever overlapped and
lists the CPU steps of one batch that ran while the other batch held the gpu slot.

    .venv/bin/python scripts/two_batch_run.py [-n 2] [--dagster-yaml configs/dagster.yaml] [--keep]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def _drop(inbox: Path, photos: list[Path]) -> None:
    old = time.time() - 60  # complete files: the sensor takes them on its first look
    for p in photos:
        dest = inbox / p.name
        shutil.copyfile(p, dest)
        os.utime(dest, (old, old))


def _wait(what: str, predicate, timeout: float, daemon: subprocess.Popen):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if daemon.poll() is not None:
            sys.exit(f"the daemon exited (rc {daemon.returncode}) while waiting for {what}")
        time.sleep(1)
    sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")


def _runs_oldest_first(instance):
    return sorted(instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)


def _intervals(instance, run) -> tuple[list[tuple], list[tuple]]:
    """(step, launch, start, end) per step of the run, and (time, message) of its pool-blocking events.

    A `gpu` step claims its slot before its worker process is launched and frees it once the step has
    ended, so the slot is held from `launch` (STEP_WORKER_STARTING) to `end`; user code runs from `start`."""
    import dagster as dg

    launch, start, end, blocked = {}, {}, {}, []
    for ev in instance.all_logs(run.run_id):
        de = ev.dagster_event
        if de is None:
            continue
        if de.event_type == dg.DagsterEventType.STEP_WORKER_STARTING:
            launch.setdefault(de.step_key, ev.timestamp)
        elif de.event_type == dg.DagsterEventType.STEP_START:
            start.setdefault(de.step_key, ev.timestamp)
        elif de.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
                               dg.DagsterEventType.STEP_SKIPPED):
            end[de.step_key] = ev.timestamp
        elif de.event_type == dg.DagsterEventType.ENGINE_EVENT and "blocked" in (ev.message or ""):
            blocked.append((ev.timestamp, f"{de.step_key}: {ev.message}"))
    steps = [(k, launch.get(k, t), t, end.get(k, t)) for k, t in start.items()]
    return sorted(steps, key=lambda s: s[1]), blocked


def timeline(instance, runs) -> int:
    """Print the timeline and the overlap analysis; returns the number of overlapping gpu-pool steps."""
    from v2v_resources.phases import REGISTRY

    gpu_steps = {p.name for p in REGISTRY if p.gpu}
    names = {r.run_id: chr(ord("A") + i) for i, r in enumerate(runs)}
    rows, steps = [], []
    for run in runs:
        b = names[run.run_id]
        record = instance.get_run_record_by_id(run.run_id)
        rows.append((record.start_time or record.create_timestamp.timestamp(), b, "(run)",
                     f"run {run.run_id[:8]} started; images {run.tags.get('dagster/asset_partition_range_start')}"
                     f" .. {run.tags.get('dagster/asset_partition_range_end')}"))
        rows.append((record.end_time or record.create_timestamp.timestamp(), b, "(run)", f"run {run.status.value}"))
        ints, blocked = _intervals(instance, run)
        for step, launch, start, end in ints:
            pool = "gpu" if step in gpu_steps else "cpu"
            steps.append((b, step, pool, launch, start, end))
            rows.append((launch, b, step, f"launch [{pool}]" + (" (gpu slot claimed)" if pool == "gpu" else "")))
            rows.append((start, b, step, f"start  [{pool}]"))
            rows.append((end, b, step, f"end    [{pool}] ran {end - start:4.1f} s" +
                         (f", slot held {end - launch:4.1f} s" if pool == "gpu" else "")))
        rows.extend((t, b, "(engine)", msg.split("\n")[0][:90]) for t, msg in blocked)
    t0 = min(r[0] for r in rows)
    print("timeline (seconds since the first run started; batch, step, event)")
    for t, b, step, what in sorted(rows):
        print(f"  {t - t0:7.1f}  {b}  {step:15s} {what}")

    # gpu: the slot is held from launch to end; cpu: the step runs from start to end.
    gpu = sorted(((b, st, la, en) for b, st, pool, la, _, en in steps if pool == "gpu"), key=lambda s: s[2])
    clashes = [(x, y) for i, x in enumerate(gpu) for y in gpu[i + 1:] if y[2] < x[3] and x[2] < y[3]]
    print(f"\ngpu-pool steps: {len(gpu)}; pairs holding the gpu slot at the same time: {len(clashes)}")
    for x, y in clashes:
        print(f"  OVERLAP {x[0]}.{x[1]} [{x[2] - t0:.1f}, {x[3] - t0:.1f}] with {y[0]}.{y[1]} "
              f"[{y[2] - t0:.1f}, {y[3] - t0:.1f}]")
    print("CPU steps of one batch running while the other batch held the gpu slot:")
    found = 0
    for b, step, pool, _, start, end in steps:
        if pool != "cpu":
            continue
        for gb, gstep, gs, ge in gpu:
            overlap = min(end, ge) - max(start, gs)
            if gb != b and overlap > 0:
                found += 1
                print(f"  {b}.{step} [{start - t0:.1f}, {end - t0:.1f}] while {gb}.{gstep} held the slot "
                      f"[{gs - t0:.1f}, {ge - t0:.1f}]: {overlap:.1f} s")
    if not found:
        print("  none")
    return len(clashes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2, help="images per batch")
    ap.add_argument("--dagster-yaml", type=Path, default=ROOT / "configs" / "dagster.yaml",
                    help="instance config copied into the temp DAGSTER_HOME")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--keep", action="store_true", help="keep the temp home (and the daemon log)")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="v2v-two-batch-"))
    home, dagster_home = tmp / "v2v", tmp / "v2v" / "dagster_home"
    (home / "inbox").mkdir(parents=True)
    dagster_home.mkdir()
    shutil.copyfile(args.dagster_yaml, dagster_home / "dagster.yaml")
    os.environ.update(V2V_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    print(f"home {home}; instance config {args.dagster_yaml}:")
    print("".join(f"  | {line}" for line in args.dagster_yaml.read_text().splitlines(keepends=True)))

    import dagster as dg
    from v2v_resources.samples import generate_samples

    photos = [p for p in generate_samples(tmp / "samples", 2 * args.n, seed=0) if p.suffix == ".jpg"]
    daemon_log = open(tmp / "daemon.log", "w")
    daemon = subprocess.Popen([str(ROOT / ".venv" / "bin" / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                              cwd=ROOT, stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with dg.DagsterInstance.get() as instance:
            _drop(home / "inbox", photos[:args.n])
            _wait("batch A's run", lambda: instance.get_runs(), 180, daemon)
            print("batch A launched by the inbox sensor; dropping batch B", flush=True)
            _drop(home / "inbox", photos[args.n:])
            _wait("batch B's run", lambda: len(instance.get_runs()) >= 2, 180, daemon)
            _wait("both runs to finish", lambda: all(r.status.value in DONE for r in instance.get_runs()),
                  args.timeout, daemon)
            runs = _runs_oldest_first(instance)
            print(f"{len(runs)} runs: " + ", ".join(f"{r.run_id[:8]} {r.status.value}" for r in runs) + "\n")
            clashes = timeline(instance, runs)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)  # the daemon and the code server it started
        daemon.wait(60)
        daemon_log.close()
        if args.keep:
            print(f"\nkept {tmp} (daemon log: {tmp / 'daemon.log'})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(main())
