"""Wheels by the Hough transform, and the ground line they stand on.

Dark tyres on dark asphalt have no colour step for a graph cut to follow, but their round outline against
the light rim and the body is a strong gradient circle. Candidates come from OpenCV's HOUGH_GRADIENT_ALT in
the lower part of the vehicle's box, sized from the box, and are kept when their outer ring (the tyre) is
darker than the rim inside it and than most of the vehicle. The lowest tyre bottom is where the vehicle
meets the ground: below it there is only road and shadow.
"""
from __future__ import annotations

import cv2
import numpy as np

MIN_RADIUS, MAX_RADIUS = 0.05, 0.17   # share of the vehicle box's width
LOWER_PART = 0.45                     # wheel centres lie in this lower share of the vehicle box
TYRE_QUANTILE = 40                    # a tyre ring is darker than this percentile of the vehicle's lightness
RIM_SHARE = 0.62                      # rim radius / tyre radius of a usual wheel
SILL_DROP = 0.55                      # the sills end above this share of the found radius below the wheel centres
MIN_VOTES = 0.75                      # HOUGH_GRADIENT_ALT's circle "perfectness" threshold
TYRE_SHARE = 0.88                     # the strongest circle is mostly the wheel arch, a little wider than the tyre
                                      # (the disc of the arch belongs to the vehicle down to the ground line)


def find_wheels(rgb: np.ndarray, mask: np.ndarray) -> list[tuple[float, float, float]]:
    """(x, y, arch radius) of each wheel of the vehicle `mask` in `rgb` (a small working copy)."""
    if not mask.any():
        return []
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    bw, bh = x1 - x0, y1 - y0
    r_min, r_max = max(4, round(MIN_RADIUS * bw)), max(6, round(MAX_RADIUS * bw))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    top = max(0, round(y1 - LOWER_PART * bh - r_max))
    bottom = min(gray.shape[0], y1 + r_max)
    left, right = max(0, x0 - r_max // 2), min(gray.shape[1], x1 + r_max // 2)
    roi = cv2.GaussianBlur(gray[top:bottom, left:right], (0, 0), 1.0)
    found = cv2.HoughCircles(roi, cv2.HOUGH_GRADIENT_ALT, dp=1.5, minDist=2 * r_min, param1=120,
                             param2=MIN_VOTES, minRadius=r_min, maxRadius=r_max)
    if found is None:
        return []
    dark = np.percentile(gray[mask], TYRE_QUANTILE)
    yy, xx = np.mgrid[0:gray.shape[0], 0:gray.shape[1]]
    wheels = []
    for cx, cy, r in found[0]:
        cx, cy = cx + left, cy + top
        if cy < y1 - LOWER_PART * bh or not (x0 <= cx < x1):
            continue
        d = np.hypot(xx - cx, yy - cy)
        ring = gray[(d >= 0.8 * r) & (d <= r)]
        rim = gray[d <= 0.55 * r]
        tyre = gray[(d >= 1.15 * r) & (d <= 1.4 * r)]
        if ring.size and rim.size and np.median(ring) < dark and np.median(ring) + 10 < np.median(rim):
            wheels.append((float(cx), float(cy), float(r)))          # the arch (or the tyre) itself
        elif ring.size and tyre.size and np.median(tyre) < dark and np.median(tyre) + 10 < np.median(ring):
            # a light rim inside a dark ring: the tyre, invisible against dark ground, is round the rim
            wheels.append((float(cx), float(cy), float(r / RIM_SHARE / TYRE_SHARE)))
    # the arch, the tyre and the rim of one wheel are concentric circles: keep the widest of each wheel
    kept: list[tuple[float, float, float]] = []
    for c in sorted(wheels, key=lambda c: -c[2]):
        if all(np.hypot(c[0] - k[0], c[1] - k[1]) > k[2] for k in kept):
            kept.append(c)
    return kept


def wheel_discs(shape: tuple[int, int], wheels: list[tuple[float, float, float]]) -> np.ndarray:
    """Each tyre with the upper half of its arch, which joins it to the body."""
    disc = np.zeros(shape, np.uint8)
    for cx, cy, r in wheels:
        cv2.ellipse(disc, (round(cx), round(cy)), (round(r), round(r)), 0, 180, 360, 1, -1)
        cv2.circle(disc, (round(cx), round(cy)), round(TYRE_SHARE * r), 1, -1)
    return disc > 0


def tyre_discs(shape: tuple[int, int], wheels: list[tuple[float, float, float]]) -> np.ndarray:
    disc = np.zeros(shape, np.uint8)
    for cx, cy, r in wheels:
        cv2.circle(disc, (round(cx), round(cy)), round(TYRE_SHARE * r), 1, -1, cv2.LINE_8)
    return disc > 0


def under_body(rgb: np.ndarray, wheels: list[tuple[float, float, float]]) -> np.ndarray:
    """Between the outermost two wheels, below the sill: the road and the shadow under the car (the wheels
    themselves excluded). The sill is the strongest horizontal edge of each column between the wheels, from
    the centre line down to `SILL_DROP` radii below it; the sill runs parallel to the centre line at the
    median of those depths. Empty without two wheels apart."""
    out = np.zeros(rgb.shape[:2], bool)
    if len(wheels) < 2:
        return out
    (ax, ay, ar), (bx, by, br) = min(wheels), max(wheels)   # the outermost two, by x
    if bx - ax < 2 * max(ar, br):
        return out
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    x0, x1 = int(np.ceil(ax + ar)), int(bx - br) + 1    # columns clear of both wheels
    radius = (ar + br) / 2
    centre = ay + (by - ay) * (np.arange(x0, x1) - ax) / (bx - ax)
    top, depth = centre.astype(int), max(2, int(SILL_DROP * radius))
    band = np.stack([gy[np.clip(top + d, 0, gy.shape[0] - 1), np.arange(x0, x1)] for d in range(depth + 1)])
    drop = float(np.median(band.argmax(axis=0)))   # the median keeps a decal's or a door line's edge out
    xs = np.arange(int(np.ceil(ax)), int(bx) + 1)
    sill = ay + (by - ay) * (xs - ax) / (bx - ax) + drop
    out[:, xs] = np.arange(rgb.shape[0])[:, None] > sill[None] + 1
    return out & ~wheel_discs(out.shape, wheels)


def ground_line(wheels: list[tuple[float, float, float]]) -> float | None:
    """The image row where the lowest tyre touches the road."""
    return max(cy + TYRE_SHARE * r for cx, cy, r in wheels) if wheels else None
