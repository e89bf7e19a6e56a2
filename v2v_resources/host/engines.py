"""The host's resident engines: loaded once under one VramManager, shared by every request.

A request brings its run's settings. What was fixed when the models loaded (backends, precision, attention,
compile, scheduler, skipped ControlNets, LoRA scale) must match the host's; everything else (thresholds,
prompts, steps, retries, palette, output sizes) comes from the request, through cheap config views of the
same loaded models. Every model that two requests could use at once from different threads sits behind a lock
of its own: GroundingDINO, SAM (which also draws the phase-II silhouettes), LaMa and ESRGAN; the steerer locks
its depth model and tokenizers itself, and SDXL runs only on the batcher's thread. Per-model locks let the
phase I of several requests interleave (one in LaMa while another is in GroundingDINO, each on its thread's
CUDA stream) with its CPU work outside every lock; on an H200 that gained only 2 % over one image at a time
(0.825 → 0.805 s per image, bench/phase1_interleave.py), so phase I's cost is its own serial work, not the lock.
"""
from __future__ import annotations

import copy
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..palette import Palette
from ..settings import Settings
from ..storage import Home

log = logging.getLogger(__name__)
PHASE = "host"
PHASE1_MODELS = {"detector": ("detect",), "segmenter": ("masks",), "inpainter": ("inpaint",)}


def load_fingerprint(s: Settings) -> dict:
    """The settings a loaded model set is built for; a request must agree on every one."""
    h, p2 = s.hardware, s.phase2
    return {"phase1.backend": s.phase1.backend, "phase2.backend": p2.backend, "phase3.backend": s.phase3.backend,
            "hardware.precision": h.precision, "hardware.attention": h.attention,
            "hardware.enable_attention_slicing": h.enable_attention_slicing, "hardware.compile": h.compile,
            "phase2.sdxl.scheduler": p2.sdxl.scheduler,
            "phase2.sdxl.skip_finished_controlnets": p2.sdxl.skip_finished_controlnets,
            "phase2.lora.scale": p2.lora.scale, "training.use_version": s.training.use_version}


class _Locked:
    """Another engine's attributes, with the named methods called under a lock."""

    def __init__(self, engine, lock: threading.Lock, methods: tuple[str, ...]):
        self._engine, self._lock, self._methods = engine, lock, methods

    def __getattr__(self, name):
        attr = getattr(self._engine, name)
        if name not in self._methods:
            return attr

        def locked(*a, **k):
            with self._lock:
                return attr(*a, **k)
        return locked


def lock_models(sanitizer):
    """Phase I's models (ml; lite has none), each loaded now rather than in the first request and put behind
    a lock of its own."""
    for part, methods in PHASE1_MODELS.items():
        if hasattr(type(sanitizer), part):
            vars(sanitizer)[part] = _Locked(getattr(sanitizer, part), threading.Lock(), methods)
    return sanitizer


class _BatchedSteerer:
    """The steerer with each SDXL attempt sent to the shared batcher; counts IoU retries."""

    def __init__(self, steerer, batcher, metrics):
        self._steerer, self._batcher, self._metrics = steerer, batcher, metrics

    def __getattr__(self, name):
        return getattr(self._steerer, name)

    def steer(self, clean, vehicle_mask, *, seed=None):
        st = self._steerer
        res = st.steer(clean, vehicle_mask, seed=seed,
                       generate=lambda controls, size, s, w: self._batcher.generate(st, controls, size, s, w))
        if self._metrics is not None and len(res.attempts) > 1:
            self._metrics.retries.inc(len(res.attempts) - 1)
        return res


@dataclass
class EngineView:
    sanitizer: object
    steerer: object
    raster: object

    def get(self, phase: str):
        engines = {"clean_plate": self.sanitizer, "illustration": self.steerer, "palette_raster": self.raster}
        if phase not in engines:
            raise ConfigError(f"the host has no engine for phase {phase!r}", phase=PHASE,
                              fix="run that phase in-process (it is not a GPU phase of this host)")
        return engines[phase]


