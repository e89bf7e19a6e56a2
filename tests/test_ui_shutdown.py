"""`make ui` stops as a whole: SIGTERM to make leaves no webserver, daemon or code server behind."""
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(port: int, proc, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make ui exited before serving"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the webserver did not answer on port {port} within {timeout_s} s")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_sigterm_to_make_ui_stops_every_child(tmp_path):
    port = _free_port()
    env = {**os.environ, "V2V_HOME": str(tmp_path / "home"), "UI_PORT": str(port)}
    proc = subprocess.Popen(["make", "-s", "ui", f"UI_PORT={port}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_until_serving(port, proc)
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "dagster" in names and "daemon" in names and len(tree) >= 4, names   # v2v, dev, webserver, daemon…
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([psutil.Process(proc.pid), *tree], timeout=20)
        assert not alive, [(p.pid, p.cmdline()) for p in alive if p.is_running()]
        assert time.monotonic() - t0 < 20
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            p.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_stop_tree_kills_a_grandchild_that_ignores_sigterm_in_its_own_session():
    """What dagster dev leaves behind in the bad case (a child in its own session that does not stop) is still
    found and killed after the grace period."""
    import sys

    from v2v_assets.ui import stop_tree

    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; "
                               f"subprocess.Popen([sys.executable, '-c', {stubborn!r}], start_new_session=True); "
                               "time.sleep(600)"])
    root = psutil.Process(parent.pid)
    deadline = time.monotonic() + 30
    while not root.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = root.children(recursive=True)
    time.sleep(0.5)                                   # let it install its SIGTERM handler
    pids = stop_tree(root, grace_s=2.0)
    parent.wait(timeout=10)
    assert set(pids) == {parent.pid, child.pid}
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
