"""Per-image quality checks of each phase, shared by the Dagster asset checks and `v2v process`.

Each check returns a `CheckOutcome`. A failed `blocking` outcome stops that image's downstream phases;
a failed non-blocking one is a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .settings import Settings


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)


# The checks each asset declares, name → description (the Dagster layer builds its specs from this).
CHECKS: dict[str, dict[str, str]] = {
    "photo": {
        "decodable": "The file decodes to an RGB image within the intake limits.",
    },
    "clean_plate": {
        "vehicle_mask_area": "The vehicle mask covers a sane share of the frame.",
        "erased_share": "Erased pixels stay under a bound of the vehicle's area.",
        "silhouette_kept": "The silhouette before and after sanitizing agrees (IoU).",
    },
    "illustration": {
        "silhouette_iou": "The illustration's silhouette matches the vehicle mask (IoU).",
    },
    "palette_raster": {
        "palette_exact": "Every pixel is a palette colour and no more colours than the palette are used.",
    },
    "vector_svg": {
        "svg_valid": "The SVG parses safely, fills only palette colours and stays within size bounds.",
        "render_agreement": "The rendered SVG agrees with the palette raster.",
    },
}


def photo_checks(decoded: bool, reason: str = "") -> list[CheckOutcome]:
    return [CheckOutcome("decodable", decoded, True, reason or "decoded")]


def clean_plate_checks(settings: Settings, vehicle_area: float, erased_share: float,
                       silhouette_iou: float) -> list[CheckOutcome]:
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


def illustration_checks(settings: Settings, silhouette_iou: float) -> list[CheckOutcome]:
    r = settings.phase2.iou_retry
    ok = silhouette_iou >= r.iou_threshold
    # With allow_skip_on_failure a low IoU continues downstream as a warning, recorded either way.
    return [CheckOutcome("silhouette_iou", ok, not r.allow_skip_on_failure,
                         f"silhouette IoU {silhouette_iou:.3f} (min {r.iou_threshold})"
                         + ("" if ok or not r.allow_skip_on_failure else "; continued: allow_skip_on_failure"),
                         {"silhouette_iou": silhouette_iou})]


def palette_checks(report: dict, palette_size: int) -> list[CheckOutcome]:
    share, n = report["palette_share"], report["n_colors"]
    ok = share == 1.0 and n <= palette_size
    return [CheckOutcome("palette_exact", ok, True,
                         f"{share:.4%} palette pixels, {n} colours used of {palette_size}",
                         {"palette_share": share, "n_colors": n})]


def vector_checks(settings: Settings, problems: list[str], svg_bytes: int, paths: int,
                  agreement: float) -> list[CheckOutcome]:
    q = settings.phase4.quality
    size_problems = []
    if svg_bytes > q.max_svg_bytes:
        size_problems.append(f"{svg_bytes} bytes > {q.max_svg_bytes}")
    if paths > q.max_paths:
        size_problems.append(f"{paths} paths > {q.max_paths}")
    all_problems = list(problems) + size_problems
    return [
        CheckOutcome("svg_valid", not all_problems, True,
                     "; ".join(all_problems[:5]) or f"valid, {paths} paths, {svg_bytes} bytes",
                     {"svg_bytes": svg_bytes, "paths": paths, "problems": len(all_problems)}),
        CheckOutcome("render_agreement", agreement >= q.min_agreement, True,
                     f"render agreement {agreement:.2%} (min {q.min_agreement:.0%})",
                     {"agreement": agreement}),
    ]


def blocking_failures(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    return [o for o in outcomes if o.blocking and not o.passed]


def vehicle_share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0
