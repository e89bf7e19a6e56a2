"""Phase I without weights: the vehicle silhouette by GrabCut; parts are left untouched.

GrabCut runs on a copy at most `WORK_LONG_SIDE` px long (its cost grows with pixels, its result does not
improve with them), and the mask is brought back to full size with a smooth edge.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..errors import BadInputError, QualityError
from ..settings import Phase1
from .base import SanitizeResult

PHASE = "sanitize"
WORK_LONG_SIDE = 512
LITE_NOTE = "lite backend: parts untouched"


def largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background is what a flood from the frame reaches; everything else belongs to the mask."""
    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return mask | (outside[1:-1, 1:-1] == 1)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadInputError(f"expected an H×W×3 uint8 image, got {rgb.dtype} {rgb.shape}", phase=PHASE,
                            fix="decode the photo with imaging.load_photo first")


class GrabCutSanitizer:
    backend = "lite"

    def __init__(self, cfg: Phase1):
        self.cfg = cfg

    def sanitize(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> SanitizeResult:
        _check_rgb(rgb)
        t0 = time.perf_counter()
        if alpha is not None:
            if alpha.shape != rgb.shape[:2]:
                raise BadInputError(f"alpha is {alpha.shape}, image is {rgb.shape[:2]}", phase=PHASE,
                                    fix="pass the alpha channel decoded with the image")
            mask, method = alpha > 127, "alpha"
        else:
            mask, method = self._segment(rgb, self._frame_labels(rgb.shape[:2])), "grabcut"
        if not mask.any():
            raise QualityError("no vehicle found: the mask is empty", phase=PHASE,
                               fix="frame the vehicle away from the photo's edges, or use the ml backend")
        return SanitizeResult(
            clean=rgb, vehicle_mask=mask, erased_mask=np.zeros(mask.shape, bool), backend=self.backend,
            metrics={"parts_erased": 0, "note": LITE_NOTE, "mask_method": method,
                     "vehicle_area": round(float(mask.mean()), 4),
                     "seconds": round(time.perf_counter() - t0, 3)})

    def silhouette(self, rgb: np.ndarray, hint: np.ndarray) -> np.ndarray:
        """The vehicle in `rgb` (e.g. a phase-II illustration), found by GrabCut prompted by `hint`."""
        _check_rgb(rgb)
        if hint.shape != rgb.shape[:2]:
            raise BadInputError(f"hint mask is {hint.shape}, image is {rgb.shape[:2]}", phase=PHASE,
                                fix="resize the hint to the image (imaging.resize_mask)")
        if not hint.any():
            raise BadInputError("hint mask is empty", phase=PHASE, fix="pass the vehicle mask from phase I")
        return self._segment(rgb, self._hint_labels(hint))

    def _frame_labels(self, shape: tuple[int, int]) -> np.ndarray:
        """A band of `frame_margin` round the frame is sure background; the rest may be the vehicle."""
        h, w = shape
        my, mx = max(1, round(h * self.cfg.lite.frame_margin)), max(1, round(w * self.cfg.lite.frame_margin))
        labels = np.full(shape, cv2.GC_BGD, np.uint8)
        labels[my:h - my, mx:w - mx] = cv2.GC_PR_FGD
        return labels

    @staticmethod
    def _hint_labels(hint: np.ndarray) -> np.ndarray:
        """Probable vehicle inside the hint, probable background round it, sure background beyond
        its bounding box grown by 5 % of the frame."""
        h, w = hint.shape
        ys, xs = np.nonzero(hint)
        pad = max(2, round(0.05 * max(h, w)))
        labels = np.full(hint.shape, cv2.GC_BGD, np.uint8)
        labels[max(ys.min() - pad, 0):ys.max() + pad + 1, max(xs.min() - pad, 0):xs.max() + pad + 1] = cv2.GC_PR_BGD
        labels[hint] = cv2.GC_PR_FGD
        return labels

    def _segment(self, rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = min(1.0, WORK_LONG_SIDE / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        small_labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST) if scale < 1 else labels.copy()
        if not (small_labels == cv2.GC_BGD).any() and not (small_labels == cv2.GC_PR_BGD).any():
            small_labels[0, :] = small_labels[-1, :] = small_labels[:, 0] = small_labels[:, -1] = cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        # GrabCut models colour in BGR order; the order does not matter to it, only consistency
        cv2.grabCut(np.ascontiguousarray(small), small_labels, None, bgd, fgd,
                    self.cfg.lite.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
        fg = (small_labels == cv2.GC_FGD) | (small_labels == cv2.GC_PR_FGD)
        fg = fill_holes(largest_component(fg))
        # smooth the staircase of the small mask while bringing it to full size
        soft = cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 1.0)
        full = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        return fill_holes(largest_component(full))
