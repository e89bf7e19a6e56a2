"""Wheels by the Hough transform and by ellipses fitted to edge arcs, and the ground line they stand on.

Dark tyres on dark asphalt have no colour step for a graph cut to follow, but their round outline against
the light rim and the body is a strong gradient circle. Candidates come from OpenCV's HOUGH_GRADIENT_ALT in
the lower part of the vehicle's box, sized from the box, and are kept when their outer ring (the tyre) is
darker than most of the vehicle and than the rim inside it in most directions (not only below, as an arc
of a bumper over its shadow is). A wheel seen at an angle (a three-quarter view)
is an ellipse, upright and narrower than high: its rim's outline is a Canny edge arc, fitted with
cv2.fitEllipse, kept when the edges cover most of the fitted ellipse and the tyre round it is darker than
the rim in most directions. A tyre stands on the ground, and no arch grown from a rim is larger than an
arch found whole. The lowest tyre bottom is where the vehicle meets the ground: below it there is only road
and shadow.
"""
from __future__ import annotations

from typing import NamedTuple

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
CANNY = (40, 120)                     # grey-level hysteresis thresholds of the rim's edge arcs
MIN_ARC = 16                          # edge points an arc needs for an ellipse fit
MIN_ASPECT = 0.3                      # a rim seen more edge-on than this (minor / major axis) is not trusted
MAX_TILT = 35                         # degrees an elongated rim's long axis may lean from the vertical
MIN_SUPPORT = 0.8                     # share of the fitted ellipse's outline that must lie on edges
GROUND_REACH = 0.2                    # a tyre ends within this share of the box height of the vehicle's bottom
RIM_TYRE_QUANTILE = 60                # an ellipse's tyre is darker than this percentile of the vehicle's lightness
RIM_STEP = 30                         # grey levels a rim is lighter than its tyre in a dark sector
DARK_SECTORS = 6                      # of 8 directions round the rim, where the tyre must be darker than the rim


class Wheel(NamedTuple):
    """A wheel's arch: its centre and its horizontal and vertical radii (equal for a wheel seen square-on)."""
    x: float
    y: float
    rx: float
    ry: float

    def scaled(self, k: float) -> "Wheel":
        return Wheel(self.x * k, self.y * k, self.rx * k, self.ry * k)


def find_wheels(rgb: np.ndarray, mask: np.ndarray) -> list[Wheel]:
    """The arch of each wheel of the vehicle `mask` in `rgb` (a small working copy), circles and ellipses."""
    if not mask.any():
        return []
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # an arch grown from its rim (a circle's or an ellipse's) is no larger than an arch found whole
    x0, x1, _, _ = _box(mask)
    largest = MAX_RADIUS * (x1 - x0)
    wheels = [w for w in _circles(gray, mask) + _ellipses(gray, mask) if max(w.rx, w.ry) <= largest]
    # the arch, the tyre and the rim of one wheel are concentric: keep the widest of each wheel, the wheels
    # that most candidates agree on first; an ellipse overlapping a wheel kept (a lamp beside it) is dropped
    votes = [sum(np.hypot(c.x - o.x, c.y - o.y) < 0.5 * min(c.rx, o.rx) for o in wheels) for c in wheels]
    kept: list[Wheel] = []
    for _, c in sorted(zip(votes, wheels), key=lambda vc: (-vc[0], -vc[1].ry)):
        if c.rx == c.ry and all(np.hypot(c.x - k.x, c.y - k.y) > k.ry for k in kept) or \
                all(np.hypot((c.x - k.x) / (c.rx + k.rx), (c.y - k.y) / (c.ry + k.ry)) >= 1 for k in kept):
            kept.append(c)
    return kept


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), xs.max() + 1, ys.min(), ys.max() + 1


