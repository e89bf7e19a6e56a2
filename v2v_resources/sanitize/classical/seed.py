"""Which blobs of the subject prior are the vehicle: the seed of lite phase I's first cut.

The prior (saliency and the row colour prior) marks blobs; the vehicle is the one with the most subject
evidence, the lower the better, with:
- not what rests on its roof above a waist (a salient skyline behind it, one blob with the car);
- the blobs the row prior joins to it on the same rows (two tyres and the sill between them, on a white car
  whose body the saliency misses);
- when that is flatter than a vehicle, its cabin: the blobs just above it within its width (glass whose pale
  paint frame looks like the wall);
- otherwise, when a pair of wheels (their light rims) stands below it, one either side of its middle, the
  wheels and the hull round them and it: a dark body on dark ground, of which the prior saw only the cabin;
- the blobs inside the box of all these (windows, wheels, lamps).
A blob reaching both the left and the right frame edge is a band of background (buildings, a wall).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_SHARE = 0.02          # a blob within this share of the width from both side edges spans the frame
SPAN_WEIGHT = 0.2          # a spanning blob's evidence counts this much
CABIN_ASPECT = 0.35        # a seed flatter than this (height / width) is a body whose cabin the prior missed
CABIN_REACH = 0.15         # the cabin's glass ends within this share of the body's width above it
WAIST_WIDENING = 1.5       # a blob widening again above its narrowest row by this factor rests on its top
WAIST_SHARE = 0.6          # ... at a row narrower than this share of the blob's lower half's widest row
WAIST_ROWS = 5             # working rows across which a gap in a blob is closed before its waist is sought
WHEEL_REACH = 0.5          # a wheel pair's tops lie within this share of the seed's width below it
MIN_TRACK = 0.7            # ... their centres at least this share of its width apart, either side of its middle


@dataclass
class Blobs:
    """Connected blobs of a mask, after a 3×3 opening drops specks and threads between them: their label image
    and boxes (index 0 is the background)."""
    labels: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> "Blobs":
        opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        _, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        return cls(labels, *(stats[:, i].copy() for i in range(4)))

    def __len__(self) -> int:
        return len(self.x)

    def spanning(self, width: int) -> np.ndarray:
        edge = max(1, round(EDGE_SHARE * width))
        return (self.x <= edge) & (self.x + self.w >= width - edge)

    def trim_above(self, i: int, row: int) -> None:
        """Blob `i` without its rows above `row`, which become background."""
        above = (self.labels == i) & (np.arange(self.labels.shape[0])[:, None] < row)
        self.labels[above] = 0
        ys, xs = np.nonzero(self.labels == i)
        self.x[i], self.y[i], self.w[i], self.h[i] = xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1


def vehicle_seed(prior: np.ndarray, fg: np.ndarray, row_fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed (a mask) and the part of it that is the cabin found above a flat body (see the module)."""
    height, width = prior.shape
    blobs = Blobs.of(prior)
    if len(blobs) <= 1:
        return np.zeros(prior.shape, bool), np.zeros(prior.shape, bool)
    spans = blobs.spanning(width)
    # vehicles stand on the ground: a blob ending high in the frame is more likely sky or buildings
    score = np.bincount(blobs.labels.ravel(), fg.ravel(), len(blobs)) * np.where(spans, SPAN_WEIGHT, 1.0) \
        * ((blobs.y + blobs.h) / height) ** 2
    score[0] = -1
    best = int(np.argmax(score))
    waist = waist_row(blobs.labels == best)
    if waist is not None:   # what widens again above a waist is the skyline behind the roof
        blobs.trim_above(best, waist)
    group = row_linked(blobs, best, prior | row_fg)
    joined = cabin_above(blobs, group) & ~spans
    wheels = np.zeros(len(blobs), bool) if joined.any() else wheels_below(blobs, group) & ~spans
    joined |= wheels
    group |= joined
    group &= ~spans | (np.arange(len(blobs)) == best)
    x0, y0 = blobs.x[group].min(), blobs.y[group].min()
    x1, y1 = (blobs.x + blobs.w)[group].max(), (blobs.y + blobs.h)[group].max()
    inside = (blobs.x >= x0) & (blobs.y >= y0) & (blobs.x + blobs.w <= x1) & (blobs.y + blobs.h <= y1) & ~spans
    inside |= group
    inside[0] = joined[0] = False
    seed = inside[blobs.labels]
    if wheels.any():   # the body between the cabin and the wheels, which the prior did not see
        hull = cv2.convexHull(np.argwhere(group[blobs.labels])[:, ::-1].astype(np.int32))
        seed |= cv2.fillConvexPoly(np.zeros(prior.shape, np.uint8), hull, 1) > 0
    return seed, joined[blobs.labels]


