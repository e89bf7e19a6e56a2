"""Phase I (GroundingDINO + SAM + LaMa, ml) on one GPU: images one at a time, against several request threads
sharing the models as `v2v host` does (each model behind its own lock, each thread on its own CUDA stream).

    python bench/phase1_interleave.py --images 12 --threads 4 --results bench/results/phase1_interleave.jsonl

Full-size random-weight models (`ensure_models`), 1024×768 synthetic photos, detector thresholds 0 so that every
photo has `max_parts` parts to segment and erase (bench/gpu_throughput.py `bench_overrides`).
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    from gpu_throughput import bench_inputs, bench_overrides, bench_parser

    ap = bench_parser(__doc__)
    ap.set_defaults(images=12, size="1024x768", work="/tmp/phase1-bench")
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    import torch

    from v2v_resources.host.engines import lock_models
    from v2v_resources.host.service import cuda_stream_per_thread
    from v2v_resources.phases import Engines
    from v2v_resources.samples import draw_sample
    from v2v_resources.settings import load_settings

    cuda, work, models, size = bench_inputs(args, "v2v-phase1-")
    settings = load_settings(overrides=bench_overrides("cuda" if cuda else "cpu", None, size))
    t = time.perf_counter()
    kit = Engines(settings, work / "cache", models_root=models, manifest=models / "models.yaml")
    san = lock_models(kit.get("clean_plate"))
    load_s = time.perf_counter() - t
    photos = [draw_sample(3000 + i, size)[0] for i in range(args.images)]

    def emit(rec: dict) -> None:
        rec = {"bench": "phase1_interleave", "scale": args.scale, "device": torch.cuda.get_device_name(0)
               if cuda else "cpu", "date": time.strftime("%Y-%m-%d"), "images": args.images, **rec}
        print(json.dumps(rec), flush=True)
        if args.results:
            with open(args.results, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for rgb in photos[:2]:                         # warm-up: cuDNN autotuning, allocator growth
        san.sanitize(rgb)
    sync()
    emit({"measure": "load", "seconds": round(load_s, 2)})
    t = time.perf_counter()
    for rgb in photos:
        san.sanitize(rgb)
    sync()
    serial = time.perf_counter() - t
    emit({"measure": "serial", "threads": 1, "s_per_image": round(serial / len(photos), 3)})
    pool = ThreadPoolExecutor(args.threads, initializer=cuda_stream_per_thread(args.device if cuda else "cpu"))
    t = time.perf_counter()
    list(pool.map(san.sanitize, photos))
    sync()
    threaded = time.perf_counter() - t
    pool.shutdown()
    emit({"measure": "interleaved", "threads": args.threads, "s_per_image": round(threaded / len(photos), 3),
          "speedup": round(serial / threaded, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