def _circles(gray: np.ndarray, mask: np.ndarray) -> list[Wheel]:
    x0, x1, y0, y1 = _box(mask)
    bw, bh = x1 - x0, y1 - y0
    r_min, r_max = max(4, round(MIN_RADIUS * bw)), max(6, round(MAX_RADIUS * bw))
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
        ring, rim, tyre = (d >= 0.8 * r) & (d <= r), d <= 0.55 * r, (d >= 1.15 * r) & (d <= 1.4 * r)
        # darker all round, not only below: an arc of a bumper's edge over its shadow has the bumper above it
        if ring.any() and rim.any() and np.median(gray[ring]) < dark and \
                _dark_sectors(gray, ring, cx, cy, np.median(gray[rim])) >= DARK_SECTORS:
            wheels.append(Wheel(float(cx), float(cy), float(r), float(r)))   # the arch (or the tyre) itself
        elif ring.any() and tyre.any() and np.median(gray[tyre]) < dark and \
                _dark_sectors(gray, tyre, cx, cy, np.median(gray[ring])) >= DARK_SECTORS:
            # a light rim inside a dark ring: the tyre, invisible against dark ground, is round the rim
            r = float(r / RIM_SHARE / TYRE_SHARE)
            wheels.append(Wheel(float(cx), float(cy), r, r))
    # a tyre grown from a rim stands on the ground, as the ellipses' tyres must
    return [w for w in wheels if y1 - (w.y + TYRE_SHARE * w.ry) <= GROUND_REACH * bh]


def _ellipses(gray: np.ndarray, mask: np.ndarray) -> list[Wheel]:
    """Rims seen at an angle: ellipses fitted to the Canny arcs of the vehicle's lower part."""
    x0, x1, y0, y1 = _box(mask)
    bw, bh = x1 - x0, y1 - y0
    a_min, a_max = MIN_RADIUS * TYRE_SHARE * RIM_SHARE * bw, MAX_RADIUS * TYRE_SHARE * bw
    blur = cv2.GaussianBlur(gray, (0, 0), 1.0)
    top, pad = max(0, round(y1 - LOWER_PART * bh - a_max)), round(a_max)
    roi = (slice(top, y1 + pad), slice(max(0, x0 - pad), x1 + pad))
    edges = np.zeros_like(gray)
    edges[roi] = cv2.Canny(blur[roi], *CANNY)
    near = cv2.dilate(edges, np.ones((3, 3), np.uint8)) > 0
    dark = np.percentile(gray[mask], RIM_TYRE_QUANTILE)
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wheels = []
    for arc in cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)[0]:
        if len(arc) < MIN_ARC:
            continue
        (cx, cy), (d1, d2), angle = cv2.fitEllipse(arc)
        a, b = max(d1, d2) / 2, min(d1, d2) / 2
        if not (a_min <= a <= a_max) or b < MIN_ASPECT * a or cy < y1 - LOWER_PART * bh or not x0 <= cx < x1:
            continue
        th = np.deg2rad(angle)
        major = th if d1 >= d2 else th + np.pi / 2
        if b < 0.9 * a and abs(np.cos(major)) > np.sin(np.deg2rad(MAX_TILT)):
            continue   # an elongated ellipse lying down is a lamp or a grille, not a wheel
        px = cx + d1 / 2 * np.cos(t) * np.cos(th) - d2 / 2 * np.sin(t) * np.sin(th)
        py = cy + d1 / 2 * np.cos(t) * np.sin(th) + d2 / 2 * np.sin(t) * np.cos(th)
        on = (px >= 0) & (py >= 0) & (px < gray.shape[1] - 0.5) & (py < gray.shape[0] - 0.5)
        if near[np.round(py[on]).astype(int), np.round(px[on]).astype(int)].sum() < MIN_SUPPORT * len(t):
            continue
        # the arch round the tyre round the rim, as wide and as high as the rim's upright box
        hx = np.hypot(d1 / 2 * np.cos(th), d2 / 2 * np.sin(th)) / RIM_SHARE / TYRE_SHARE
        hy = np.hypot(d1 / 2 * np.sin(th), d2 / 2 * np.cos(th)) / RIM_SHARE / TYRE_SHARE
        if y1 - (cy + TYRE_SHARE * hy) > GROUND_REACH * bh:
            continue   # a tyre stands on the ground, at the bottom of the vehicle: a lamp higher up does not
        inner, outer, ring = (np.zeros(gray.shape, np.uint8) for _ in range(3))
        cv2.ellipse(inner, ((cx, cy), (0.9 * d1, 0.9 * d2), angle), 1, -1)
        cv2.ellipse(outer, ((cx, cy), (1.4 * d1, 1.4 * d2), angle), 1, -1)
        cv2.ellipse(ring, ((cx, cy), (1.1 * d1, 1.1 * d2), angle), 1, -1)
        ring = (outer > 0) & (ring == 0)
        if np.median(gray[ring]) < dark and \
                _dark_sectors(gray, ring, cx, cy, np.median(gray[inner > 0])) >= DARK_SECTORS:
            wheels.append(Wheel(float(cx), float(cy), float(hx), float(hy)))
    return wheels


