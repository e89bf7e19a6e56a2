"""What every phase-II engine returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class SteerResult:
    illustration: np.ndarray          # h×w×3 uint8 at the generation size (long side phase2.generation_long_side)
    mask: np.ndarray                  # h×w bool, the vehicle mask resized to the illustration
    silhouette_iou: float             # IoU of the result's own silhouette vs `mask` (best attempt)
    passed: bool                      # silhouette_iou >= threshold
    backend: str
    attempts: list[dict] = field(default_factory=list)   # {seed, depth_weight, canny_weight, iou, seconds}
    metrics: dict = field(default_factory=dict)


class Steerer(Protocol):
    backend: str

    def steer(self, clean: np.ndarray, vehicle_mask: np.ndarray, *, seed: int | None = None) -> SteerResult:
        ...
