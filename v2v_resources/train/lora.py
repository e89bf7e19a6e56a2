"""SDXL style LoRA fine-tune: the diffusers text-to-image LoRA recipe, resumable and time-limited.

The UNet gets a peft LoRA on its attention projections; the VAE and both text encoders stay frozen. Each
image's latent distribution and caption embeddings are computed once (the encoders then leave the device),
and each step draws a latent from that distribution, noises it with the scheduler's `add_noise` at a random
timestep and regresses the noise (or the velocity) with an MSE loss, the UNet conditioned on the SDXL added
time ids (original size, crop, target size) and the pooled text embedding.

Every random draw of step `s` comes from a generator seeded by (seed, s) and the examples are visited in
seeded per-epoch permutations, so a run resumed from a checkpoint takes exactly the steps an uninterrupted
run would have taken.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..errors import EngineError
from ..settings import Training
from ..storage import sha256_file, write_json_atomic
from . import checkpoint
from .dataset import PHASE, TrainingSet
from .report import sample_grid

log = logging.getLogger(__name__)
TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]
LORA_FILE = "style.safetensors"
RECORD = "lora.json"            # what `trained_lora` checks before a LoRA is used
_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainResult:
    finished: bool                       # False: stopped at the time limit after a checkpoint
    step: int                            # optimizer steps done (of `steps`)
    steps: int
    losses: list[float]                  # per optimizer step, from step 1 (resumed runs included)
    eval_loss: tuple[float, float | None]  # fixed-noise loss before training and after it (None: unfinished)
    seconds: float                       # this process's share
    resumed_from: int | None
    lora_path: Path | None = None
    sha256: str | None = None
    sample_grid: Path | None = None
    notes: list[str] = field(default_factory=list)


def fingerprint(cfg: Training, data: TrainingSet) -> str:
    """What makes two runs the same run: the output-affecting training settings and the set's content."""
    from ..settings import _output_affecting

    payload = json.dumps({"training": _output_affecting(cfg), "set": data.digest}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _optimizer(params, cfg: Training, notes: list[str]):
    if cfg.use_8bit_adam:
        if importlib.util.find_spec("bitsandbytes") is not None:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=cfg.learning_rate)
        notes.append("use_8bit_adam: bitsandbytes is not installed; torch AdamW instead")
        log.warning(notes[-1])
    return torch.optim.AdamW(params, lr=cfg.learning_rate)


