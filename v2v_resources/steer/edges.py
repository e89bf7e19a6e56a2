"""The reference's edge map, kept because it works: de-shine, then Canny.

Reflections on paint make Canny draw highlights as edges. Smoothing only the lightness (bilateral, so real
edges survive) and evening out its contrast locally (CLAHE) removes most of them before Canny runs.
Used by the ml steer (the canny ControlNet's condition image); the lite steer draws its outlines from its own patches.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..settings import Canny


def deshine(rgb: np.ndarray, cfg: Canny) -> np.ndarray:
    """RGB → Lab, bilateral filter and CLAHE on L, back to RGB."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    light = cv2.bilateralFilter(lab[..., 0], cfg.bilateral_d, cfg.bilateral_sigma, cfg.bilateral_sigma)
    clahe = cv2.createCLAHE(clipLimit=cfg.clahe_clip, tileGridSize=(cfg.clahe_tiles, cfg.clahe_tiles))
    lab[..., 0] = clahe.apply(light)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def canny_edges(rgb: np.ndarray, cfg: Canny) -> np.ndarray:
    """H×W uint8 edge map, 0 or 255."""
    gray = cv2.cvtColor(deshine(rgb, cfg), cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, cfg.low, cfg.high)
