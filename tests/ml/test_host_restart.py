"""A model host killed (SIGKILL) mid-work: the client keeps retrying, the restarted host warms up again and
serves the request; nothing half-written is left under a final name."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from host_helpers import ML, free_port, no_temp_files, photos
from v2v_resources.settings import deep_merge, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _start(cfg: Path, port: int, tiny_root: Path, tiny_manifest: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               V2V_HOST_TOKEN="tok")
    return subprocess.Popen([sys.executable, "-m", "v2v_assets.cli_host", "--device", "cpu", "--port", str(port),
                             "--config", str(cfg), "--models", str(tiny_root), "--manifest", str(tiny_manifest)],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)


def _in_progress(url: str) -> float:
    try:
        for line in httpx.get(f"{url}/metrics", timeout=2).text.splitlines():
            if line.startswith("v2v_host_requests_in_progress "):
                return float(line.split()[1])
    except httpx.HTTPError:
        pass
    return 0.0


def test_killed_host_then_restart_the_client_retries_and_succeeds(tiny_root, tiny_manifest, tmp_path):
    from v2v_resources.host.client import HostClient
    from v2v_resources.storage import Home

    home = Home(tmp_path / "h").ensure()
    keys = photos(home, 2)
    run = load_settings(overrides=ML).model_dump(mode="json")
    cfg = tmp_path / "host.yaml"       # the host's own config: warm-up on, as in production
    cfg.write_text(yaml.safe_dump(deep_merge(run, {"host": {"warmup": True, "max_wait_ms": 0}})))
    port, log = free_port(), tmp_path / "host.log"
    url = f"http://127.0.0.1:{port}"
    proc = _start(cfg, port, tiny_root, tiny_manifest, log)
    client = HostClient(url, token="tok", retries=60, backoff_s=0.25, max_backoff_s=1.0)
    try:
        state = client.wait_ready(120)[url]
        assert state["timings"]["warmup_s"] > 0
        for key in keys:
            client.run("clean_plate", str(home.root), key, run)
        # the illustration of key 0 is in progress when the host is killed
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(
            out=client.run("illustration", str(home.root), keys[0], run)))
        worker.start()
        deadline = time.monotonic() + 30
        while _in_progress(url) < 1 and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(1.0)
        assert worker.is_alive() or "out" in result      # retrying against a dead host (or finished first)
        with httpx.Client() as h:
            try:
                h.get(f"{url}/health", timeout=1)
                raise AssertionError("the killed host still answers")
            except httpx.ConnectError:
                pass
        proc = _start(cfg, port, tiny_root, tiny_manifest, log)
        worker.join(180)
        assert not worker.is_alive() and result["out"]["asset"] == "illustration"
        assert client.status()[url]["ready"] and client.status()[url]["timings"]["warmup_s"] > 0
        assert home.path("illustration", keys[0], "meta.json").is_file()
        # the other key still runs on the restarted host, and no temp file was left behind anywhere
        assert client.run("illustration", str(home.root), keys[1], run)["key"] == keys[1]
        assert no_temp_files(home.storage)
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
