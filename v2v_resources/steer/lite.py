"""Phase II without weights: an illustrated look by edge-preserving flattening, same silhouette by construction.

Inside the vehicle: bilateral passes and mean-shift flatten shading while keeping edges, k-means in Lab
turns what is left into `clusters` flat colours, a majority filter removes the speckle where a smooth
gradient straddles two clusters, and the de-shined Canny edges of the result are darkened into outlines.
Outside it: the configured background. The silhouette is then measured the same way as on the ml backend.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
from scipy.cluster.vq import kmeans2

from ..errors import BadInputError
from ..color import hex_to_rgb
from ..imaging import fit_size, iou, resize_mask
from ..sanitize.base import Sanitizer
from ..settings import Phase2
from .base import SteerResult
from .edges import canny_edges

PHASE = "steer"
KMEANS_SAMPLE = 20_000     # pixels the colour clusters are fitted on; all pixels are then assigned
MAJORITY_WINDOW = 5        # px; the window of the speckle-removing majority filter


def majority_filter(labels: np.ndarray, k: int, window: int) -> np.ndarray:
    """Each pixel takes the most frequent label in its window (box-filtered one-hot votes)."""
    votes = np.stack([cv2.boxFilter((labels == i).astype(np.float32), -1, (window, window)) for i in range(k)])
    return votes.argmax(axis=0)


class FlatteningSteerer:
    backend = "lite"

    def __init__(self, cfg: Phase2, sanitizer: Sanitizer):
        self.cfg = cfg
        self.sanitizer = sanitizer

    def steer(self, clean: np.ndarray, vehicle_mask: np.ndarray, *, seed: int | None = None) -> SteerResult:
        if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3:
            raise BadInputError(f"expected an H×W×3 uint8 image, got {clean.dtype} {clean.shape}", phase=PHASE,
                                fix="pass phase I's clean plate")
        if vehicle_mask.shape != clean.shape[:2] or not vehicle_mask.any():
            raise BadInputError(f"vehicle mask {vehicle_mask.shape} is empty or does not match the image "
                                f"{clean.shape[:2]}", phase=PHASE, fix="pass phase I's vehicle mask")
        t0 = time.perf_counter()
        seed = self.cfg.sdxl.seed if seed is None else seed
        h, w = clean.shape[:2]
        size = fit_size(w, h, self.cfg.generation_long_side, multiple=8)
        shrink = size[0] * size[1] < w * h
        image = cv2.resize(clean, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
        mask = resize_mask(vehicle_mask, size)
        if not mask.any():
            raise BadInputError(f"vehicle mask vanishes at the generation size {size}", phase=PHASE,
                                fix="check phase I's vehicle mask; it covers almost nothing")

        passes = self.cfg.lite.bilateral_passes
        plan = [passes] + ([passes // 2] if self.cfg.iou_retry.max_retries > 0 and passes > 0 else [])
        attempts, best = [], None
        for n in plan:  # a weaker flattening keeps thin parts that strong flattening can merge away
            t = time.perf_counter()
            out, clusters = self.flatten(image, mask, n, seed)
            score = iou(self.sanitizer.silhouette(out, mask), mask)
            attempts.append({"seed": seed, "bilateral_passes": n, "iou": round(score, 4),
                             "seconds": round(time.perf_counter() - t, 3)})
            if best is None or score > best[0]:
                best = (score, out, clusters, n)
            if score >= self.cfg.iou_retry.iou_threshold:
                break
        score, out, clusters, n = best
        return SteerResult(
            illustration=out, mask=mask, silhouette_iou=score,
            passed=score >= self.cfg.iou_retry.iou_threshold, backend=self.backend, attempts=attempts,
            metrics={"seconds": round(time.perf_counter() - t0, 3), "attempts": len(attempts),
                     "clusters": clusters, "iou": round(score, 4), "bilateral_passes": n})

    def flatten(self, image: np.ndarray, mask: np.ndarray, passes: int, seed: int) -> tuple[np.ndarray, int]:
        """The illustration of `image` inside `mask` on the background colour; returns it and its cluster count."""
        lite = self.cfg.lite
        ys, xs = np.nonzero(mask)
        pad = lite.bilateral_d + int(lite.mean_shift_spatial) + MAJORITY_WINDOW  # filters see real context
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, mask.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, mask.shape[1])
        crop, inside = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]

        for _ in range(passes):
            crop = cv2.bilateralFilter(crop, lite.bilateral_d, lite.bilateral_sigma_color, lite.bilateral_sigma_space)
        crop = cv2.pyrMeanShiftFiltering(crop, lite.mean_shift_spatial, lite.mean_shift_color)

        lab = cv2.cvtColor(crop.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        pixels = lab[inside]
        rng = np.random.default_rng(seed)
        sample = pixels[rng.choice(len(pixels), min(len(pixels), KMEANS_SAMPLE), replace=False)]
        k = int(min(lite.clusters, len(np.unique(sample.round(1), axis=0))))
        centres, _ = kmeans2(sample.astype(np.float64), k, minit="++", seed=rng)
        centres = centres.astype(np.float32)
        labels = np.zeros(inside.shape, np.int64)
        labels[inside] = np.argmin(((pixels[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        labels = majority_filter(labels, k, MAJORITY_WINDOW)
        rgb_centres = cv2.cvtColor(centres[None], cv2.COLOR_Lab2RGB)[0]
        flat = np.clip(rgb_centres * 255 + 0.5, 0, 255).astype(np.uint8)[labels]

        out = np.empty_like(image)
        out[:] = hex_to_rgb(self.cfg.background)
        region = out[y0:y1, x0:x1]
        region[inside] = flat[inside]
        # outlines: the result's own edges, darkened, inside the vehicle only so the silhouette is kept
        edges = (canny_edges(region, self.cfg.canny) > 0) & inside
        region[edges] = (region[edges] * (1 - lite.edge_darkening)).astype(np.uint8)
        return out, k