def _square(path: str, size: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Resize the shorter side to `size` and centre-crop: (pixels, original (h, w), crop top-left (y, x))."""
    from ..imaging import load_photo

    rgb = load_photo(path, min_side=1, max_aspect_ratio=float("inf")).rgb
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = Image.fromarray(rgb).resize((nw, nh), Image.Resampling.LANCZOS)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size))), (h, w), (top, left)


class LoraTrainer:
    """One fine-tune of `base` (a diffusers SDXL folder) on a validated training set."""

    def __init__(self, base: Path, cfg: Training, *, variant: str | None = None, device: str = "cpu"):
        from diffusers import DDPMScheduler, StableDiffusionXLPipeline

        self.cfg, self.device, self.notes = cfg, torch.device(device), []
        self.mixed = cfg.mixed_precision if self.device.type == "cuda" else "no"
        if self.mixed != cfg.mixed_precision:
            self.notes.append(f"mixed_precision {cfg.mixed_precision} is for the GPU; training in fp32 on {device}")
        weight_dtype = _HALF.get(self.mixed, torch.float32)
        try:
            self.pipe = StableDiffusionXLPipeline.from_pretrained(
                base, variant=variant, dtype=torch.float32, local_files_only=True, use_safetensors=True,
                add_watermarker=False)
        except (OSError, ValueError) as e:
            raise EngineError(f"SDXL base not loadable for training: {e}", file=str(base), phase=PHASE,
                              fix="run `v2v models verify` and pull the sdxl model") from e
        self.pipe.set_progress_bar_config(disable=True)
        p = self.pipe
        for m in (p.vae, p.text_encoder, p.text_encoder_2, p.unet):
            m.requires_grad_(False)
        # The SDXL VAE overflows in fp16; bf16 keeps fp32's range.
        p.vae.to(self.device, dtype=torch.bfloat16 if self.mixed == "bf16" else torch.float32)
        p.text_encoder.to(self.device, dtype=weight_dtype)
        p.text_encoder_2.to(self.device, dtype=weight_dtype)
        p.unet.to(self.device, dtype=weight_dtype)
        self.noise_scheduler = DDPMScheduler.from_config(p.scheduler.config)

    # ------------------------------------------------------------------------------------------- data
    @torch.no_grad()
    def encode(self, data: TrainingSet) -> dict[str, torch.Tensor]:
        """Latent distributions, caption embeddings and time ids of every example, computed once."""
        p, r = self.pipe, self.cfg.resolution
        means, stds, embeds, pooled, time_ids = [], [], [], [], []
        for ex in data.examples:
            px, orig, crop = _square(ex.image, r)
            x = torch.from_numpy(px.copy()).permute(2, 0, 1)[None].float().div(127.5).sub(1)
            dist = p.vae.encode(x.to(self.device, p.vae.dtype)).latent_dist
            means.append(dist.mean.float())
            stds.append(dist.std.float())
            pe, _, pp, _ = p.encode_prompt(prompt=ex.caption, device=self.device, num_images_per_prompt=1,
                                           do_classifier_free_guidance=False)
            embeds.append(pe.float())
            pooled.append(pp.float())
            time_ids.append(torch.tensor([[*orig, *crop, r, r]], dtype=torch.float32, device=self.device))
        return {k: torch.cat(v) for k, v in (("mean", means), ("std", stds), ("embeds", embeds),
                                             ("pooled", pooled), ("time_ids", time_ids))}

    def _park_encoders(self, where: str | torch.device) -> None:
        """The encoders are needed only before and after training: off the device in between saves VRAM."""
        for m in (self.pipe.vae, self.pipe.text_encoder, self.pipe.text_encoder_2):
            m.to(where)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _indices(self, step: int, micro: int, n: int) -> list[int]:
        """The examples of micro-batch `micro` of step `step`: seeded per-epoch permutations of the set."""
        b, acc = self.cfg.batch_size, self.cfg.gradient_accumulation
        out = []
        for k in range((step * acc + micro) * b, (step * acc + micro + 1) * b):
            epoch, pos = divmod(k, n)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch))
            out.append(int(perm[pos]))
        return out

    def _predict(self, noisy: torch.Tensor, t: torch.Tensor, enc: dict, idx) -> torch.Tensor:
        """The UNet's prediction for examples `idx`, with their caption embeddings and SDXL time ids."""
        unet = self.pipe.unet
        dt = unet.dtype
        with torch.autocast(self.device.type, dtype=_HALF.get(self.mixed, torch.float32),
                            enabled=self.mixed != "no"):
            return unet(noisy.to(dt), t, encoder_hidden_states=enc["embeds"][idx].to(dt),
                        added_cond_kwargs={"text_embeds": enc["pooled"][idx].to(dt),
                                           "time_ids": enc["time_ids"][idx].to(dt)}).sample

    def _target(self, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ns = self.noise_scheduler
        return noise if ns.config.prediction_type == "epsilon" else ns.get_velocity(latents, noise, t)

    @torch.no_grad()
    def eval_loss(self, enc: dict, examples: int = 8, timesteps: int = 4) -> float:
        """The loss of the first `examples` examples at fixed timesteps and fixed noise: comparable between two
        points of a run, unlike the per-step loss, whose random timesteps make it jump by more than training
        moves it. Costs about as much as `examples x timesteps / (2 x batch_size)` training steps."""
        ns, chunk = self.noise_scheduler, 2 * self.cfg.batch_size      # no gradients: twice the batch fits
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        latents = enc["mean"][:examples] * self.pipe.vae.config.scaling_factor
        total = 0.0
        for t in torch.linspace(0, ns.config.num_train_timesteps - 1, timesteps).long().tolist():
            for i in range(0, latents.shape[0], chunk):
                idx = slice(i, i + chunk)
                x = latents[idx]
                noise = torch.randn(x.shape, generator=gen).to(self.device)
                tt = torch.full((x.shape[0],), t, device=self.device)
                pred = self._predict(ns.add_noise(x, noise, tt), tt, enc, idx)
                total += float(((pred.float() - self._target(x, noise, tt).float()) ** 2).mean()) * x.shape[0]
        return total / (latents.shape[0] * timesteps)

    # ------------------------------------------------------------------------------------------- LoRA
    def add_lora(self) -> list[torch.nn.Parameter]:
        from diffusers.training_utils import cast_training_params
        from peft import LoraConfig

        unet = self.pipe.unet
        torch.manual_seed(self.cfg.seed)        # the LoRA's initial A matrices
        unet.add_adapter(LoraConfig(r=self.cfg.rank, lora_alpha=self.cfg.alpha, init_lora_weights="gaussian",
                                    target_modules=TARGET_MODULES))
        cast_training_params(unet, dtype=torch.float32)    # trainable weights in fp32 under autocast
        if self.cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        return [p for p in unet.parameters() if p.requires_grad]

    def trainable(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.pipe.unet.named_parameters() if p.requires_grad}

    def diffusers_lora(self) -> dict[str, torch.Tensor]:
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        return convert_state_dict_to_diffusers(get_peft_model_state_dict(self.pipe.unet))

    def save_lora(self, out_dir: Path) -> Path:
        """The LoRA in diffusers format (what `load_lora_weights` reads), written atomically."""
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".v2v-tmp-lora-", dir=out_dir))
        try:
            self.pipe.save_lora_weights(tmp, unet_lora_layers=self.diffusers_lora(), weight_name=LORA_FILE,
                                        safe_serialization=True,
                                        unet_lora_adapter_metadata=self.pipe.unet.peft_config["default"].to_dict())
            (tmp / LORA_FILE).replace(out_dir / LORA_FILE)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out_dir / LORA_FILE

    # ------------------------------------------------------------------------------------------- the loop
    def step_loss(self, enc: dict, step: int) -> float:
        """Forward and backward of optimizer step `step` (all its micro-batches); returns the mean loss."""
        import torch.nn.functional as F

        cfg, ns = self.cfg, self.noise_scheduler
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        n, total = enc["mean"].shape[0], 0.0
        for micro in range(cfg.gradient_accumulation):
            idx = self._indices(step, micro, n)
            mean, std = enc["mean"][idx], enc["std"][idx]
            eps = torch.randn(mean.shape, generator=gen).to(self.device)
            noise = torch.randn(mean.shape, generator=gen).to(self.device)
            t = torch.randint(0, ns.config.num_train_timesteps, (len(idx),), generator=gen).to(self.device)
            latents = (mean + std * eps) * self.pipe.vae.config.scaling_factor
            noisy = ns.add_noise(latents, noise, t)
            pred = self._predict(noisy, t, enc, idx)
            target = self._target(latents, noise, t)
            loss = F.mse_loss(pred.float(), target.float()) / cfg.gradient_accumulation
            self.scaler.scale(loss).backward()
            total += float(loss.detach())
        return total

    def train(self, data: TrainingSet, out_dir: Path, *,
              on_step: Callable[[int, float], None] | None = None) -> TrainResult:
        """Train (or resume) into `out_dir`: `checkpoints/` while running, then `style.safetensors`, its record
        `lora.json` (sha256, steps, training set) and `samples.png`. Returns when finished or, past
        `time_limit_s`, after saving a checkpoint."""
        from diffusers.optimization import get_scheduler

        cfg, t0 = self.cfg, time.monotonic()
        out_dir, ckpts = Path(out_dir), Path(out_dir) / "checkpoints"
        run_id = fingerprint(cfg, data)
        ck = checkpoint.latest(ckpts, run_id)     # first: another run's checkpoints are refused before any work
        enc = self.encode(data)
        self._park_encoders("cpu")
        params = self.add_lora()
        opt = _optimizer(params, cfg, self.notes)
        self.optimizer_name = type(opt).__name__
        sched = get_scheduler(cfg.lr_scheduler, optimizer=opt, num_warmup_steps=cfg.lr_warmup_steps,
                              num_training_steps=cfg.steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.mixed == "fp16")
        losses: list[float] = []
        start = 0
        eval_start = self.eval_loss(enc) if ck is None else ck.state["eval_start"]
        if ck is not None:
            with torch.no_grad():
                for name, p in self.trainable().items():
                    p.copy_(ck.weights[name])
            opt.load_state_dict(ck.state["optimizer"])
            sched.load_state_dict(ck.state["scheduler"])
            self.scaler.load_state_dict(ck.state["scaler"])
            torch.set_rng_state(ck.state["rng_cpu"])
            if self.device.type == "cuda" and ck.state.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(ck.state["rng_cuda"], self.device)
            losses, start = list(ck.state["losses"]), ck.step
            log.info("style LoRA: resuming from %s at step %d of %d", ckpts, start, cfg.steps)

        def save_checkpoint(step: int) -> None:
            state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "scaler": self.scaler.state_dict(), "rng_cpu": torch.get_rng_state(),
                     "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                     "losses": losses, "eval_start": eval_start, "fingerprint": run_id}
            checkpoint.save(ckpts, step, self.trainable(), state, cfg.keep_checkpoints)

        self.pipe.unet.train()
        step = start
        while step < cfg.steps:
            opt.zero_grad(set_to_none=True)
            loss = self.step_loss(enc, step)
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            self.scaler.step(opt)
            self.scaler.update()
            sched.step()
            step += 1
            losses.append(loss)
            saved = step % cfg.checkpoint_every == 0 and step < cfg.steps
            if saved:
                save_checkpoint(step)
            if on_step is not None:
                on_step(step, loss)
            if cfg.time_limit_s is not None and time.monotonic() - t0 > cfg.time_limit_s and step < cfg.steps:
                if not saved:
                    save_checkpoint(step)
                log.info("style LoRA: time limit %.0f s reached at step %d of %d; checkpoint saved",
                         cfg.time_limit_s, step, cfg.steps)
                return TrainResult(False, step, cfg.steps, losses, (eval_start, None), time.monotonic() - t0,
                                   start or None, notes=self.notes)
        self.pipe.unet.eval()
        eval_end = self.eval_loss(enc)
        path = self.save_lora(out_dir)
        sha = sha256_file(path)
        write_json_atomic(out_dir / RECORD, {"file": path.name, "sha256": sha, "steps": step, "run": run_id,
                                             "training_set": data.digest, "rank": cfg.rank, "alpha": cfg.alpha})
        self._park_encoders(self.device)
        grid = self.samples(data, out_dir / "samples.png")
        checkpoint.clear(ckpts)
        return TrainResult(True, step, cfg.steps, losses, (eval_start, eval_end), time.monotonic() - t0,
                           start or None, path, sha, grid, self.notes)

    @torch.no_grad()
    def samples(self, data: TrainingSet, path: Path) -> Path:
        """One row without the LoRA, one with it, same prompts and seeds: what the LoRA does at a glance."""
        prompts = list(self.cfg.sample_prompts) or [e.caption for e in data.examples[:4]]
        r, unet = self.cfg.resolution, self.pipe.unet
        rows = []
        for with_lora in (False, True):
            (unet.enable_adapters if with_lora else unet.disable_adapters)()
            with torch.autocast(self.device.type, dtype=_HALF.get(self.mixed, torch.float32),
                                enabled=self.mixed != "no"):
                imgs = self.pipe(prompt=prompts, width=r, height=r, num_inference_steps=self.cfg.sample_steps,
                                 generator=[torch.Generator().manual_seed(self.cfg.seed + i)
                                            for i in range(len(prompts))], output_type="np").images
            rows.append([(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in imgs])
        unet.enable_adapters()
        return sample_grid(rows, path)