def row_linked(blobs: Blobs, best: int, loose_prior: np.ndarray) -> np.ndarray:
    """Blob `best` with the blobs that `loose_prior` (the prior with the row prior) joins to it and that lie on
    its rows: two tyres and the sill between them. A loose part spanning the frame links nothing."""
    loose = Blobs.of(loose_prior)
    linked = np.unique(loose.labels[blobs.labels == best])
    linked = linked[(linked > 0) & ~loose.spanning(loose_prior.shape[1])[linked]]
    group = np.zeros(len(blobs), bool)
    group[np.unique(blobs.labels[np.isin(loose.labels, linked)])] = True
    top, bottom = blobs.y, blobs.y + blobs.h
    overlap = np.minimum(bottom, bottom[best]) - np.maximum(top, top[best])
    group &= overlap >= 0.5 * np.minimum(blobs.h, blobs.h[best])
    group[best], group[0] = True, False
    return group


def cabin_above(blobs: Blobs, group: np.ndarray) -> np.ndarray:
    """When `group` is flatter than any vehicle, the blobs just above it within its width: its cabin."""
    x0, x1 = blobs.x[group].min(), (blobs.x + blobs.w)[group].max()
    y0, y1 = blobs.y[group].min(), (blobs.y + blobs.h)[group].max()
    if y1 - y0 >= CABIN_ASPECT * (x1 - x0):
        return np.zeros(len(blobs), bool)
    reach = CABIN_REACH * (x1 - x0)
    return (blobs.x >= x0) & (blobs.x + blobs.w <= x1) & (blobs.y + blobs.h >= y0 - reach) & (blobs.y < y0)


def wheels_below(blobs: Blobs, group: np.ndarray) -> np.ndarray:
    """The pair of blobs below `group` that stand like its wheels (see the module), the widest such pair:
    round-ish, alike in height, on the same rows, within `WHEEL_REACH` below it and one either side of its
    middle at least `MIN_TRACK` of its width apart; none when there is no such pair."""
    x0, x1 = blobs.x[group].min(), (blobs.x + blobs.w)[group].max()
    y0, y1 = blobs.y[group].min(), (blobs.y + blobs.h)[group].max()
    width, middle = x1 - x0, (x0 + x1) / 2
    centre = blobs.x + blobs.w / 2
    bottom = blobs.y + blobs.h
    below = np.nonzero(~group & (blobs.y >= y1 - 0.1 * (y1 - y0)) & (blobs.y <= y1 + WHEEL_REACH * width)
                       & (blobs.w <= 2 * blobs.h) & (blobs.h <= 2 * blobs.w))[0]
    below = below[below > 0]
    pair, track = np.zeros(len(blobs), bool), 0.0
    for a in below[centre[below] < middle]:
        for b in below[centre[below] > middle]:
            tall, short = max(blobs.h[a], blobs.h[b]), min(blobs.h[a], blobs.h[b])
            shared = min(bottom[a], bottom[b]) - max(blobs.y[a], blobs.y[b])
            span = centre[b] - centre[a]
            if shared >= 0.5 * short and tall <= 2 * short and span >= MIN_TRACK * width and tall <= 0.5 * span \
                    and span > track:
                pair[:], track = False, span
                pair[[a, b]] = True
    return pair


def waist_row(blob: np.ndarray) -> int | None:
    """The row of a blob's waist, when it has one: going up from its lower half's widest row, the narrowest
    row before the blob widens again to more than `WAIST_WIDENING` times that width (a salient skyline
    resting on a roof), if that row is narrower than `WAIST_SHARE` of the widest. A vehicle alone narrows
    from its body to its roof and stays narrow; a van's rear in clutter is about as wide at its top."""
    # a crease the prior missed across the body is no waist: rows a few apart are joined first
    blob = cv2.morphologyEx(blob.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((WAIST_ROWS, 1), np.uint8)) > 0
    cols = np.arange(blob.shape[1])
    # the row's extent, not its count: a cabin's glass (a hole or a blob of its own) does not narrow it
    right, left = np.where(blob, cols, -1).max(axis=1), np.where(blob, cols, blob.shape[1]).min(axis=1)
    width = np.where(blob.any(axis=1), right - left + 1, 0)
    rows = np.nonzero(width)[0]
    if not rows.size:
        return None
    lower = rows[rows >= (rows[0] + rows[-1]) / 2]   # a vehicle is widest in its lower half, a skyline may be wider
    low = int(lower[np.argmax(width[lower])])
    narrowest, at = width[low], low
    for r in range(low - 1, rows[0] - 1, -1):
        if width[r] < narrowest:
            narrowest, at = width[r], r
        elif width[r] > WAIST_WIDENING * max(narrowest, 1):
            # a roof is much narrower than the body below it; a blob of clutter round a van is not
            return at if narrowest < WAIST_SHARE * width[low] else None
    return None
