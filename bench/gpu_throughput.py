"""Throughput of the whole pipeline on synthetic-weight models at their real sizes: no weights needed.

    python bench/gpu_throughput.py                          # full-size models, both profiles, three variants
    python bench/gpu_throughput.py --scale tiny --device cpu --images 2 --warmup 1 --size 128x96   # smoke test

Every ml model is written once with random weights at its published architecture (configs/architectures/
<scale>.yaml; `v2v_resources.models.synthetic`) in the real on-disk formats, then each (profile, variant)
runs in its own process through the production engines (`make_sanitizer`, `make_steerer`, `make_upscaler`)
and one `VramManager`:
  GPU stage, per image in order: phase I (GroundingDINO, SAM, LaMa), phase II (depth, Canny, SDXL +
    2 ControlNets + style LoRA, silhouette check by SAM), phase III's ×4 ESRGAN.
  CPU stage: phases III (palette mapping, despeckle) and IV (vtracer, validation, preview), the production
    `run_palette_raster` / `run_vector_svg` with their file writes. Random weights paint noise, which no
    real model does and which would make vtracer trace millions of specks, so the CPU stage gets the lite
    engine's flat illustration of the same photo (Lanczos ×4) instead.
Variants: `seed` = the seed's settings (fp16, attention slicing, every ControlNet on every step, CPU stage
run after each image); `default` = v2v's defaults (SDPA, finished ControlNets skipped, prompt encoded once,
CPU stage overlapped with the next images' GPU work in a process pool, as concurrent Dagster runs overlap
it with the `gpu` pool); `compiled` = default + `hardware.compile`. Profiles: `all-resident` (the whole
card) and `24gb` (budget 24 GB, enforced as a hard allocator cap). The text encoders run at full size; the
silhouette check cannot pass on random weights, so each image is one attempt (retries off).
Prints a line per run and a final JSON line; `--results FILE` appends one JSON line per run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")     # no per-load progress bars in the logs
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PROFILES = {"all-resident": None, "24gb": 24.0}
VARIANTS = {
    "seed": {"hardware": {"enable_attention_slicing": True},
             "phase2": {"sdxl": {"skip_finished_controlnets": False}}},
    "default": {},
    "compiled": {"hardware": {"compile": True}},
    "bf16": {"hardware": {"precision": "bfloat16"}},      # SDXL's VAE runs natively (fp16 upcasts it to fp32)
    "compiled-bf16": {"hardware": {"compile": True, "precision": "bfloat16"}},
}
OVERLAP = {v: v != "seed" for v in VARIANTS}


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments the host, Dagster and phase-I benches share (what `bench_inputs` reads, and where results
    go)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--scale", default="full")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--size", default="1024x1024")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--work", default=None)
    ap.add_argument("--results", default=None)
    return ap


def bench_inputs(args, prefix: str) -> tuple[bool, Path, Path, tuple[int, int]]:
    """(cuda?, the work folder, the random-weight models of `args.scale` in it, the photo size) for a bench
    parsed by `bench_parser`."""
    from v2v_resources.models.synthetic import ensure_models

    cuda = args.device.startswith("cuda")
    work = Path(args.work or tempfile.mkdtemp(prefix=prefix)).resolve()
    models = ensure_models(work / f"models-{args.scale}", args.scale, cuda)
    return cuda, work, models, tuple(int(v) for v in args.size.split("x"))


def bench_overrides(device: str, budget_gb: float | None, size: tuple[int, int], steps: int | None = None) -> dict:
    """Production settings, with what random weights need: open vehicle-area bounds and no IoU retries."""
    sdxl = {"steps": steps} if steps else {}
    return {"hardware": {"device": device, "max_vram_gb": budget_gb},
            "intake": {"working_long_side": max(size)},
            # thresholds 0: random logits pass, so every photo has max_parts parts to segment and erase,
            # as a busy real photo does (at the configured thresholds random weights find none, and LaMa idles)
            "phase1": {"backend": "ml", "quality": {"min_vehicle_area": 0.0, "max_vehicle_area": 1.0,
                                                    "max_erased_share": 1.0},
                       "detector": {"box_threshold": 0.0, "text_threshold": 0.0, "max_part_share": 1.0}},
            "phase2": {"backend": "ml", "generation_long_side": max(size),
                       "iou_retry": {"max_retries": 0, "allow_skip_on_failure": True}, "sdxl": sdxl},
            "phase3": {"backend": "ml"}}


def merge(*dicts: dict) -> dict:
    from v2v_resources.settings import deep_merge

    out: dict = {}
    for d in dicts:
        out = deep_merge(out, d)
    return out


# ------------------------------------------------------------------------------------------ inputs
def prepare_one(work: str, i: int, size: tuple[int, int], overrides: str) -> str:
    """Photo i as PNG, and the lite engine's illustration + mask of it in the CPU stage's home."""
    from v2v_resources import imaging
    from v2v_resources.samples import draw_sample
    from v2v_resources.sanitize.lite import GrabCutSanitizer
    from v2v_resources.settings import load_settings
    from v2v_resources.steer.lite import FlatteningSteerer
    from v2v_resources.storage import Home

    s = load_settings(overrides=json.loads(overrides))
    rgb, mask, _ = draw_sample(1000 + i, size)
    key = f"img{i:03d}"
    imaging.save_png(Path(work) / "photos" / f"{key}.png", rgb)
    home = Home(Path(work) / "cpu_home")
    ill = FlatteningSteerer(s.phase2, GrabCutSanitizer(s.phase1)).steer(rgb, mask, seed=i)
    imaging.save_png(home.path("illustration", key, "illustration.png"), ill.illustration)
    imaging.save_mask(home.path("illustration", key, "mask.png"), ill.mask)
    return key


# ------------------------------------------------------------------------------------------ CPU stage
_cpu: dict = {}


def _cpu_init(home: str, overrides: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"     # one image per worker: no thread oversubscription
    os.nice(10)                             # the process feeding the GPU comes first
    import cv2

    from v2v_resources.chroma.raster import PaletteRasterEngine
    from v2v_resources.chroma.upscale import LanczosUpscaler
    from v2v_resources.palette import Palette
    from v2v_resources.settings import load_settings
    from v2v_resources.storage import Home
    from v2v_resources.vector.engine import Vectorizer

    cv2.setNumThreads(1)
    s = load_settings(overrides=json.loads(overrides))
    pal = Palette.from_choice(s.palette)
    h = Home(Path(home))
    _cpu.update(home=h, settings=s, vector=Vectorizer(s.phase4, pal, h.cache),
                raster=PaletteRasterEngine(s.phase3, pal, LanczosUpscaler(), h.cache))


def cpu_stage(key: str) -> dict:
    from v2v_resources.phases import palette_raster, vector_svg

    t0 = time.perf_counter()
    r3 = palette_raster.run(_cpu["home"], key, _cpu["settings"], _cpu["raster"])
    t1 = time.perf_counter()
    r4 = vector_svg.run(_cpu["home"], key, _cpu["settings"], _cpu["vector"])
    return {"raster_s": t1 - t0, "vector_s": time.perf_counter() - t1, "agreement": r4.metadata.get("agreement"),
            "ok": not r3.failed_checks and not r4.failed_checks, "done": time.perf_counter()}


def _started(_: int) -> int:
    time.sleep(0.2)       # long enough that each worker takes one: all start (and import) before timing
    return os.getpid()


# ------------------------------------------------------------------------------------------ one run
def run_child(args) -> dict:
    import numpy as np
    import torch

    from v2v_resources import imaging
    from v2v_resources.backends import make_sanitizer, make_steerer, make_upscaler
    from v2v_resources.settings import load_settings
    from v2v_resources.vram import VramManager

    budget = PROFILES[args.profile]
    size = tuple(int(v) for v in args.size.split("x"))
    overrides = merge(bench_overrides(args.device, budget, size, args.steps), VARIANTS[args.variant])
    s = load_settings(overrides=overrides)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda and budget:   # a hard cap, as on a card of that size: above it the allocator really runs out
        torch.cuda.set_per_process_memory_fraction(min(1.0, budget * 1e9 / torch.cuda.get_device_properties(0).total_memory))
    work = Path(args.work)
    keys = sorted(p.stem for p in (work / "photos").glob("*.png"))[: args.warmup + args.images]
    models = Path(args.models)

    t = time.perf_counter()
    vram = VramManager(s.hardware)
    kw = dict(models_root=models, manifest=models / "models.yaml", vram=vram)
    san = make_sanitizer(s, **kw)
    steer = make_steerer(s, san, **kw)
    up = make_upscaler(s, **kw)
    load_s = time.perf_counter() - t
    timings: dict[str, list[float]] = {"sdxl": [], "vae": []}

    def timed(fn, bucket):
        def call(*a, **k):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            if cuda:
                torch.cuda.synchronize()
            timings[bucket].append(time.perf_counter() - t0)
            return out
        return call
    steer.generate = timed(steer.generate, "sdxl")
    steer.pipe.vae.decode = timed(steer.pipe.vae.decode, "vae")

    ctx = get_context("spawn")     # the parent holds CUDA: never fork it
    pool = ProcessPoolExecutor(args.cpu_workers, mp_context=ctx, initializer=_cpu_init,
                               initargs=(str(work / "cpu_home"), json.dumps(overrides)))
    list(pool.map(_started, range(args.cpu_workers)))

    rows, futures, failures = [], [], []
    t_start = None
    for n, key in enumerate(keys):
        if n == args.warmup:
            for row, fut in futures:
                row.update(fut.result())
            futures.clear()
            if cuda:
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        row = {"key": key, "warmup": n < args.warmup}
        t0 = time.perf_counter()
        try:
            rgb = imaging.load_png(work / "photos" / f"{key}.png")
            res = san.sanitize(rgb)
            t1 = time.perf_counter()
            ill = steer.steer(res.clean, res.vehicle_mask, seed=n)
            t2 = time.perf_counter()
            up.upscale(ill.illustration)
            if cuda:
                torch.cuda.synchronize()
            t3 = time.perf_counter()
        except Exception as e:      # one image failing must not end the benchmark: it is counted
            failures.append(f"{key}: {type(e).__name__}: {e}"[:300])
            continue
        row.update(sanitize_s=t1 - t0, steer_s=t2 - t1, upscale_s=t3 - t2, gpu_s=t3 - t0,
                   attempts=len(ill.attempts), parts=sum(d["kept"] for d in res.detections[1:]))
        fut = pool.submit(cpu_stage, key)
        if OVERLAP[args.variant]:
            futures.append((row, fut))
        else:
            row.update(fut.result())
        rows.append(row)
    for row, fut in futures:
        row.update(fut.result())
    wall = time.perf_counter() - t_start if t_start else float("nan")
    pool.shutdown()

    step_ms = None if s.hardware.compile else denoiser_step_ms(steer.pipe, size, cuda)
    timed = [r for r in rows if not r["warmup"]]
    med = lambda k: round(float(np.median([r[k] for r in timed])), 4) if timed else None  # noqa: E731
    total = torch.cuda.get_device_properties(0).total_memory / 1e9 if cuda else None
    return {
        "profile": args.profile, "variant": args.variant, "scale": args.scale, "size": args.size,
        "steps": s.phase2.sdxl.steps,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu", "card_gb": round(total, 1) if total else None,
        "torch": torch.__version__, "dtype": str(vram.dtype).removeprefix("torch."), "date": time.strftime("%Y-%m-%d"),
        "budget_gb": vram.budget_gb, "images": len(timed), "warmup": args.warmup, "cpu_workers": args.cpu_workers,
        "overlap_cpu": OVERLAP[args.variant], "load_s": round(load_s, 2),
        "first_image_s": round(rows[0]["gpu_s"], 2) if rows else None,
        "s_per_image": {"sanitize": med("sanitize_s"), "steer": med("steer_s"), "upscale": med("upscale_s"),
                        "gpu_total": med("gpu_s"), "cpu_raster": med("raster_s"), "cpu_vector": med("vector_s")},
        "sdxl_s_per_attempt": round(float(np.median(timings["sdxl"][-len(timed):])), 4) if timed else None,
        "denoiser_step_ms": step_ms,
        "vae_decode_s": round(float(np.median(timings["vae"][-len(timed):])), 4) if timed else None,
        "attempts_per_image": med("attempts"), "parts_per_image": med("parts"),
        "wall_s": round(wall, 2), "images_per_hour": round(len(timed) / wall * 3600, 1) if timed else 0.0,
        "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else 0.0,
        "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 2) if cuda else 0.0,
        "vram_events": list(vram.events)[:5], "failures": failures,
        "svg_ok": sum(bool(r.get("ok")) for r in timed), "agreement_min": min(
            (r["agreement"] for r in timed if r.get("agreement") is not None), default=None),
        "text_encoders": "full size, prompt encoded once per engine" if args.variant != "seed"
                         else "full size, prompt encoded once per engine (the seed encoded it per attempt: ~20 ms)",
    }


def denoiser_step_ms(pipe, size: tuple[int, int], cuda: bool, n: int = 10) -> float:
    """One classifier-free-guidance step (batch 2) of the UNet with both ControlNets on, called directly:
    the figure notes/performance-anchors.md gives for the same card class (eager: 112-131 ms)."""
    import torch

    dev, dt = pipe.unet.device, pipe.unet.dtype
    w, h = size
    g = torch.Generator(device=dev).manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=g, device=dev, dtype=dt)  # noqa: E731
    lat, enc = rand(2, 4, h // 8, w // 8), rand(2, 77, pipe.unet.config.cross_attention_dim)
    added = {"text_embeds": rand(2, pipe.text_encoder_2.config.projection_dim), "time_ids": rand(2, 6)}
    t = torch.tensor(500, device=dev)
    cond = [rand(2, 3, h, w), rand(2, 3, h, w)]
    times = []
    with torch.inference_mode():
        for i in range(n + 3):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            down, mid = pipe.controlnet(lat, t, enc, cond, [0.6, 0.4], added_cond_kwargs=added, return_dict=False)
            pipe.unet(lat, t, enc, added_cond_kwargs=added, down_block_additional_residuals=down,
                      mid_block_additional_residual=mid)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return round(sorted(times[3:])[n // 2] * 1000, 1)


# ------------------------------------------------------------------------------------------ driver
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="full", help="architecture set under configs/architectures/")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--profiles", default="all-resident,24gb")
    ap.add_argument("--variants", default="seed,default,compiled")
    ap.add_argument("--images", type=int, default=16, help="timed images per run (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", default="1024x1024", help="photo size WxH; phase II generates at its long side")
    ap.add_argument("--steps", type=int, default=None, help="SDXL steps (default: the config's, the seed's 30)")
    # enough to keep up with the GPU (one image's CPU stage is ~6 s of a core, its GPU stage ~3-4 s); more
    # workers only compete with the process launching the GPU kernels
    ap.add_argument("--cpu-workers", type=int, default=max(1, min(6, (os.cpu_count() or 2) - 2)))
    ap.add_argument("--work", default=None, help="folder for models and inputs (kept; reused when present)")
    ap.add_argument("--results", default=None, help="append one JSON line per run to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--models", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_child(args)), flush=True)
        return 0

    import torch

    from v2v_resources.models.synthetic import ensure_models

    work = Path(args.work or tempfile.mkdtemp(prefix="v2v-bench-"))
    cuda = torch.cuda.is_available() and args.device != "cpu"
    models = ensure_models(work / f"models-{args.scale}", args.scale, cuda)
    size = tuple(int(v) for v in args.size.split("x"))
    n = args.warmup + args.images
    if len(list((work / "photos").glob("*.png"))) < n:
        t = time.perf_counter()
        ov = json.dumps(bench_overrides("cpu", None, size))
        with ProcessPoolExecutor(max(1, args.cpu_workers), mp_context=get_context("spawn")) as ex:
            list(ex.map(prepare_one, [str(work)] * n, range(n), [size] * n, [ov] * n))
        print(f"{n} photos and their lite illustrations prepared in {time.perf_counter() - t:.1f} s", flush=True)

    results = []
    for profile in args.profiles.split(","):
        for variant in args.variants.split(","):
            cmd = [sys.executable, __file__, "--child", "--profile", profile, "--variant", variant,
                   "--models", str(models), "--work", str(work), "--scale", args.scale, "--device", args.device,
                   "--images", str(args.images), "--warmup", str(args.warmup), "--size", args.size,
                   *(["--steps", str(args.steps)] if args.steps else []),
                   "--cpu-workers", str(args.cpu_workers)]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{profile}/{variant}: FAILED (exit {proc.returncode})\n{proc.stderr[-3000:]}", flush=True)
                results.append({"profile": profile, "variant": variant, "error": proc.stderr[-500:]})
                continue
            r = json.loads(lines[-1][len("RESULT "):])
            results.append(r)
            p = r["s_per_image"]
            print(f"{profile:12s} {variant:9s} {r['images_per_hour']:8.1f} img/h | GPU s/img: sanitize "
                  f"{p['sanitize']} steer {p['steer']} (SDXL {r['sdxl_s_per_attempt']}/attempt) upscale "
                  f"{p['upscale']} = {p['gpu_total']} (VAE decode {r['vae_decode_s']}, raw CFG step {r['denoiser_step_ms']} ms) | CPU s/img: raster {p['cpu_raster']} vector {p['cpu_vector']}"
                  f" | peak {r['peak_vram_gb']} GB (reserved {r['peak_reserved_gb']}, budget {r['budget_gb']}) | "
                  f"load {r['load_s']} s, first image {r['first_image_s']} s, run {time.perf_counter() - t:.0f} s"
                  f"{' | failures: ' + str(len(r['failures'])) if r['failures'] else ''}", flush=True)
            if args.results:
                with open(args.results, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print(json.dumps({"work": str(work), "runs": results}))
    return 0 if results and all("error" not in r and not r["failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