class ResidentEngines:
    """Phase I-III engines built once; `view(settings, home)` gives them under a request's settings."""

    def __init__(self, settings: Settings, *, device: str | None = None, models_root: Path | None = None,
                 manifest: Path | None = None, home: "Home | None" = None):
        from ..backends import make_upscaler
        from ..phases import Engines
        from ..vram import VramManager

        self.settings = settings
        self.fingerprint = load_fingerprint(settings)
        # the registry's engine factories, all on one VRAM manager for this host's device (the cache folder
        # is the request's, given per view, so phase III's upscaler is built alone)
        kit = Engines(settings, Path("."), models_root=models_root, manifest=manifest, home=home or Home.from_env())
        kit.__dict__["vram"] = self.vram = VramManager(settings.hardware, device=device)
        self.sanitizer = lock_models(kit.get("clean_plate"))
        self.steerer = kit.get("illustration")
        self.upscaler = make_upscaler(settings, models_root, manifest=manifest, vram=self.vram)
        self.upscaler_view = _Locked(self.upscaler, threading.Lock(), ("upscale",))
        self.batcher = None
        self.metrics = None
        self._views: OrderedDict[str, EngineView] = OrderedDict()
        self._views_lock = threading.Lock()

    @property
    def backends(self) -> dict[str, str]:
        return {"phase1": self.sanitizer.backend, "phase2": self.steerer.backend,
                "phase3": getattr(self.upscaler, "backend", "lite")}

    def attach(self, batcher, metrics) -> None:
        self.batcher, self.metrics = batcher, metrics
        with self._views_lock:
            self._views.clear()         # views hold the batcher they were built with

    def check(self, s: Settings) -> None:
        theirs = load_fingerprint(s)
        diff = {k: (v, theirs[k]) for k, v in self.fingerprint.items() if theirs[k] != v}
        if diff:
            raise ConfigError("the run's settings differ from those the host loaded its models with: " +
                              ", ".join(f"{k} host {a!r} vs run {b!r}" for k, (a, b) in diff.items()),
                              phase=PHASE, fix="start the host with the run's config (`v2v host --config ...`) "
                                               "or run these keys with the run's own engines (no host)")

    def view(self, s: Settings, cache_dir: Path) -> EngineView:
        self.check(s)
        key = json.dumps([s.fingerprint("phase1", "phase2", "phase3", "palette"), str(cache_dir)], sort_keys=True)
        with self._views_lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
        v = self._build(s, cache_dir)
        with self._views_lock:
            self._views[key] = v
            while len(self._views) > 16:
                self._views.popitem(last=False)
        return v

    def _build(self, s: Settings, cache_dir: Path) -> EngineView:
        from ..chroma.raster import PaletteRasterEngine

        san = copy.copy(self.sanitizer)     # shares the locked models; only the config is the request's
        san.cfg = s.phase1
        if hasattr(self.steerer, "with_config"):
            steer = _BatchedSteerer(self.steerer.with_config(s.phase2, sanitizer=san), self.batcher, self.metrics)
        else:                               # lite: no models, nothing to batch
            steer = copy.copy(self.steerer)
            steer.cfg, steer.sanitizer = s.phase2, san
        raster = PaletteRasterEngine(s.phase3, Palette.from_choice(s.palette), self.upscaler_view, cache_dir)
        return EngineView(san, steer, raster)

    def warm_up(self, max_batch: int) -> dict:
        """One synthetic photo through phase I, SDXL at batch 1 and at `max_batch`, the silhouette check and
        ESRGAN: the first calls' costs (cuDNN autotuning, allocator growth, compilation) are paid here,
        before /ready."""
        import time

        import numpy as np
        from PIL import Image

        from ..imaging import fit_size
        from ..samples import draw_sample

        s = self.settings
        side = s.intake.working_long_side
        rgb, mask, _ = draw_sample(7, (side, side * 3 // 4))
        size = fit_size(rgb.shape[1], rgb.shape[0], s.phase2.generation_long_side, multiple=8)
        times = {}
        t = time.perf_counter()
        try:
            self.sanitizer.sanitize(rgb)
        except Exception as e:       # strict thresholds may find no vehicle in a drawing: the models still ran
            log.info("warm-up phase I: %s", e)
        times["phase1_s"] = time.perf_counter() - t
        st = self.steerer
        if hasattr(st, "generate_batch"):
            controls = st.controls(rgb, mask, size)
            weights = (s.phase2.controlnet.depth_weight, s.phase2.controlnet.canny_weight)
            for n in sorted({1, max_batch}):
                t = time.perf_counter()
                st.generate_batch([st.job(controls, i) for i in range(n)], size, weights)
                times[f"sdxl_batch{n}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ill = np.asarray(Image.fromarray(rgb).resize(size))
        self.sanitizer.silhouette(ill, mask)
        self.upscaler.upscale(ill)
        times["silhouette_upscale_s"] = time.perf_counter() - t
        self.vram.empty_cache()
        return {k: round(v, 3) for k, v in times.items()}
