"""What stands on the roof against the sky: a box truck's roof rail and marker lamps, a light bar, a rack.

Such parts are pale or grey, and the cut learns them as background where a wall, the road or a parked car
shares their colours. What tells them apart is what lies above: the sky or a plain wall, a region reached
from the top edge by small colour steps. A strip of other pixels sitting on the body's top outline, with
that plain region right above it within `CAP_SHARE` of the body's height, over at least `MIN_WIDTH` of the
body's width, is on the roof, unless its colours are only blends of the plain region's and the body's (a
soft outline) or it continues beside the body in its own colour (the top of a wall or a tree line behind
the roof does).
"""
from __future__ import annotations

import cv2
import numpy as np

CAP_SHARE = 0.1            # tallest strip, share of the body's height
MIN_RUN = 3                # px: thinner strips are the outline's blend with the sky, not parts
MIN_WIDTH = 0.15           # share of the body's width a strip spans
SKY_STEP = 4               # grey levels per channel between neighbours of the plain region above
SKY_BLUR = 1.0             # px sigma smoothing sensor noise first, which a plain sky has as much as any part
BESIDE = 3                 # px columns looked at beside each end of a strip
CONTINUE_DELTA_E = 12.0    # Lab distance from a strip's end above which what lies beside it is something else
CONTINUE_SHARE = 0.5       # a strip whose end is continued over this share of the rows beside it is behind
BLEND_DELTA_E = 10.0       # a strip's median Lab distance from the blends of the colours above and below it


def plain_from_top(rgb: np.ndarray) -> np.ndarray:
    """H×W bool: what the top row's pixels reach by steps of at most `SKY_STEP` (sky, a plain wall)."""
    h, w = rgb.shape[:2]
    reached = np.zeros((h + 2, w + 2), np.uint8)
    image = cv2.GaussianBlur(rgb, (0, 0), SKY_BLUR)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    for x in range(w):
        if not reached[1, x + 1]:
            cv2.floodFill(image, reached, (x, 0), 0, (SKY_STEP,) * 3, (SKY_STEP,) * 3, flags)
    return reached[1:-1, 1:-1] > 0


def _strip_starts(fg: np.ndarray, plain: np.ndarray, tops: np.ndarray) -> np.ndarray:
    """Per column, the first row of the run of non-plain pixels right above the body (whose first row per
    column is `tops`) that ends in plain pixels within reach and is at least `MIN_RUN` tall; -1 where there
    is none."""
    ys = np.nonzero(fg)[0]
    reach = max(MIN_RUN, round(CAP_SHARE * (ys.max() - ys.min() + 1)))
    starts = np.full(fg.shape[1], -1)
    for x in np.nonzero(fg.any(0))[0]:
        top = int(tops[x])
        upward = plain[max(top - reach - 1, 0):top, x][::-1]
        run = int(upward.argmax()) if upward.any() else 0   # non-plain pixels before the first plain one
        if run >= MIN_RUN:
            starts[x] = top - run
    return starts


def _blend_distance(lab: np.ndarray, strip: np.ndarray, starts: np.ndarray, tops: np.ndarray) -> float:
    """The median Lab distance of a strip's pixels from the segment between their column's colour right above
    the strip (the plain region) and right below it (the body): small for a soft outline's blend pixels."""
    rows, cols = np.nonzero(strip)
    above = lab[starts[cols] - 1, cols]
    below = lab[np.minimum(tops[cols] + 1, lab.shape[0] - 1), cols]
    span = below - above
    t = np.clip(((lab[rows, cols] - above) * span).sum(1) / np.maximum((span * span).sum(1), 1e-6), 0, 1)
    return float(np.median(np.linalg.norm(lab[rows, cols] - (above + t[:, None] * span), axis=1)))


def _continues(lab: np.ndarray, fg: np.ndarray, plain: np.ndarray, colour: np.ndarray,
               rows: slice, cols: slice) -> bool:
    """Whether what lies beside a strip's end (rows × cols) is mostly the strip's colour going on."""
    beside = ~fg[rows, cols]
    if not beside.any():
        return False
    going_on = ~plain[rows, cols] & (np.linalg.norm(lab[rows, cols] - colour, axis=2) <= CONTINUE_DELTA_E)
    return going_on[beside].mean() > CONTINUE_SHARE


def roof_parts(rgb: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """H×W bool: the strips on the top outline of the body `fg` of the small RGB copy `rgb` that stand
    against the plain region above it (see the module's docstring)."""
    found = np.zeros_like(fg)
    xs = np.nonzero(fg.any(0))[0]
    if not xs.size:
        return found
    plain = plain_from_top(rgb)
    tops = fg.argmax(0)
    starts = _strip_starts(fg, plain, tops)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    _, _, stats, _ = cv2.connectedComponentsWithStats((starts >= 0)[None].astype(np.uint8), connectivity=4)
    w = fg.shape[1]
    for x0, _, width, _, _ in stats[1:]:
        if width < MIN_WIDTH * (xs[-1] - xs[0] + 1):
            continue
        x1 = x0 + width - 1
        strip = np.zeros_like(fg)
        for x in range(x0, x1 + 1):
            strip[starts[x]:tops[x], x] = True
        if _blend_distance(lab, strip, starts, tops) <= BLEND_DELTA_E:
            continue
        rows = slice(int(starts[x0:x1 + 1].min()), int(tops[x0:x1 + 1].max()))
        if not any(_continues(lab, fg, plain, lab[strip[:, end], end].mean(0), rows, cols) for end, cols in (
                (x0, slice(max(x0 - BESIDE, 0), x0)), (x1, slice(x1 + 1, min(x1 + 1 + BESIDE, w))))):
            found |= strip
    return found
