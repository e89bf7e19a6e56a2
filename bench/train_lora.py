"""Style LoRA training speed and memory on a synthetic-weight SDXL: seconds per step, peak VRAM, 2,000 steps.

    python bench/train_lora.py                                   # full-size SDXL, 1024², batch 1 and 4, both profiles
    python bench/train_lora.py --scale tiny --device cpu         # smoke test (64², a few steps)

SDXL is written once with random weights at its published architecture (configs/architectures/<scale>.yaml,
`v2v_resources.models.synthetic`) and loaded the way production loads it (the manifest's variant). Each
(profile, batch) trains through the production `LoraTrainer.train` with gradient_accumulation 1, so a step is
one forward + backward + optimizer step of `batch` images; the first `--warmup` steps are not timed. Kernel time
does not depend on weight values. Profiles: `default` (configs/default.yaml: bf16, AdamW, no gradient
checkpointing) and `24gb` (configs/training/24gb.yaml: fp16, gradient checkpointing, 8-bit AdamW where
bitsandbytes is installed). Peak VRAM is `max_memory_allocated` / `max_memory_reserved` up to the last
training step (the sample grid after it is not counted). Prints a line per run and a final JSON line.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PROFILES = ("default", "24gb")


def training_set(folder: Path, n: int, size: int) -> None:
    """`n` flat-colour 'illustrations' with captions (the content does not change the speed)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((size, size, 3), 255, np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        img[y:y + size // 2, x:x + size // 2] = rng.integers(0, 255, 3)
        Image.fromarray(img).save(folder / f"ref{i}.png")
        (folder / f"ref{i}.txt").write_text(f"flat vector illustration of a car {i} <flt_vctr_style>")


def run(base: Path, variant: str | None, data, out: Path, profile: str, batch: int, args) -> dict:
    import torch

    from v2v_resources.settings import deep_merge, load_settings
    from v2v_resources.train import profile_overrides
    from v2v_resources.train.lora import LoraTrainer

    over = profile_overrides(profile) if profile != "default" else {}
    over = deep_merge(over, {"hardware": {"device": args.device}, "training": {
        "resolution": args.resolution, "batch_size": batch, "gradient_accumulation": 1, "min_image_side": 8,
        "steps": args.warmup + args.steps, "checkpoint_every": 10_000, "sample_steps": 1,
        "sample_prompts": ["flat vector illustration of a car <flt_vctr_style>"]}})
    cfg = load_settings(overrides=over).training
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    stamps: list[float] = []
    peak: dict = {}

    def on_step(step: int, loss: float) -> None:      # float(loss) already waited for the step's kernels
        stamps.append(time.perf_counter())
        if cuda and step == cfg.steps:
            peak.update(allocated_gb=torch.cuda.max_memory_allocated() / 1e9,
                        reserved_gb=torch.cuda.max_memory_reserved() / 1e9)

    t0 = time.perf_counter()
    trainer = LoraTrainer(base, cfg, variant=variant, device=args.device)
    result = trainer.train(data, out, on_step=on_step)
    timed = stamps[args.warmup - 1:] if args.warmup else [t0, *stamps]
    s_step = (timed[-1] - timed[0]) / (len(timed) - 1)
    row = {"profile": profile, "batch": batch, "resolution": cfg.resolution, "mixed_precision": trainer.mixed,
           "gradient_checkpointing": cfg.gradient_checkpointing,
           "optimizer": trainer.optimizer_name,
           "s_per_step": round(s_step, 4), "projected_2000_steps_h": round(s_step * 2000 / 3600, 3),
           "peak_allocated_gb": round(peak["allocated_gb"], 2) if peak else None,     # None: not a GPU
           "peak_reserved_gb": round(peak["reserved_gb"], 2) if peak else None,
           "total_s": round(time.perf_counter() - t0, 1), "notes": result.notes}
    del trainer, result
    gc.collect()
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="full", help="configs/architectures/<scale>.yaml (full | tiny)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resolution", type=int, default=None, help="default 1024 (full) / 64 (tiny)")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10 full / 3 tiny)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--work", default=None, help="folder for the synthetic models (kept between runs)")
    args = ap.parse_args()
    tiny = args.scale == "tiny"
    args.resolution = args.resolution or (64 if tiny else 1024)
    args.steps = args.steps or (3 if tiny else 10)

    import torch
    import yaml

    from v2v_resources.models.synthetic import write_models
    from v2v_resources.train.dataset import validate_training_set
    from v2v_resources.vram import resolve_device

    args.device = resolve_device(args.device)
    work = Path(args.work or tempfile.mkdtemp(prefix="v2v-bench-train-"))
    models = work / f"models-{args.scale}"
    t0 = time.perf_counter()
    if not (models / "models.yaml").is_file():
        write_models(models, args.scale, lora=False, device=args.device,
                     dtype=torch.float16 if args.device.startswith("cuda") else torch.float32)
    entry = yaml.safe_load((models / "models.yaml").read_text())["models"]["sdxl"]
    print(f"synthetic {args.scale} models ready in {time.perf_counter() - t0:.1f} s under {models}", flush=True)
    training_set(work / "set", 8, args.resolution)
    data = validate_training_set(work / "set", min_side=8)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    rows = []
    for profile in args.profiles.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                row = run(models / entry["path"], entry.get("variant"), data, work / f"out-{profile}-{batch}",
                          profile, batch, args)
            except torch.cuda.OutOfMemoryError as e:
                row = {"profile": profile, "batch": batch, "error": f"out of memory: {e}"[:200]}
                gc.collect()
                torch.cuda.empty_cache()
            row["device"] = gpu
            rows.append(row)
            print(" | ".join(f"{k} {v}" for k, v in row.items() if k != "notes"), flush=True)
    print(json.dumps({"bench": "train_lora", "scale": args.scale, "device": gpu, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
