"""An upload through `v2v api` comes back as an SVG: a real uvicorn on loopback, the real `dagster-daemon`
running the inbox sensor on an instance built from configs/dagster.yaml, the batch run it launches with the
upload's palette as run config, and the outputs fetched over HTTP."""
import json
import re

import dagster as dg
import httpx

from v2v_resources.settings import load_settings

from daemon_helpers import ROOT, dagster_home, running_daemon, settings_dir
from dagster_helpers import FAST
from test_api import OTHER, PALETTE15, TOKEN, auth, serve
from v2v_assets.api.auth import hash_token


def test_upload_is_processed_by_the_daemon_and_its_svg_fetched(home, tmp_path, sample_dir):
    api = {"token_hashes": [hash_token(TOKEN), hash_token(OTHER)], "ready_tick_age_s": 60}
    # FAST sizes; at them, tracing the reference's 15 primaries agrees ~97.7% with the raster (98% required).
    config_dir = settings_dir(tmp_path / "configs", json.loads(FAST), {"intake": {"settle_seconds": 0}},
                              {"phase4": {"quality": {"min_agreement": 0.95}}}, {"api": api})
    settings = load_settings(config_dir / "default.yaml")
    dh = dagster_home(tmp_path / "dh", "dagster.yaml")
    env = {"V2V_HOME": str(home.root), "V2V_CONFIG_DIR": str(config_dir)}
    photo = (sample_dir / "sample-00000.jpg").read_bytes()

    # The instance first: it creates the storage, which the daemon and its code server would otherwise race to do.
    with dg.DagsterInstance.from_config(str(dh)) as instance, serve(home, instance, settings) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        not_ready = client.get("/ready")
        assert not_ready.status_code == 503 and "never evaluated" in not_ready.json()["checks"]["inbox_sensor"]
        r = client.post("/v1/images", files={"file": ("red car.jpg", photo, "image/jpeg")},
                        data={"palette_hex_list": PALETTE15, "backend": "lite"}, headers=auth())
        assert r.status_code == 202, r.text
        key = r.json()["key"]
        assert client.get(f"/v1/images/{key}", headers=auth()).json()["state"] == "received"

        with running_daemon(dh, tmp_path / "daemon.log", env, "-w", str(ROOT / "workspace.yaml")) as daemon:
            daemon.wait_for(lambda: client.get("/ready").status_code == 200, 90, "/ready")
            seen: list[dict] = []   # every status polled while the run went on
            daemon.wait_for(lambda: _poll(client, key, seen) in ("done", "failed"), 240, "the image's run to end")
            status = client.get(f"/v1/images/{key}", headers=auth()).json()
            svg = client.get(f"/v1/images/{key}/svg", headers=auth())
            preview = client.get(f"/v1/images/{key}/preview", headers=auth())
            metrics = client.get("/metrics").text
            runs = instance.get_runs()

    assert status["state"] == "done", json.dumps([p for p in status["phases"] if p["state"] != "done"])
    assert [p["state"] for p in status["phases"]] == ["done"] * 5
    # While the run went on, the status named it and the phase its step was running.
    running = [st for st in seen if st["state"] == "running"]
    assert running and running[-1]["run"]["id"] == runs[0].run_id
    assert any(p["state"] == "running" for st in running for p in st["phases"]), running[-1]
    assert all(c["passed"] for p in status["phases"] for c in p["checks"] if c["blocking"])
    assert status["seconds"] > 0 and status["options"]["palette"] == PALETTE15
    assert {p["backend"] for p in status["phases"][1:4]} == {"lite"}
    # The run the sensor launched carried the upload's options as the v2v_config run config.
    assert len(runs) == 1 and runs[0].run_config["resources"]["v2v_config"]["config"] == \
        {"palette": PALETTE15, "backend_phase1": "lite", "backend_phase2": "lite", "backend_phase3": "lite"}
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    fills = {f.upper() for f in re.findall(r'fill="#([0-9A-Fa-f]{6})"', svg.text)}
    assert fills and fills <= set(PALETTE15.split(",")), fills   # palette-locked to the uploaded palette
    assert preview.status_code == 200 and preview.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'v2v_images{state="done"} 1.0' in metrics


def _poll(client, key, seen):
    seen.append(client.get(f"/v1/images/{key}", headers=auth()).json())
    return seen[-1]["state"]
