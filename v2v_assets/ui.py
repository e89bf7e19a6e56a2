"""`v2v ui`: `dagster dev` (webserver, daemon, code servers) over this home's instance, stopped as a whole.

`dagster dev` stops its daemon on SIGTERM or SIGINT but can leave the webserver and the code servers running
until they are killed. So it runs as a child here, and on SIGINT/SIGTERM every process below it (collected
with psutil, whatever session or group they made for themselves) is asked to stop, then killed after a grace
period. `make ui` runs this; make forwards SIGTERM to it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

GRACE_S = 10.0


def stop_tree(root: "psutil.Process", grace_s: float = GRACE_S) -> list[int]:  # noqa: F821
    """SIGTERM `root` and all its descendants, SIGKILL whatever is left after `grace_s`; returns their pids."""
    import psutil

    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return [p.pid for p in procs]


def run_ui(dagster_home: Path, host: str, port: int, workspace: Path) -> int:
    import psutil

    cmd = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    child = subprocess.Popen(cmd, env={**os.environ, "DAGSTER_HOME": str(dagster_home)}, start_new_session=True)
    root = psutil.Process(child.pid)
    stopping = []

    def stop(signum, _frame):
        if not stopping:
            stopping.append(signum)
            print(f"v2v ui: {signal.Signals(signum).name}: stopping dagster dev and its children", file=sys.stderr)
            stop_tree(root)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = child.wait()
    if not stopping:          # dagster dev ended on its own: leave nothing of it behind either
        stop_tree(root)
    return 0 if stopping else code
