"""The ml chain (phases I–III) on tiny random-weight models in the real formats, on whatever device there is.

Proves the loaders, the VRAM manager and the engines on CUDA (fp16) without real weights:
    python bench/ml_tiny_device.py [--device cuda] [--images 3]
Prints per-phase seconds, backends, device and peak VRAM; the last line is one JSON object."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ml")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from tiny_models import write_tiny_models
    from v2v_resources.backends import make_sanitizer, make_steerer, make_upscaler
    from v2v_resources.samples import draw_sample
    from v2v_resources.settings import load_settings
    from v2v_resources.vram import VramManager

    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_tiny_models(Path(tmp))
        s = load_settings(overrides={
            "hardware": {"device": args.device, "precision": "float16"},
            "phase1": {"backend": "ml", "quality": {"min_vehicle_area": 0.0, "max_vehicle_area": 1.0}},
            "phase2": {"backend": "ml", "generation_long_side": 64, "sdxl": {"steps": 2},
                       "iou_retry": {"allow_skip_on_failure": True, "max_retries": 1}},
            "phase3": {"backend": "ml", "esrgan_tile": 32, "esrgan_tile_pad": 4}})
        vram = VramManager(s.hardware)
        kw = dict(models_root=Path(tmp), manifest=manifest, vram=vram)
        t = time.perf_counter()
        san = make_sanitizer(s, **kw)
        steer = make_steerer(s, san, **kw)
        up = make_upscaler(s, **kw)
        load_s = time.perf_counter() - t
        times = {"sanitize": [], "steer": [], "upscale": []}
        for i in range(args.images):
            rgb, mask, _ = draw_sample(i, (128, 96))
            t = time.perf_counter()
            res = san.sanitize(rgb, (mask * 255).astype(np.uint8))
            times["sanitize"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ill = steer.steer(res.clean, res.vehicle_mask, seed=i)
            times["steer"].append(time.perf_counter() - t)
            t = time.perf_counter()
            big = up.upscale(ill.illustration)
            times["upscale"].append(time.perf_counter() - t)
            assert big.shape[0] == 4 * ill.illustration.shape[0]
            print(f"image {i}: sanitize {times['sanitize'][-1]:.3f} s, steer {times['steer'][-1]:.3f} s "
                  f"(IoU {ill.silhouette_iou:.3f}, {len(ill.attempts)} attempts), upscale {times['upscale'][-1]:.3f} s")
        out = {
            "device": vram.device, "dtype": str(vram.dtype), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "backends": {"phase1": san.backend, "phase2": steer.backend, "phase3": up.backend},
            "load_s": round(load_s, 3),
            "steady_s": {k: round(float(np.median(v[1:] or v)), 4) for k, v in times.items()},
            "first_s": {k: round(v[0], 4) for k, v in times.items()},
            "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 4) if torch.cuda.is_available() else 0.0,
            "vram_events": [str(e) for e in vram.events][:10],
        }
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
