"""`v2v api` against a real uvicorn on loopback, with httpx: tokens, limits, idempotent uploads, and 50
concurrent uploads taken by the inbox sensor (ticked here; tests/test_api_e2e.py runs the daemon)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image

from v2v_assets.api import create_app
from v2v_assets.api.auth import hash_token, new_token
from v2v_assets.sensors import RANGE_END, RANGE_START
from v2v_resources.settings import load_settings

from dagster_helpers import tick

TOKEN, OTHER = new_token(), new_token()
PALETTE15 = "FF0000,00FF00,0000FF,FFFF00,FF00FF,00FFFF,000000,FFFFFF,808080,404040,C0C0C0,FFA500,800080,008080,FFB6C1"


def api_settings(**api):
    return load_settings(overrides={"api": {"token_hashes": [hash_token(TOKEN), hash_token(OTHER)], **api}})


@contextmanager
def serve(home, instance, settings):
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(home, settings, instance), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def auth(token=TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def png_bytes(seed: int, size=(96, 64), fmt="PNG") -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def upload(client, data: bytes, name="photo.png", token=TOKEN, **fields):
    return client.post("/v1/images", files={"file": (name, data, "image/png")}, data=fields, headers=auth(token))


@pytest.fixture
def api(home, instance):
    with serve(home, instance, api_settings()) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_bad_token_gets_401_and_probes_need_none(api):
    data = png_bytes(0)
    for headers in ({}, auth("not-a-token"), {"Authorization": f"Basic {TOKEN}"}):
        r = api.post("/v1/images", files={"file": ("a.png", data)}, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["detail"]
        assert "hash-token" in r.json()["fix"]
    assert api.get("/v1/images/anything").status_code == 401
    assert api.get("/health").json() == {"status": "ok"}
    assert "/v1/images" in api.get("/openapi.json").json()["paths"]
    assert api.get("/docs").status_code == 200
    assert upload(api, data, token=OTHER).status_code == 202  # either configured token


def test_duplicate_upload_gives_the_same_key(api, home, instance, sample_dir):
    photo = (sample_dir / "sample-00000.jpg").read_bytes()
    first = upload(api, photo, "My Car.jpg", palette="automotive15")
    assert first.status_code == 202, first.text
    key = first.json()["key"]
    assert key == f"my-car-{hashlib.sha256(photo).hexdigest()[:10]}"   # intake's key: readable stem + hash
    again = upload(api, photo, "other name.jpg", palette="default15")
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    assert api.get(f"/v1/images/{key}", headers=auth()).json()["state"] == "received"
    assert len([p for p in home.inbox.iterdir() if p.suffix == ".jpg"]) == 1   # one file waits, not two
    # The sensor takes it (the second look at an unchanged file), with the first upload's options.
    result = tick(instance, home, cursor=tick(instance, home).cursor)
    assert [k for r in result.dynamic_partitions_requests for k in r.partition_keys] == [key]
    assert result.run_requests[0].run_config == {"resources": {"v2v_config": {"config": {"palette": "automotive15"}}}}
    assert upload(api, photo, "third.jpg").json()["key"] == key   # after admission too
    assert list(instance.get_dynamic_partitions("images")) == [key]
    st = api.get(f"/v1/images/{key}", headers=auth()).json()
    assert st["state"] == "pending" and st["options"] == {"palette": "automotive15"} and st["name"] == "My Car.jpg"
    assert time.time() - 120 < st["received_at"] <= time.time()
    assert [p["state"] for p in st["phases"]] == ["pending"] * 5
    r = api.get(f"/v1/images/{key}/svg", headers=auth())
    assert r.status_code == 409 and "pending" in r.json()["detail"]
    for unknown in ("nope-0123456789", "*", "..", key.upper()):
        assert api.get(f"/v1/images/{unknown}", headers=auth()).status_code == 404, unknown


def test_fifty_concurrent_uploads_give_fifty_partitions(api, home, instance):
    images = [png_bytes(i) for i in range(50)]
    palette = {i: PALETTE15 for i in range(0, 50, 2)}   # every other image with its own palette

    def send(i):
        fields = {"palette_hex_list": palette[i]} if i in palette else {}
        return upload(api, images[i], f"car {i}.png", **fields)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(send, range(50)))
    assert [r.status_code for r in answers] == [202] * 50, [r.text for r in answers if r.status_code != 202]
    keys = {r.json()["key"] for r in answers}
    assert len(keys) == 50
    first = tick(instance, home)   # takes what has settled; the second look takes the rest
    second = tick(instance, home, cursor=first.cursor)
    assert set(instance.get_dynamic_partitions("images")) == keys   # none lost
    # Equal options batch together: each run's range holds only images of its option set, each image once.
    order = list(instance.get_dynamic_partitions("images"))
    by_range: dict[str, set] = {}
    for rr in [*(first.run_requests or []), *second.run_requests]:
        lo, hi = order.index(rr.tags[RANGE_START]), order.index(rr.tags[RANGE_END])
        opts = (rr.run_config or {}).get("resources", {}).get("v2v_config", {}).get("config", {})
        covered = by_range.setdefault(json.dumps(opts, sort_keys=True), set())
        assert not covered & set(order[lo:hi + 1])
        covered |= set(order[lo:hi + 1])
    want_palette = {r.json()["key"] for i, r in enumerate(answers) if i in palette}
    assert by_range == {json.dumps({"palette": PALETTE15}): want_palette, "{}": keys - want_palette}


def test_limits_answer_413_415_422_429(home, instance, sample_dir):
    settings = api_settings(max_upload_bytes=40_000, rate_limit_per_minute=1, rate_limit_burst=9,
                            allowed_types=["image/png", "image/jpeg"])
    with serve(home, instance, settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        big = png_bytes(1, size=(200, 200))   # ~120 kB of noise
        r = upload(client, big)
        assert r.status_code == 413 and "exceeds" in r.json()["detail"], r.text
        # Without Content-Length (chunked), refused as the body passes the limit.
        form = httpx.Request("POST", url, files={"file": ("big.png", big)})
        body = form.read()
        chunked = client.post("/v1/images", headers={**auth(), "Content-Type": form.headers["content-type"]},
                              content=iter([body[i:i + 16384] for i in range(0, len(body), 16384)]))
        assert chunked.status_code == 413, chunked.text
        r = upload(client, png_bytes(5, size=(140, 140)))   # ~59 kB: the body fits, the image does not
        assert r.status_code == 413 and "image exceeds 40000 bytes" in r.json()["detail"], r.text
        r = upload(client, b"<html>hello</html>", "page.jpg")
        assert r.status_code == 415 and "not a recognised image format" in r.json()["detail"], r.text
        r = upload(client, png_bytes(2, fmt="GIF"), "anim.gif")
        assert r.status_code == 415 and "GIF images are not accepted" in r.json()["detail"], r.text
        r = upload(client, png_bytes(3, size=(16, 16)), "tiny.png")
        assert r.status_code == 422 and "intake limits" in r.json()["detail"], r.text
        r = upload(client, png_bytes(4), palette="no-such-palette")
        assert r.status_code == 422 and "unknown palette" in r.json()["detail"], r.text
        assert not [p for p in home.inbox.iterdir()]   # nothing refused reached the inbox
        # Each authenticated request above took one of this token's 9; the other token has its own.
        codes = [client.get("/v1/images/x-0000000000", headers=auth()).status_code for _ in range(4)]
        assert codes[:2] == [404, 404] and codes[-1] == 429, codes
        r = client.get("/v1/images/x-0000000000", headers=auth())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["detail"]
        assert client.get("/v1/images/x-0000000000", headers=auth(OTHER)).status_code == 404
        metrics = client.get("/metrics").text
        assert 'v2v_api_requests_total{method="POST",route="/v1/images",status="413"} 3.0' in metrics
        assert 'v2v_api_requests_total{method="GET",route="/v1/images/{key}",status="429"}' in metrics
        assert 'v2v_images{state="received"} 0.0' in metrics


def test_requests_past_the_time_limit_get_408_or_503(home, instance, monkeypatch):
    import v2v_assets.api.images as routes

    def slow_status(*args):
        time.sleep(2.5)
        return None

    monkeypatch.setattr(routes, "image_status", slow_status)   # a status lookup stuck on slow storage
    with serve(home, instance, api_settings(request_timeout_s=1.0)) as url:
        r = httpx.get(f"{url}/v1/images/slow-0123456789", headers=auth(), timeout=10)
        assert r.status_code == 503 and "not answered within 1 s" in r.json()["detail"], r.text
        assert r.headers["retry-after"]
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"POST /v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                      "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000\r\n\r\n--x\r\n".encode())
            answer = s.recv(4096).decode()   # the rest of the body never comes
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "not received within 1 s" in answer


def test_options_sidecar_with_bad_options_is_quarantined(home, instance, sample_dir):
    from dagster_helpers import drop

    image = drop(home, sample_dir / "sample-00001.jpg", "hand.jpg")
    image.with_name("hand.jpg.options.json").write_text(json.dumps({"options": {"preset": "turbo"}}))
    result = tick(instance, home)
    assert not result.run_requests and not list(home.inbox.iterdir())
    reason = (home.quarantine / "hand.jpg.reason.txt").read_text()
    assert "options sidecar: preset" in reason and "turbo" in reason
    assert (home.quarantine / "hand.jpg.options.json").is_file()   # kept beside the image


def test_hash_token_command_makes_a_token_the_api_accepts(capsys):
    from v2v_assets.api.auth import Tokens
    from v2v_assets.cli import main

    assert main(["api", "hash-token"]) == 0
    out = capsys.readouterr().out
    token, digest = (re.search(r"token .*: (\S+)", out).group(1), re.search(r"(sha256:[0-9a-f]{64})", out).group(1))
    assert Tokens([digest]).identify(f"Bearer {token}") and not Tokens([digest]).identify(f"Bearer {token}x")
    assert token not in load_settings(overrides={"api": {"token_hashes": [digest]}}).model_dump_json()


def test_api_refuses_to_start_without_tokens(capsys):
    from v2v_assets.cli import main

    assert main(["api", "--port", "1"]) == 2
    assert "api.token_hashes is empty" in capsys.readouterr().err


def test_a_claim_whose_image_was_lost_is_written_again(home):
    """A writer that died between claiming the content and writing the inbox file: the same upload later
    writes it (once the claim is older than the grace a live writer needs)."""
    from v2v_resources import intake

    limits, data = load_settings().intake, png_bytes(7)
    first = intake.submit(home, data, "lost.png", {"seed": 3}, limits)
    image = intake.inbox_image(home, first.key)
    image.unlink()
    intake.sidecar_path(image).unlink()
    assert intake.submit(home, data, "lost.png", {}, limits) == intake.Submission(first.key, False)  # in grace
    assert intake.inbox_image(home, first.key) is None
    idx = next((home.root / "index").rglob(hashlib.sha256(data).hexdigest()))
    old = idx.stat().st_mtime - intake.CLAIM_GRACE_S - 1
    os.utime(idx, (old, old))
    assert intake.submit(home, data, "other.png", {"seed": 4}, limits) == intake.Submission(first.key, True)
    assert intake.read_sidecar(intake.inbox_image(home, first.key))["options"] == {"seed": 4}

