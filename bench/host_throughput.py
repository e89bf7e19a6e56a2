"""Throughput and latency of `v2v host` (one resident model host per GPU) on synthetic full-size models.

    python bench/host_throughput.py --work .bench-work --images 64 --results bench/results/host.jsonl
    python bench/host_throughput.py --scale tiny --device cpu --images 4 --size 128x96   # smoke test

Starts `v2v host` as its own process on the configured models (written once, random weights at their real
sizes, as bench/gpu_throughput.py does) and measures:
  cold start  spawn → /ready (load, verify, warm-up incl. SDXL at batch 1 and max_batch)
  single      one photo on the warm host: photo → phases I, II, III on the host → phase IV here, seconds
  burst       N photos sent at once, each its own chain (as N concurrent runs' steps would send them):
              images per hour from the first request to the last SVG (and to the last raster)
The photo and vector phases run here (CPU), as they do in a Dagster step, phase IV in a process pool. The
host is bench/host_serve.py: `v2v host` with each generated image flattened after its SDXL call (random
weights paint noise, which phases III and IV would spend minutes on; see there). Settings: the seed's
quality settings with what random weights need (bench/gpu_throughput.py `bench_overrides`: no IoU retries,
detector thresholds 0, and phase IV's agreement bound open).
Prints one line per measurement and appends one JSON line per measurement to --results.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gpu_throughput import bench_inputs, bench_overrides, bench_parser, merge  # noqa: E402

GPU_PHASES = ("clean_plate", "illustration", "palette_raster")
_cpu: dict = {}


# ------------------------------------------------------------------------------------------ phase IV here
def _vector_init(home: str, overrides: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from v2v_resources.phases import Engines
    from v2v_resources.settings import load_settings
    from v2v_resources.storage import Home

    s = load_settings(overrides=json.loads(overrides))
    h = Home(Path(home))
    _cpu.update(home=h, settings=s, vector=Engines(s, h.cache).get("vector_svg"))


def vector(key: str) -> dict:
    from v2v_resources.phases import vector_svg

    t0 = time.perf_counter()
    r = vector_svg.run(_cpu["home"], key, _cpu["settings"], _cpu["vector"])
    return {"vector_s": time.perf_counter() - t0, "svg_ok": not r.failed_checks, "done": time.time()}


def photo(work: str, i: int, size: tuple[int, int]) -> str:
    from v2v_resources import imaging
    from v2v_resources.samples import draw_sample
    from v2v_resources.storage import Home

    rgb, _, _ = draw_sample(1000 + i, size)
    key = f"img{i:03d}"
    imaging.save_png(Home(Path(work) / "home").path("photo", key, "source.png"), rgb)
    return key


# ------------------------------------------------------------------------------------------ host process
def start_host(args, cfg: Path, models: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "host_serve.py"), "--device", args.device,
                             "--port", str(args.port), "--config", str(cfg), "--models", str(models),
                             "--manifest", str(models / "models.yaml")],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)


def metric_values(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# ------------------------------------------------------------------------------------------ one chain
def chain(client, home, key: str, dump: dict, settings, vec_pool) -> dict:
    from v2v_resources.phases import REGISTRY

    row = {"key": key, "start": time.time()}
    REGISTRY["photo"].run(home, key, settings, None)
    for phase in GPU_PHASES:
        out = client.run(phase, str(home.root), key, dump)
        row[f"{phase}_s"] = out["seconds"]
    row["raster_done"] = time.time()
    row.update(vec_pool.submit(vector, key).result())
    row["total_s"] = row["done"] - row["start"]
    return row


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--max-batch", type=int, default=None, help="default host.max_batch")
    ap.add_argument("--max-wait-ms", type=float, default=None)
    ap.add_argument("--compile", action="store_true", help="hardware.compile (compiled once, at warm-up)")
    ap.add_argument("--vector-workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 4)))
    ap.add_argument("--keep-host", action="store_true", help="leave the host running (prints its URL)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # a killed bench still stops what it started

    import torch
    import yaml

    from v2v_resources.host.client import HostClient
    from v2v_resources.settings import load_settings
    from v2v_resources.storage import Home

    cuda, work, models, size = bench_inputs(args, "v2v-host-bench-")
    n = args.images + 2                 # + the single-photo runs before and after the burst
    over = bench_overrides("cuda" if cuda else "cpu", None, size, args.steps)
    host = {k: v for k, v in (("max_batch", args.max_batch), ("max_wait_ms", args.max_wait_ms),
                              ("port", args.port)) if v is not None}
    over = merge(over, {"host": host, "phase4": {"quality": {"min_agreement": 0.0}}},
                 {"hardware": {"compile": True}} if args.compile else {})
    settings = load_settings(overrides=over)
    dump = settings.model_dump(mode="json")
    ctx = get_context("spawn")
    if (work / "home").exists():
        shutil.rmtree(work / "home")
    t = time.perf_counter()
    with ProcessPoolExecutor(args.vector_workers, mp_context=ctx) as ex:
        keys = list(ex.map(photo, [str(work)] * n, range(n), [size] * n))
    home = Home(work / "home").ensure()
    vec_pool = ProcessPoolExecutor(args.vector_workers, mp_context=ctx, initializer=_vector_init,
                                   initargs=(str(home.root), json.dumps(merge(over, {"hardware": {"device": "cpu"}}))))
    print(f"{n} photos drawn in {time.perf_counter() - t:.1f} s", flush=True)

    cfg = work / "host.yaml"
    cfg.write_text(yaml.safe_dump(dump))
    log = work / "host.log"
    t_spawn = time.time()
    proc = start_host(args, cfg, models, log)
    url = f"http://127.0.0.1:{args.port}"
    client = HostClient(url, retries=3, backoff_s=1.0)
    results = []

    def emit(rec: dict) -> None:
        rec = {"bench": "host_throughput", "scale": args.scale, "device": torch.cuda.get_device_name(0) if cuda
               else "cpu", "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "size": args.size,
               "steps": settings.phase2.sdxl.steps, "max_batch": settings.host.max_batch,
               "max_wait_ms": settings.host.max_wait_ms, "compile": settings.hardware.compile, **rec}
        results.append(rec)
        print(json.dumps(rec), flush=True)
        if args.results:
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(rec) + "\n")

    try:
        ready = client.wait_ready(1200, poll_s=0.5)[url]
        emit({"measure": "cold_start", "seconds": round(time.time() - t_spawn, 2), "host_timings": ready["timings"],
              "backends": ready.get("backends")})

        def single(key: str, label: str) -> None:
            row = chain(client, home, key, dump, settings, vec_pool)
            emit({"measure": label, "seconds": round(row["total_s"], 2),
                  "to_raster_s": round(row["raster_done"] - row["start"], 2),
                  **{k: round(v, 3) for k, v in row.items() if k.endswith("_s") and k != "total_s"}})

        single(keys[0], "single_warm")
        burst = keys[2:]
        before = metric_values(httpx_get(f"{url}/metrics"))
        t0 = time.time()
        failures: list[str] = []
        with ThreadPoolExecutor(len(burst)) as pool:
            futs = [pool.submit(chain, client, home, k, dump, settings, vec_pool) for k in burst]
            rows = []
            for f in futs:
                try:
                    rows.append(f.result())
                except Exception as e:     # counted, not fatal
                    failures.append(f"{type(e).__name__}: {e}"[:300])
        after = metric_values(httpx_get(f"{url}/metrics"))
        last_svg = max((r["done"] for r in rows), default=t0)
        last_raster = max((r["raster_done"] for r in rows), default=t0)
        bs = "v2v_host_sdxl_batch_size"
        batches = after.get(f"{bs}_count", 0) - before.get(f"{bs}_count", 0)
        imgs = after.get(f"{bs}_sum", 0) - before.get(f"{bs}_sum", 0)
        sec = "v2v_host_sdxl_batch_seconds"
        sdxl_s = after.get(f"{sec}_sum", 0) - before.get(f"{sec}_sum", 0)
        med = lambda k: round(sorted(r[k] for r in rows)[len(rows) // 2], 3) if rows else None  # noqa: E731
        emit({"measure": "burst", "images": len(rows), "failures": failures,
              "wall_s": round(last_svg - t0, 2), "images_per_hour": round(len(rows) / (last_svg - t0) * 3600, 1),
              "raster_wall_s": round(last_raster - t0, 2),
              "images_per_hour_to_raster": round(len(rows) / (last_raster - t0) * 3600, 1),
              "sdxl_batches": batches, "sdxl_mean_batch": round(imgs / batches, 2) if batches else None,
              "sdxl_s_per_image": round(sdxl_s / imgs, 3) if imgs else None,
              "sdxl_busy_share": round(sdxl_s / (last_raster - t0), 3) if rows else None,
              "median_s": {k: med(k) for k in ("clean_plate_s", "illustration_s", "palette_raster_s", "vector_s",
                                               "total_s")},
              "svg_ok": sum(r["svg_ok"] for r in rows),
              "peak_vram_gb": round(after.get('v2v_host_vram_bytes{kind="peak_allocated"}', 0) / 1e9, 2),
              "reserved_vram_gb": round(after.get('v2v_host_vram_bytes{kind="reserved"}', 0) / 1e9, 2)})
        single(keys[1], "single_warm_after_burst")
        if args.keep_host:
            print(f"host left running at {url} (pid {proc.pid})", flush=True)
            return 0
    finally:
        vec_pool.shutdown(cancel_futures=True)
        client.close()
        if not args.keep_host:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0 if results and not any(r.get("failures") for r in results) else 1


def httpx_get(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=30).text


if __name__ == "__main__":
    sys.exit(main())
