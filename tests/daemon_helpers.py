"""Helpers for the tests that run the real `dagster-daemon` (sensors, run queue, run monitoring) as a
subprocess against a throwaway instance."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from v2v_resources.settings import deep_merge

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
DAEMON = Path(sys.executable).with_name("dagster-daemon")


def dagster_home(path: Path, config: str, **overrides) -> Path:
    """A $DAGSTER_HOME holding configs/<config> with `overrides` merged in."""
    path.mkdir(parents=True, exist_ok=True)
    data = deep_merge(yaml.safe_load((CONFIGS / config).read_text()), overrides)
    (path / "dagster.yaml").write_text(yaml.safe_dump(data))
    return path


def settings_dir(path: Path, *overrides: dict) -> Path:
    """A copy of configs/ whose default.yaml has each of `overrides` merged in; point $V2V_CONFIG_DIR at it
    so that the definitions (job tags), the sensor and the runs all read the same settings."""
    shutil.copytree(CONFIGS, path)
    default = path / "default.yaml"
    data = yaml.safe_load(default.read_text())
    for o in overrides:
        data = deep_merge(data, o)
    default.write_text(yaml.safe_dump(data))
    return path


class Daemon:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def wait_for(self, pred, timeout_s: float, what: str):
        """Poll `pred` until it returns something truthy; fail with the daemon's log if it never does."""
        end = time.monotonic() + timeout_s
        while True:
            value = pred()
            if value:
                return value
            assert self.proc.poll() is None, f"the daemon exited while waiting for {what}:\n{self.tail()}"
            assert time.monotonic() < end, f"no {what} after {timeout_s} s; daemon log:\n{self.tail()}"
            time.sleep(0.5)


@contextmanager
def running_daemon(home: Path, log: Path, env: dict, *target: str):
    """`dagster-daemon run <target>` with DAGSTER_HOME=home in its own process group (its code server and the
    run workers that server launches included), stopped with the whole group at the end."""
    with open(log, "w") as out:
        proc = subprocess.Popen([str(DAEMON), "run", *target], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "DAGSTER_HOME": str(home), **env}, start_new_session=True)
    try:
        yield Daemon(proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group outlived the daemon (a run worker it never got to stop)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
