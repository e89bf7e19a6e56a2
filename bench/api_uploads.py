"""Upload throughput and latency of `v2v api`, the way a client sees it.

    .venv/bin/python bench/api_uploads.py [-n 200] [--concurrency 16]

Starts `v2v api` as its own process on a free loopback port over a fresh $V2V_HOME (no daemon: uploads only
reach the inbox, which is all the API does), sends `-n` distinct 1024x768 JPEG photos (synthetic, ~100 kB
each) from `--concurrency` client threads, then sends them all again (duplicates: hashing and the content
index only) and reads each one's status. Prints requests/s and p50/p95 latency per kind and the machine's load
average (other work on the machine inflates every number). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from v2v_assets.api.auth import hash_token, new_token  # noqa: E402


def photos(n: int) -> list[bytes]:
    """Distinct photos of a realistic size: one sample vehicle, each with its own few noisy pixels."""
    from v2v_resources.samples import generate_samples

    with tempfile.TemporaryDirectory() as d:
        base = np.asarray(Image.open(next(p for p in generate_samples(Path(d), 1, seed=5) if p.suffix == ".jpg")))
    out, rng = [], np.random.default_rng(0)
    for _ in range(n):
        img = base.copy()
        img[rng.integers(0, img.shape[0], 16), rng.integers(0, img.shape[1], 16)] = rng.integers(0, 255, 3)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def timed(client: httpx.Client, fn, items, concurrency: int) -> tuple[float, list[float], list]:
    def one(item):
        t0 = time.perf_counter()
        r = fn(client, item)
        return time.perf_counter() - t0, r

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, items))
    return time.perf_counter() - t0, [t for t, _ in results], [r for _, r in results]


def summary(kind: str, wall: float, lat: list[float]) -> dict:
    lat = sorted(lat)
    row = {"kind": kind, "n": len(lat), "req_per_s": round(len(lat) / wall, 1),
           "p50_ms": round(statistics.median(lat) * 1000, 1),
           "p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1)}
    print(f"{kind:<10} {row['n']:>5} requests  {row['req_per_s']:>7} req/s  p50 {row['p50_ms']:>7} ms  "
          f"p95 {row['p95_ms']:>7} ms")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    data = photos(args.n)
    token = new_token()
    with tempfile.TemporaryDirectory(prefix="v2v-bench-api-") as tmp:
        tmp = Path(tmp)
        cfg = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg["api"].update(token_hashes=[hash_token(token)], port=port, rate_limit_per_minute=1e6,
                          rate_limit_burst=100000)
        (tmp / "settings.yaml").write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "V2V_CONFIG": str(tmp / "settings.yaml"), "V2V_HOME": str(tmp / "home"),
               "PYTHONPATH": str(ROOT)}
        env.pop("DAGSTER_HOME", None)
        server = subprocess.Popen([sys.executable, "-m", "v2v_assets.cli", "api", "--log-level", "warning"],
                                  cwd=ROOT, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.get("/health")
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline and server.poll() is None, "v2v api did not start"
                        time.sleep(0.2)

                def post(c, i):
                    r = c.post("/v1/images", files={"file": (f"car-{i}.jpg", data[i], "image/jpeg")})
                    assert r.status_code in (200, 202), r.text
                    return r.json()["key"]

                rows = []
                wall, lat, keys = timed(client, post, range(args.n), args.concurrency)
                rows.append(summary("upload", wall, lat))
                wall, lat, again = timed(client, post, range(args.n), args.concurrency)
                assert again == keys, "a duplicate got another key"
                rows.append(summary("duplicate", wall, lat))
                wall, lat, _ = timed(client, lambda c, k: c.get(f"/v1/images/{k}").raise_for_status(), keys,
                                     args.concurrency)
                rows.append(summary("status", wall, lat))
        finally:
            server.terminate()
            server.wait(30)
        inbox = len([p for p in (tmp / "home" / "inbox").iterdir() if p.suffix == ".jpg"])
    assert inbox == args.n, f"{inbox} images in the inbox, {args.n} sent"
    mb = sum(map(len, data)) / args.n / 1e6
    print(f"{args.n} distinct photos of {mb:.2f} MB, concurrency {args.concurrency}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(json.dumps({"rows": rows, "photo_mb": round(mb, 3), "concurrency": args.concurrency,
                      "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
