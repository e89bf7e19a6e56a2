"""What every phase-I engine returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..imaging import iou


@dataclass
class SanitizeResult:
    clean: np.ndarray                 # H×W×3 uint8, parts erased (or untouched on the lite backend)
    vehicle_mask: np.ndarray          # H×W bool, the vehicle silhouette
    erased_mask: np.ndarray           # H×W bool, pixels that were inpainted
    backend: str                      # "lite" | "ml"
    detections: list[dict] = field(default_factory=list)   # {label, score, box:[x1,y1,x2,y2], kept, why}
    metrics: dict = field(default_factory=dict)            # numbers for metadata (seconds, attempts, …)


def erase_kept_silhouette(sanitizer: "Sanitizer", rgb: np.ndarray, clean: np.ndarray, mask: np.ndarray,
                          erased: np.ndarray) -> float:
    """IoU of the outlines `sanitizer.silhouette()` finds in the photo and in the clean plate, both prompted by
    the vehicle mask: how far erasing moved the silhouette (1.0 when nothing was erased). Measured against the
    cut's own outline in the photo, not against the mask, so that where the cut sees the photo differently
    from the mask (a shadow phase I cut off, a tyre added on dark ground) is not counted as the erase's doing."""
    if not erased.any():
        return 1.0
    return iou(sanitizer.silhouette(rgb, mask), sanitizer.silhouette(clean, mask))


class Sanitizer(Protocol):
    backend: str

    def sanitize(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> SanitizeResult:
        """`alpha` (H×W uint8) is the source's own transparency; engines use it as the silhouette."""
        ...

    def silhouette(self, rgb: np.ndarray, hint: np.ndarray) -> np.ndarray:
        """Segment the vehicle in `rgb` (any phase's output), prompted by the `hint` mask's box."""
        ...
