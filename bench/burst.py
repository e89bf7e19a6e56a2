"""Burst benchmark: N files land in the inbox at once (some duplicates by content, some still being written).

    .venv/bin/python bench/burst.py [-n 500] [--dups 50] [--growing 10] [--size 96] [--process 64]

The inbox sensor ticks until it settles; then the sensor's batch runs go through the whole chain on the lite
backends at tiny sizes (`--process` images; 0 skips processing). Prints the intake time per tick, the
processing time per batch and per image, and checks the intake invariants (one partition per distinct complete
image, the inbox empty, duplicates kept beside their partition). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tiny images need tiny working sizes; every phase still runs its real algorithm.
TINY = json.dumps({"intake": {"working_long_side": 128}, "phase2": {"generation_long_side": 128},
                   "phase3": {"output_long_side": 512, "preview_long_side": 128},
                   "phase4": {"trace_long_side": 512, "preview_long_side": 128}})


def tiny_photo(seed: int, size: int) -> bytes:
    """A distinct small vehicle-like photo: a body and two wheels on a graded background (JPEG bytes)."""
    rng = np.random.default_rng(seed)
    w, h = size, size * 3 // 4
    bg = np.zeros((h, w, 3), np.uint8)
    bg[...] = np.linspace(rng.integers(150, 230, 3), rng.integers(60, 140, 3), h, dtype=np.uint8)[:, None, :]
    im = Image.fromarray(bg)
    d = ImageDraw.Draw(im)
    body = tuple(int(c) for c in rng.integers(0, 200, 3))
    x0, y0 = int(w * rng.uniform(0.12, 0.2)), int(h * rng.uniform(0.3, 0.4))
    x1, y1 = int(w * rng.uniform(0.8, 0.88)), int(h * rng.uniform(0.62, 0.7))
    d.rectangle([x0, y0, x1, y1], fill=body)
    d.rectangle([x0 + (x1 - x0) // 4, y0 - h // 8, x1 - (x1 - x0) // 4, y0], fill=body)
    r = max(3, h // 10)
    for cx in (x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5):
        d.ellipse([cx - r, y1 - r, cx + r, y1 + r], fill=(20, 20, 20))
    arr = np.asarray(im).astype(np.int16) + rng.integers(-6, 7, (h, w, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def make_burst(inbox: Path, n: int, dups: int, growing: int, size: int = 96, seed: int = 0) -> dict:
    """Write n files at once: n - dups distinct images (the last `growing` of them half written, fresh mtime)
    and `dups` byte copies of complete ones under other names. Returns what the sensor must end up with."""
    distinct = n - dups
    assert 0 <= growing <= distinct and dups <= distinct - growing
    old = time.time() - 60
    digests, rest = set(), {}
    for i in range(distinct):
        data = tiny_photo(seed + i, size)
        digests.add(hashlib.sha256(data).hexdigest())
        p = inbox / f"burst-{i:05d}.jpg"
        if i >= distinct - growing:  # still being written: half the bytes now, the rest later
            p.write_bytes(data[: len(data) // 2])
            rest[p] = data[len(data) // 2:]
        else:
            p.write_bytes(data)
            os.utime(p, (old, old))
    for j in range(dups):
        src = inbox / f"burst-{j * (distinct - growing) // max(dups, 1):05d}.jpg"
        p = inbox / f"copy of {src.stem}.jpg"
        p.write_bytes(src.read_bytes())
        os.utime(p, (old, old))
    assert len(digests) == distinct, "generated images must differ"
    return {"digests": digests, "rest": rest}


def finish_writes(rest: dict) -> None:
    for p, tail in rest.items():
        with open(p, "ab") as f:
            f.write(tail)


def settle(instance, home, on_tick=None, max_ticks: int = 10) -> tuple[list, list[float]]:
    """Tick the inbox sensor (applying its partition requests, as the daemon does) until a tick finds
    nothing new and nothing is still being written. Returns (run requests, seconds per tick)."""
    from v2v_assets.definitions import build_resources, defs
    from v2v_assets.sensors import tick_inbox

    res = build_resources(str(home.root))
    cursor, requests, times = None, [], []
    for i in range(max_ticks):
        t0 = time.perf_counter()
        result = tick_inbox(instance, defs, res, cursor)
        times.append(time.perf_counter() - t0)
        requests += result.run_requests or []
        cursor = result.cursor
        if on_tick:
            on_tick(i)
        if not result.run_requests and not json.loads(cursor)["waiting"]:
            return requests, times
    raise RuntimeError(f"the inbox did not settle in {max_ticks} ticks")


def intake_invariants(instance, home, expected_digests: set[str]) -> list[str]:
    """Problems found (empty when every invariant holds)."""
    from v2v_resources.storage import sha256_file

    keys = list(instance.get_dynamic_partitions("images"))
    problems = []
    if len(keys) != len(set(keys)):
        problems.append("a partition key is repeated")
    stored = {}
    for k in keys:
        src = list(home.asset_dir("photo", k).glob("source.*"))
        if len(src) != 1:
            problems.append(f"{k}: {len(src)} source files")
            continue
        stored[sha256_file(src[0])] = k
    if set(stored) != expected_digests or len(stored) != len(keys):
        problems.append(f"{len(keys)} partitions for {len(expected_digests)} distinct images")
    if any(home.inbox.iterdir()):
        problems.append(f"inbox not empty: {sorted(p.name for p in home.inbox.iterdir())[:5]}")
    if any(home.quarantine.iterdir()):
        problems.append("a good image was quarantined")
    return problems


def process(instance, home, requests, limit: int, overrides: str = TINY) -> tuple[list[float], int]:
    """Run the sensor's batch requests (in order, up to `limit` images) through the chain in-process.
    Returns (seconds per batch, images processed)."""
    import dagster as dg

    from v2v_assets.definitions import build_resources, defs
    from v2v_assets.sensors import RANGE_END, RANGE_START
    from v2v_resources.phases import REGISTRY

    keys = list(instance.get_dynamic_partitions("images"))
    chain = [a for a in defs.assets if a.key.to_user_string() in REGISTRY.names]   # not the training assets
    times, done = [], 0
    for rr in requests:
        if done >= limit:
            break
        first, last = rr.tags[RANGE_START], rr.tags[RANGE_END]
        chunk = keys[keys.index(first): keys.index(last) + 1][: limit - done]
        t0 = time.perf_counter()
        dg.materialize(chain, instance=instance, raise_on_error=False,
                       resources=build_resources(str(home.root), overrides_json=overrides),
                       tags={RANGE_START: chunk[0], RANGE_END: chunk[-1]})
        times.append(time.perf_counter() - t0)
        done += len(chunk)
    return times, done


def outcomes(home, keys: list[str]) -> dict[str, str]:
    """processed | failed:<asset> | unfinished, per key."""
    from v2v_resources.phases import REGISTRY

    out = {}
    for k in keys:
        state = "processed"
        for a in REGISTRY.names:
            if home.path(a, k, "failure.json").is_file():
                state = f"failed:{a}"
                break
            if not home.path(a, k, "meta.json").is_file():
                state = "unfinished"
                break
        out[k] = state
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--dups", type=int, default=50)
    ap.add_argument("--growing", type=int, default=10)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--process", type=int, default=64, help="images to run through the chain (0: intake only)")
    args = ap.parse_args()

    import logging

    import dagster as dg

    from v2v_resources.storage import Home

    logging.getLogger("dagster").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="v2v-burst-") as tmp:
        home = Home(Path(tmp) / "v2v").ensure()
        os.environ["V2V_HOME"] = str(home.root)
        (Path(tmp) / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(tmp) / "dagster")) as instance:
            t0 = time.perf_counter()
            burst = make_burst(home.inbox, args.n, args.dups, args.growing, args.size)
            t_write = time.perf_counter() - t0
            requests, ticks = settle(instance, home, on_tick=lambda i: i == 0 and finish_writes(burst["rest"]))
            problems = intake_invariants(instance, home, burst["digests"])
            keys = list(instance.get_dynamic_partitions("images"))
            batch_s, n_done = process(instance, home, requests, args.process)
            states = outcomes(home, keys[:n_done])
    intake_s = sum(ticks)
    proc_s = sum(batch_s)
    for i, t in enumerate(ticks):
        print(f"tick {i}: {t:.2f} s")
    for i, t in enumerate(batch_s):
        print(f"batch {i}: {t:.2f} s")
    summary = {
        "files": args.n, "duplicates": args.dups, "growing": args.growing, "size": args.size,
        "write_s": round(t_write, 3), "ticks": len(ticks), "intake_s": round(intake_s, 3),
        "intake_ms_per_file": round(1000 * intake_s / args.n, 2), "partitions": len(keys),
        "run_requests": len(requests), "processed_images": n_done, "process_s": round(proc_s, 3),
        "process_s_per_image": round(proc_s / max(n_done, 1), 3),
        "outcomes": {s: list(states.values()).count(s) for s in sorted(set(states.values()))},
        "invariant_problems": problems,
    }
    print(f"intake: {len(keys)} partitions from {args.n} files in {intake_s:.2f} s over {len(ticks)} ticks; "
          f"processing: {n_done} images in {proc_s:.1f} s ({summary['process_s_per_image']:.2f} s/image)")
    print(json.dumps(summary))
    return 0 if not problems and "unfinished" not in summary["outcomes"] else 1


if __name__ == "__main__":
    sys.exit(main())
