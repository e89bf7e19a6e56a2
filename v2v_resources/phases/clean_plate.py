"""Phase I: the vehicle's mask, with logos, badges, plates, mirrors and text erased."""
from __future__ import annotations

import time

import numpy as np

from .. import imaging
from ..backends import make_sanitizer
from ..sanitize.base import erase_kept_silhouette
from ..settings import Settings
from ..storage import Home
from .base import CheckOutcome, Phase, PhaseOutcome, finish, numbers, thumb

NAME = "clean_plate"


def build(kit):
    return make_sanitizer(kit.settings, kit.models_root, manifest=kit.manifest, vram=lambda: kit.vram)


def checks(settings: Settings, vehicle_area: float, erased_share: float, silhouette_iou: float) -> list[CheckOutcome]:
    q = settings.phase1.quality
    return [
        CheckOutcome("vehicle_mask_area", q.min_vehicle_area <= vehicle_area <= q.max_vehicle_area, True,
                     f"vehicle covers {vehicle_area:.1%} of the frame "
                     f"(bounds {q.min_vehicle_area:.0%}–{q.max_vehicle_area:.0%})",
                     {"vehicle_area": vehicle_area}),
        CheckOutcome("erased_share", erased_share <= q.max_erased_share, True,
                     f"erased {erased_share:.1%} of the vehicle (max {q.max_erased_share:.0%})",
                     {"erased_share": erased_share}),
        CheckOutcome("silhouette_kept", silhouette_iou >= q.min_silhouette_iou, True,
                     f"silhouette IoU before/after {silhouette_iou:.3f} (min {q.min_silhouette_iou})",
                     {"silhouette_iou": silhouette_iou}),
    ]


def run(home: Home, key: str, settings: Settings, sanitizer) -> PhaseOutcome:
    t0 = time.perf_counter()
    rgb = imaging.load_png(home.path("photo", key, "photo.png"))
    alpha_path = home.path("photo", key, "alpha.png")
    alpha = (imaging.load_mask(alpha_path).astype(np.uint8) * 255) if alpha_path.exists() else None
    res = sanitizer.sanitize(rgb, alpha)
    sil_iou = erase_kept_silhouette(sanitizer, rgb, res.clean, res.vehicle_mask, res.erased_mask)
    area = float(res.vehicle_mask.mean())
    vehicle_px = max(1, int(res.vehicle_mask.sum()))
    erased = float(np.logical_and(res.erased_mask, res.vehicle_mask).sum() / vehicle_px)
    files = {"clean": str(imaging.save_png(home.path(NAME, key, "clean.png"), res.clean)),
             "vehicle_mask": str(imaging.save_mask(home.path(NAME, key, "vehicle_mask.png"), res.vehicle_mask)),
             "erased_mask": str(imaging.save_mask(home.path(NAME, key, "erased_mask.png"), res.erased_mask))}
    md = {"vehicle_area": area, "erased_share": erased, "silhouette_iou": sil_iou,
          "detections": len(res.detections), "backend_reason": getattr(sanitizer, "backend_reason", ""),
          **numbers(res.metrics)}
    out = PhaseOutcome(key, NAME, res.backend, time.perf_counter() - t0, files, md,
                       checks(settings, area, erased, sil_iou), thumb(res.clean), {"detections": res.detections})
    return finish(home, out, PHASE, settings)


PHASE = Phase(
    name=NAME,
    description="Phase I: vehicle mask + parts erased (GroundingDINO + SAM + LaMa, or the classical lite engine).",
    upstream="photo", run=run, engine=build, gpu=True, backend_section="phase1", sections=("hardware", "phase1"),
    checks={"vehicle_mask_area": "The vehicle mask covers a sane share of the frame.",
            "erased_share": "Erased pixels stay under a bound of the vehicle's area.",
            "silhouette_kept": "The silhouette before and after sanitizing agrees (IoU)."},
)
