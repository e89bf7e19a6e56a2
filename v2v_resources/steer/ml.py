"""Phase II on the ml backend: depth + Canny steer SDXL (MultiControlNet, optional style LoRA).

The pipeline is built once per engine object (one batch, or a resident host's lifetime) and reused for every
image. Every attempt is checked by segmenting the generated vehicle (the sanitizer's `silhouette`) against the
vehicle mask; a failed attempt retries with a new seed and stronger control, the best attempt is kept.

`generate_batch` runs several images (own seeds, own controls, own prompts) through one pipeline call; the
model host (v2v_resources.host) feeds it attempts from concurrent requests. `steer(..., generate=...)` lets
that host put each attempt into its batcher; the retry loop stays here.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..color import hex_to_rgb
from ..imaging import fit_size, iou, resize_mask
from ..models.verify import ModelStore, State
from ..settings import Phase2
from ..vram import VramManager
from .base import SteerResult
from .depth import DepthEstimator
from .sdxl import compile_denoiser, load_controlnet_pipeline, load_style_lora

log = logging.getLogger(__name__)
PHASE = "phase2"
NAME = "sdxl"


def on_background(rgb: np.ndarray, mask: np.ndarray, color: str) -> np.ndarray:
    """The vehicle pixels kept, everything else the flat background colour."""
    out = np.empty_like(rgb)
    out[...] = hex_to_rgb(color)
    out[mask] = rgb[mask]
    return out


def attempt_weights(cfg: Phase2, attempt: int) -> tuple[float, float]:
    """Control weights of attempt 0, 1, …: each retry adds `weight_step`, up to the configured caps."""
    r, c = cfg.iou_retry, cfg.controlnet
    return (round(min(c.depth_weight + attempt * r.weight_step, r.max_depth_weight), 4),
            round(min(c.canny_weight + attempt * r.weight_step, r.max_canny_weight), 4))


@dataclass
class GenerationJob:
    """One attempt of one image: its [depth, canny] controls, seed and prompt embeddings (1 row each)."""
    controls: list[Image.Image]
    seed: int
    embeds: dict


class MlSteerer:
    backend = "ml"

    def __init__(self, cfg: Phase2, sanitizer, models: ModelStore, vram: VramManager, lora: Path | None = None):
        """`lora`: a trained style LoRA to use instead of the manifest's `style-lora` (training.use_version)."""
        self.cfg, self.sanitizer, self.vram = cfg, sanitizer, vram
        self.depth = DepthEstimator(models.require("depth"), vram)
        nets = [(models.require(n), models.manifest.entry(n).variant) for n in ("controlnet-depth", "controlnet-canny")]
        self.pipe = load_controlnet_pipeline(models.require("sdxl"), nets, dtype=vram.dtype,
                                             scheduler=cfg.sdxl.scheduler,
                                             variant=models.manifest.entry("sdxl").variant,
                                             skip_finished=cfg.sdxl.skip_finished_controlnets)
        self.lora_note = self._load_lora(models, lora)
        log.info("phase2 style LoRA: %s", self.lora_note)
        vram.register(NAME, vram.configure_pipeline(self.pipe))
        if vram.hardware.compile:
            compile_denoiser(self.pipe)
        self._embeds: dict | None = None
        # shared by every config twin: the fast tokenizers and the depth model are not safe to call from two
        # threads at once (a host serves concurrent requests)
        self._embed_lock, self._depth_lock = threading.Lock(), threading.Lock()

    def with_config(self, cfg: Phase2, sanitizer=None) -> "MlSteerer":
        """The same loaded models under another phase-2 config (a run's own prompt, steps, retries...).

        What was fixed at load (scheduler, skipped ControlNets, LoRA scale) must match: the caller checks."""
        twin = object.__new__(MlSteerer)
        twin.__dict__.update(self.__dict__, cfg=cfg, _embeds=None)
        if sanitizer is not None:
            twin.sanitizer = sanitizer
        return twin

    def release(self) -> None:
        """End of the step: the pipeline (and the sanitizer's SAM, same manager) leave the device."""
        self.vram.close()

    def _load_lora(self, models: ModelStore, trained: Path | None) -> str:
        if trained is not None:
            load_style_lora(self.pipe, trained, self.cfg.lora.scale)
            self.lora = True
            return f"{trained.parent.name}/{trained.name} (trained here) at scale {self.cfg.lora.scale}"
        st = models.status("style-lora")
        if st.state is State.MISSING:
            self.lora = False
            return f"none at {st.path}: base SDXL without a style LoRA"
        models.require("style-lora")          # unverified or corrupt: refuse with the pull command
        load_style_lora(self.pipe, st.path, self.cfg.lora.scale)
        self.lora = True
        return f"{st.path.name} at scale {self.cfg.lora.scale}"

    @property
    def prompt(self) -> str:
        return f"{self.cfg.prompt} {self.cfg.lora_trigger}" if self.lora else self.cfg.prompt

    def controls(self, clean: np.ndarray, mask: np.ndarray, size_wh: tuple[int, int]) -> list[Image.Image]:
        """[depth, canny] hints of the vehicle alone on the background, at the generation size."""
        from .edges import canny_edges

        subject = np.asarray(Image.fromarray(on_background(clean, resize_mask(mask, clean.shape[1::-1]),
                                                           self.cfg.background)).resize(size_wh, Image.LANCZOS))
        edges = canny_edges(subject, self.cfg.canny)
        if edges.ndim == 2:
            edges = np.repeat(edges[:, :, None], 3, axis=2)
        with self._depth_lock:
            depth = self.depth.hint(subject, size_wh)
        return [Image.fromarray(depth), Image.fromarray(edges)]

    def embeddings(self, pipe) -> dict:
        """The prompt pair, encoded once per engine: every attempt of every image of the batch reuses it."""
        with self._embed_lock:
            if self._embeds is None:
                self._embeds = self._encode(pipe)
        return self._embeds

    def _encode(self, pipe) -> dict:
        with torch.inference_mode():
            pe, npe, pooled, npooled = pipe.encode_prompt(
                prompt=self.prompt, negative_prompt=self.cfg.negative_prompt, device=self.vram.device,
                do_classifier_free_guidance=self.cfg.sdxl.guidance_scale > 1)
        return {"prompt_embeds": pe, "negative_prompt_embeds": npe, "pooled_prompt_embeds": pooled,
                "negative_pooled_prompt_embeds": npooled}

    def job(self, controls: list[Image.Image], seed: int) -> GenerationJob:
        return GenerationJob(controls, seed, self.embeddings(self.vram.acquire(NAME)))

    def batch_signature(self, size_wh: tuple[int, int], weights: tuple[float, float]) -> tuple:
        """Attempts with equal signatures can share one pipeline call (diffusers takes one set of control
        scales and one step plan per call)."""
        s = self.cfg.sdxl
        return (tuple(size_wh), s.steps, s.guidance_scale, tuple(self.cfg.controlnet.guidance_end), tuple(weights))

    def generate(self, controls: list[Image.Image], size_wh: tuple[int, int], seed: int,
                 weights: tuple[float, float]) -> np.ndarray:
        return self.generate_batch([self.job(controls, seed)], size_wh, weights)[0]

    def generate_batch(self, jobs: list[GenerationJob], size_wh: tuple[int, int],
                       weights: tuple[float, float]) -> list[np.ndarray]:
        """Every job through ONE pipeline call. Each image gets its own generator, so its starting latents are
        the ones a call of its own would draw; a batch of 1 is exactly the single-image call."""
        pipe = self.vram.acquire(NAME)
        s = self.cfg.sdxl
        if len(jobs) == 1:
            embeds, images = jobs[0].embeds, jobs[0].controls
            generator = torch.Generator("cpu").manual_seed(jobs[0].seed)
        else:
            embeds = {k: torch.cat([j.embeds[k] for j in jobs]) for k in jobs[0].embeds}
            # one N×3×H×W tensor per ControlNet (diffusers refuses nested lists of images), scaled to [0, 1]
            # exactly as its processor scales a PIL image
            images = [torch.stack([torch.from_numpy(np.asarray(j.controls[n], np.float32) / 255).permute(2, 0, 1)
                                   for j in jobs]) for n in range(len(jobs[0].controls))]
            generator = [torch.Generator("cpu").manual_seed(j.seed) for j in jobs]

        def call():
            return pipe(**embeds, image=images,
                        width=size_wh[0], height=size_wh[1], num_inference_steps=s.steps,
                        guidance_scale=s.guidance_scale, controlnet_conditioning_scale=list(weights),
                        control_guidance_end=list(self.cfg.controlnet.guidance_end),
                        generator=generator, output_type="np").images

        with torch.inference_mode():
            imgs = self.vram.run(call, owner=NAME)
        return [(np.clip(img, 0, 1) * 255).round().astype(np.uint8) for img in imgs]

    def steer(self, clean: np.ndarray, vehicle_mask: np.ndarray, *, seed: int | None = None,
              generate: Callable[..., np.ndarray] | None = None) -> SteerResult:
        """`generate(controls, size_wh, seed, weights)` defaults to one pipeline call per attempt; a host passes
        one that queues the attempt for a batch shared with other requests."""
        generate = generate or self.generate
        t0 = time.perf_counter()
        r = self.cfg.iou_retry
        size = fit_size(clean.shape[1], clean.shape[0], self.cfg.generation_long_side, multiple=8)
        mask = resize_mask(vehicle_mask, size)
        base_seed = self.cfg.sdxl.seed if seed is None else seed
        attempts, best, best_iou = [], None, -1.0
        with self.vram.image():
            controls = self.controls(clean, vehicle_mask, size)
            for i in range(r.max_retries + 1):
                ta = time.perf_counter()
                weights = attempt_weights(self.cfg, i)
                img = generate(controls, size, base_seed + i, weights)
                score = iou(self.sanitizer.silhouette(img, mask), mask)
                attempts.append({"seed": base_seed + i, "depth_weight": weights[0], "canny_weight": weights[1],
                                 "iou": round(score, 4), "seconds": round(time.perf_counter() - ta, 3)})
                if score > best_iou:
                    best, best_iou = img, score
                if score >= r.iou_threshold:
                    break
        passed = best_iou >= r.iou_threshold     # the phase's silhouette_iou check judges it
        metrics = {"seconds": round(time.perf_counter() - t0, 3), "width": size[0], "height": size[1],
                   "lora": self.lora_note, "peak_vram_gb": round(self.vram.last_image_peak_gb, 3),
                   "vram_events": list(self.vram.events)}
        return SteerResult(illustration=on_background(best, mask, self.cfg.background), mask=mask,
                           silhouette_iou=round(best_iou, 4), passed=passed, backend=self.backend,
                           attempts=attempts, metrics=metrics)
