"""The ×4 upscaler protocol and its weight-free implementation (Pillow Lanczos)."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..imaging import require_image

FACTOR = 4


@runtime_checkable
class Upscaler(Protocol):
    """×4 upscaler: uint8 RGB H×W×3 → 4H×4W×3. ESRGAN (ml) and Lanczos (lite) implement it."""

    name: str

    def upscale(self, rgb: np.ndarray) -> np.ndarray: ...


def check_rgb(rgb: np.ndarray, phase: str = "III chroma") -> np.ndarray:
    return require_image(rgb, 3, phase, "pass the RGB channels only (drop alpha) as uint8")


class LanczosUpscaler:
    name = "lanczos"

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        h, w = check_rgb(rgb).shape[:2]
        return np.asarray(Image.fromarray(rgb).resize((w * FACTOR, h * FACTOR), Image.Resampling.LANCZOS))
