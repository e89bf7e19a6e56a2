"""`v2v models smoke`: run each installed model once on a sample photo, through the production engines.

The first command after a pull: it loads every model that is present and verified, runs it on a synthetic
vehicle photo (v2v_resources/samples.py) and checks what comes out: shapes, value ranges, finite numbers,
and that the load and the run each finish within `time_limit_s`. One line per model; models not installed
are listed, not run (`v2v models verify` says why).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .verify import ModelStore

SDXL_SIDE_MULTIPLE = 64         # SDXL sizes: the VAE's x8 and the UNet's downsampling
LORA_SCALE = 1.0                # the smoke test only shows the LoRA loads and fuses


@dataclass
class SmokeResult:
    name: str
    ok: bool
    detail: str
    load_s: float = 0.0
    run_s: float = 0.0
    checks: list[str] = field(default_factory=list)


class SmokeFailure(AssertionError):
    pass


def _check(cond: bool, what: str, checks: list[str]) -> None:
    if not cond:
        raise SmokeFailure(what)
    checks.append(what)


def _uint8_image(a: np.ndarray, shape: tuple, checks: list[str], what: str) -> None:
    _check(a.shape == shape, f"{what} shape {shape}", checks)
    _check(a.dtype == np.uint8, f"{what} uint8", checks)


def _run_detector(store, vram, rgb, checks):
    from ..sanitize.detect import GroundingDinoDetector

    det = GroundingDinoDetector(store.require("grounding-dino"), vram)
    yield
    h, w = rgb.shape[:2]
    found = det.detect(rgb, ["car"], box_threshold=0.0, text_threshold=0.0)
    _check(all(0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h for d in found),
           f"{len(found)} boxes inside the {w}x{h} photo", checks)
    _check(all(0.0 <= d.score <= 1.0 for d in found), "scores in [0, 1]", checks)


def _run_sam(store, vram, rgb, checks):
    from ..sanitize.segment import SamSegmenter

    sam = SamSegmenter(store.require("sam"), vram)
    yield
    h, w = rgb.shape[:2]
    masks = sam.masks(rgb, np.array([[w * 0.2, h * 0.3, w * 0.8, h * 0.9]]))
    _check(masks.shape == (1, h, w) and masks.dtype == bool, f"one {w}x{h} bool mask per box", checks)


def _run_lama(store, vram, rgb, checks):
    from ..sanitize.inpaint import LamaInpainter

    lama = LamaInpainter(store.require("lama"), vram)
    yield
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 3:h // 2, w // 3:w // 2] = True
    out = lama.inpaint(rgb, mask, resize_limit=max(h, w))
    _uint8_image(out, rgb.shape, checks, "filled photo")
    _check(np.array_equal(out[~mask], rgb[~mask]), "pixels outside the hole unchanged", checks)


def _run_depth(store, vram, rgb, checks):
    from ..steer.depth import DepthEstimator

    depth = DepthEstimator(store.require("depth"), vram)
    yield
    h, w = rgb.shape[:2]
    _uint8_image(depth.hint(rgb, (w, h)), (h, w, 3), checks, "depth hint")


def _run_sdxl(store, vram, rgb, checks):
    """SDXL base with both ControlNets (and the style LoRA when installed), two steps at the photo's size."""
    from ..steer.sdxl import load_controlnet_pipeline, load_style_lora
    from .verify import State

    nets = [(store.require(n), store.manifest.entry(n).variant) for n in ("controlnet-depth", "controlnet-canny")]
    pipe = load_controlnet_pipeline(store.require("sdxl"), nets, dtype=vram.dtype, scheduler="euler",
                                    variant=store.manifest.entry("sdxl").variant).to(vram.device)
    if "style-lora" in store.manifest.models and store.status("style-lora").state is State.PRESENT:
        load_style_lora(pipe, store.require("style-lora"), LORA_SCALE)
        checks.append("style LoRA fused")
    yield
    h, w = (max(SDXL_SIDE_MULTIPLE, s // SDXL_SIDE_MULTIPLE * SDXL_SIDE_MULTIPLE) for s in rgb.shape[:2])
    hint = np.ascontiguousarray(rgb[:h, :w])
    import torch
    from PIL import Image

    out = pipe(prompt="a car, side view", image=[Image.fromarray(hint)] * 2, height=h, width=w,
               num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0)).images
    _check(out.shape == (1, h, w, 3), f"one {w}x{h} RGB image", checks)
    _check(bool(np.isfinite(out).all()) and out.min() >= 0.0 and out.max() <= 1.0, "finite values in [0, 1]",
           checks)


def _run_esrgan(store, vram, rgb, checks):
    from ..chroma.esrgan import EsrganUpscaler

    up = EsrganUpscaler(store.require("esrgan"), device=vram.device, dtype=vram.dtype, tile=0)
    yield
    crop = np.ascontiguousarray(rgb[:32, :32])
    _uint8_image(up.upscale(crop), (128, 128, 3), checks, "x4 output")


# model name -> runner (the SDXL runner also runs both ControlNets and the LoRA)
RUNNERS: dict[str, Callable] = {"grounding-dino": _run_detector, "sam": _run_sam, "lama": _run_lama,
                                "depth": _run_depth, "sdxl": _run_sdxl, "esrgan": _run_esrgan}
PART_OF = {"controlnet-depth": "sdxl", "controlnet-canny": "sdxl", "style-lora": "sdxl"}


def smoke_test(store: ModelStore, names: list[str] | None = None, *, device: str | None = None,
               photo_size: tuple[int, int] = (512, 384), time_limit_s: float = 600.0, echo=print
               ) -> list[SmokeResult]:
    """Run the models named (default: every installed one); one `SmokeResult` (and one echoed line) each."""
    from ..samples import draw_sample
    from ..settings import load_settings
    from ..vram import VramManager

    hardware = load_settings(overrides={"hardware": {"device": device}} if device else None).hardware
    vram = VramManager(hardware)
    rgb = draw_sample(0, photo_size)[0]
    wanted = names or list(store.manifest.models)
    runners = list(dict.fromkeys(PART_OF.get(n, n) for n in wanted if PART_OF.get(n, n) in RUNNERS))
    results = []
    for name in runners:
        needs = [name] + [n for n, p in PART_OF.items() if p == name and store.manifest.entry(n).required]
        missing = [n for n in needs if not store.status(n, refresh=True).ok]
        if missing:
            echo(f"{name:<16} not installed ({', '.join(missing)}): `v2v models verify` says why")
            continue
        results.append(_one(name, RUNNERS[name], store, vram, rgb, time_limit_s))
        r = results[-1]
        echo(f"{r.name:<16} {'ok  ' if r.ok else 'FAIL'} load {r.load_s:6.2f} s, run {r.run_s:6.2f} s  {r.detail}")
        vram.close()
    return results


def _one(name, runner, store, vram, rgb, limit) -> SmokeResult:
    checks: list[str] = []
    t0 = time.perf_counter()
    steps = runner(store, vram, rgb, checks)
    try:
        next(steps)                                      # load
        t1 = time.perf_counter()
        next(steps, None)                                # run and check
        t2 = time.perf_counter()
    except Exception as e:     # a smoke test reports every failure as a line, whatever raised it
        return SmokeResult(name, False, f"{type(e).__name__}: {e}".splitlines()[0], checks=checks)
    res = SmokeResult(name, True, "; ".join(checks), t1 - t0, t2 - t1, checks)
    slow = [f"{what} took {s:.1f} s (limit {limit:.0f} s)" for what, s in (("load", res.load_s), ("run", res.run_s))
            if s > limit]
    if slow:
        res.ok, res.detail = False, "; ".join(slow)
    return res
