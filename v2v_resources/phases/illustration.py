"""Phase II: a flat illustration with the vehicle's silhouette."""
from __future__ import annotations

import time

from .. import imaging
from ..backends import make_steerer
from ..settings import Settings
from ..storage import Home
from .base import CheckOutcome, Phase, PhaseOutcome, finish, numbers, thumb

NAME = "illustration"


def build(kit):
    """The steerer measures silhouettes with phase I's engine (and shares its VRAM manager)."""
    return make_steerer(kit.settings, kit.get("clean_plate"), kit.models_root, manifest=kit.manifest,
                        vram=lambda: kit.vram, trained_loras=kit.home and kit.home.storage / "style_lora")


def checks(settings: Settings, silhouette_iou: float) -> list[CheckOutcome]:
    r = settings.phase2.iou_retry
    ok = silhouette_iou >= r.iou_threshold
    # With allow_skip_on_failure a low IoU continues downstream as a warning, recorded either way.
    return [CheckOutcome("silhouette_iou", ok, not r.allow_skip_on_failure,
                         f"silhouette IoU {silhouette_iou:.3f} (min {r.iou_threshold})"
                         + ("" if ok or not r.allow_skip_on_failure else "; continued: allow_skip_on_failure"),
                         {"silhouette_iou": silhouette_iou},
                         fix="raise phase2.iou_retry.max_retries or the control weights, or set "
                             "phase2.iou_retry.allow_skip_on_failure: true to keep the best attempt")]


def run(home: Home, key: str, settings: Settings, steerer) -> PhaseOutcome:
    t0 = time.perf_counter()
    clean = imaging.load_png(home.path("clean_plate", key, "clean.png"))
    mask = imaging.load_mask(home.path("clean_plate", key, "vehicle_mask.png"))
    res = steerer.steer(clean, mask, seed=settings.phase2.sdxl.seed)
    files = {"illustration": str(imaging.save_png(home.path(NAME, key, "illustration.png"), res.illustration)),
             "mask": str(imaging.save_mask(home.path(NAME, key, "mask.png"), res.mask))}
    md = {"silhouette_iou": res.silhouette_iou, "attempts": len(res.attempts),
          "width": res.illustration.shape[1], "height": res.illustration.shape[0],
          "backend_reason": getattr(steerer, "backend_reason", ""), **numbers(res.metrics)}
    out = PhaseOutcome(key, NAME, res.backend, time.perf_counter() - t0, files, md,
                       checks(settings, res.silhouette_iou), thumb(res.illustration), {"attempts": res.attempts})
    return finish(home, out, PHASE, settings)


PHASE = Phase(
    name=NAME,
    description="Phase II: SDXL + ControlNet depth/canny + style LoRA (or edge-preserving flattening lite).",
    upstream="clean_plate", run=run, engine=build, gpu=True, backend_section="phase2", sections=("hardware", "phase2"),
    checks={"silhouette_iou": "The illustration's silhouette matches the vehicle mask (IoU)."},
)