def _dark_sectors(gray: np.ndarray, ring: np.ndarray, cx: float, cy: float, rim: float) -> int:
    """In how many of 8 directions round (cx, cy) the `ring` (the tyre) is darker than the `rim` by `RIM_STEP`."""
    yy, xx = np.mgrid[0:gray.shape[0], 0:gray.shape[1]]
    sector = ((np.arctan2(yy - cy, xx - cx) + np.pi) * 4 / np.pi).astype(int) % 8
    return sum(np.median(gray[ring & (sector == k)]) + RIM_STEP < rim for k in range(8) if (ring & (sector == k)).any())


def wheel_discs(shape: tuple[int, int], wheels: list[Wheel]) -> np.ndarray:
    """Each tyre with the upper half of its arch, which joins it to the body."""
    disc = np.zeros(shape, np.uint8)
    for w in wheels:
        centre = (round(w.x), round(w.y))
        cv2.ellipse(disc, centre, (round(w.rx), round(w.ry)), 0, 180, 360, 1, -1)
        _tyre(disc, w)
    return disc > 0


def tyre_discs(shape: tuple[int, int], wheels: list[Wheel]) -> np.ndarray:
    disc = np.zeros(shape, np.uint8)
    for w in wheels:
        _tyre(disc, w)
    return disc > 0


def _tyre(img: np.ndarray, w: Wheel) -> None:
    """The tyre's disc drawn into `img`: a circle seen square-on (OpenCV's circle, not a round ellipse, whose
    outline differs by a pixel here and there), an upright ellipse seen at an angle."""
    centre = (round(w.x), round(w.y))
    if w.rx == w.ry:
        cv2.circle(img, centre, round(TYRE_SHARE * w.rx), 1, -1, cv2.LINE_8)
    else:
        cv2.ellipse(img, centre, (round(TYRE_SHARE * w.rx), round(TYRE_SHARE * w.ry)), 0, 0, 360, 1, -1, cv2.LINE_8)


def under_body(rgb: np.ndarray, wheels: list[Wheel]) -> np.ndarray:
    """Between the outermost two wheels, below the sill: the road and the shadow under the car (the wheels
    themselves excluded). The sill is the strongest horizontal edge of each column between the wheels, from
    the centre line down to `SILL_DROP` radii below it; the sill runs parallel to the centre line at the
    median of those depths. Empty without two wheels apart."""
    out = np.zeros(rgb.shape[:2], bool)
    if len(wheels) < 2:
        return out
    a, b = min(wheels), max(wheels)   # the outermost two, by x
    (ax, ay, arx, ary), (bx, by, brx, bry) = a, b
    if bx - ax < arx + brx:
        return out
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    x0, x1 = int(np.ceil(ax + arx)), int(bx - brx) + 1    # columns clear of both wheels
    radius = (ary + bry) / 2
    centre = ay + (by - ay) * (np.arange(x0, x1) - ax) / (bx - ax)
    top, depth = centre.astype(int), max(2, int(SILL_DROP * radius))
    band = np.stack([gy[np.clip(top + d, 0, gy.shape[0] - 1), np.arange(x0, x1)] for d in range(depth + 1)])
    drop = float(np.median(band.argmax(axis=0)))   # the median keeps a decal's or a door line's edge out
    xs = np.arange(int(np.ceil(ax)), int(bx) + 1)
    sill = ay + (by - ay) * (xs - ax) / (bx - ax) + drop
    out[:, xs] = np.arange(rgb.shape[0])[:, None] > sill[None] + 1
    return out & ~wheel_discs(out.shape, wheels)


def ground_line(wheels: list[Wheel]) -> float | None:
    """The image row where the lowest tyre touches the road."""
    return max(w.y + TYRE_SHARE * w.ry for w in wheels) if wheels else None
