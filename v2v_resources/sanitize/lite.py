"""Phase I without weights: the vehicle silhouette from classical cues, and its lettering and plates erased.

First cut, on a copy at most `WORK_LONG_SIDE` px long (cost grows with pixels, the mask does not improve):
- two priors: each row's own background is what the left and right frame margins show on that row (sky,
  buildings and road bands are horizontal), a pixel differing from both by more than `ROW_PRIOR_DELTA_E`
  may be vehicle; and subject saliency by boundary connectivity (classical/saliency.py): walls, sky and
  road reach the frame cheaply, a vehicle does not;
- the seed is the prior's blob most likely the vehicle, with its tyres, cabin and windows (classical/seed.py);
  beyond its box grown by `SEED_BOX_GROWTH` and down to the ground (a black body on dark asphalt is no
  evidence of its absence), and in the frame's bottom band, all is sure background, so a second car or the
  wall behind cannot be learnt as vehicle;
- GrabCut refines colour models and outline; the mask is cleaned (largest part with the cabin glass and
  wheels the seed joined, closed, notches between body parts one above the other filled where they do not look like the
  background beside them, holes filled);
- what reaches the top edge by small colour steps (classical/saliency.py's geodesic distances) and stays
  above the vehicle's lower part is a wall or sky behind it, learnt as vehicle where the seed touched it: cut;
- thin arms running out to a side edge (a kerb, a road strip, the sky between buildings) are cut;
- wheels found as Hough circles or, seen at an angle, as ellipses fitted to the rims' edge arcs
  (classical/wheels.py) add tyres lost to dark ground, and what lies under the sills between them or below
  the lowest tyre (road, shadow) is cut;
- pale parts standing on the roof against the sky or a plain wall (a roof rail, a light bar), learnt as
  background where the road or a building shares their colour, are added (classical/roof.py).
Then band-limited cuts (`silhouette()`, the cut phase I's before/after check and phase II run) refine the
outline at most `SECOND_PASSES` times until stable, the first cut's ground and side arms staying out; the
tyres and roof parts are added again, and a guided filter snaps the outline to the full-size photo's edges. Finally
lettering and plates (classical/text.py: MSER and Otsu characters in rows, plate quadrilaterals, plain panels
round a line) are inpainted from the paint round them, the tallest first while the erased share stays
within `quality.max_erased_share`, kept when the outline the cut finds in the clean plate is the one it
finds in the photo (base.erase_kept_silhouette, phase I's check), and reported.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..errors import BadInputError, QualityError
from ..imaging import iou, require_image
from ..recent import Recent
from ..settings import Phase1
from .base import SanitizeResult, erase_kept_silhouette
from .classical.saliency import frame_evidence
from .classical.roof import roof_parts
from .classical.seed import vehicle_seed
from .classical.text import find_text, inpaint
from .classical.wheels import find_wheels, ground_line, tyre_discs, under_body, wheel_discs

PHASE = "sanitize"
WORK_LONG_SIDE = 384
ROW_PRIOR_DELTA_E = 12.0   # Lab distance from a row's margin colours above which a pixel starts as vehicle
BEHIND_DELTA_E = 10.0     # geodesic Lab distance from the top edge below which a region is behind the vehicle
BEHIND_LOW_SHARE = 0.4    # a part behind that reaches into this lower share of the cut's box is the body itself
SIDE_ARM_SHARE = 0.3      # a part reaching a side edge thinner than this share of the cut's height is background
SEED_BOX_GROWTH = 0.15    # the seed blob's box grows by this share of its size; beyond it is sure background
GUIDED_EPS = 1e-3         # guided filter regulariser: below this grey variance (≈ 8 levels²) the mask stays smooth
SECOND_PASSES = 2         # band-limited cuts at most, after the first
STABLE_IOU = 0.985        # a cut that moves the outline less than this is the last
HINT_ITERATIONS = 2       # a band-limited cut starts close to its answer: fewer GrabCut rounds suffice
HINT_BAND = 0.05          # share of the long side round a hint's outline in which silhouette() decides
GROUND_TOLERANCE = 0.25   # share of a tyre radius kept below the lowest tyre bottom
SILHOUETTES_KEPT = 4      # silhouette() answers remembered (phase I's erase check and the phase's own ask the same)
CLOSE_SHARE = 0.03         # closing kernel, share of the long side: bridges thin roofs and pillars
NOTCH_SHARE = 0.35         # vertical closing, share of the cut's height: fills notches between body parts
NOTCH_DELTA_E = 12.0       # Lab distance from the background beside it above which a notch is body


def largest_component(mask: np.ndarray, joined: np.ndarray | None = None) -> np.ndarray:
    """The largest part of `mask`, with the parts that overlap `joined`."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    keep = np.zeros(n, bool)
    keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    if joined is not None:
        keep[np.unique(labels[joined & (mask > 0)])] = True
        keep[0] = False
    return keep[labels]


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He, Sun and Tang's guided filter (grey guide): `src` smoothed, following the edges of `guide`."""
    k = (2 * radius + 1, 2 * radius + 1)
    mean_i, mean_p = cv2.boxFilter(guide, -1, k), cv2.boxFilter(src, -1, k)
    cov = cv2.boxFilter(guide * src, -1, k) - mean_i * mean_p
    var = cv2.boxFilter(guide * guide, -1, k) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return cv2.boxFilter(a, -1, k) * guide + cv2.boxFilter(b, -1, k)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background is what a flood from the frame reaches; everything else belongs to the mask."""
    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return mask | (outside[1:-1, 1:-1] == 1)


def fill_notches(mask: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """`mask` with what lies between two of its parts one above the other filled, up to `NOTCH_SHARE` of its
    height, where it does not look like the background next to it: a red tail light between the tailgate and
    the bumper, learnt as background where a red wall is, or the dark gap between a wheel arch and its tyre.
    Sky caught between the roof and a strip of tree the cut took is as blue as the sky beside it, and stays
    out; what has no body above it (the road under the sills) is never filled."""
    ys = np.nonzero(mask)[0]
    if not ys.size:
        return mask
    k = 2 * round(NOTCH_SHARE * (ys.max() - ys.min() + 1) / 2) + 1
    padded = np.pad(mask.astype(np.uint8), ((k, k), (0, 0)))   # the frame's edge is not body
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, np.ones((k, 1), np.uint8))[k:-k] > 0
    n, parts, stats, _ = cv2.connectedComponentsWithStats((closed & ~mask).astype(np.uint8), connectivity=8)
    out = mask.copy()
    ring_k = np.ones((5, 5), np.uint8)
    for i in range(1, n):
        x, y, w, h = stats[i, :4]
        x0, y0, x1, y1 = max(x - 3, 0), max(y - 3, 0), x + w + 3, y + h + 3
        part = parts[y0:y1, x0:x1] == i
        ring = (cv2.dilate(part.astype(np.uint8), ring_k) > 0) & ~closed[y0:y1, x0:x1]
        inside = lab[y0:y1, x0:x1][part].mean(axis=0)
        if not ring.any() or np.linalg.norm(inside - lab[y0:y1, x0:x1][ring].mean(axis=0)) > NOTCH_DELTA_E:
            out[y0:y1, x0:x1] |= part
    return out


def drop_behind(fg: np.ndarray, behind: np.ndarray) -> np.ndarray:
    """The cut without its parts that reach the top edge by small colour steps (a wall, the sky or buildings
    behind the vehicle, learnt as vehicle where the seed touched them), when such a part stays above the
    lower `BEHIND_LOW_SHARE` of the cut's box: a part reaching that low is the body itself (a white car on a
    white wall), which is kept."""
    ys = np.nonzero(fg)[0]
    if not ys.size:
        return fg
    low = ys.max() - BEHIND_LOW_SHARE * (ys.max() - ys.min())
    n, parts, stats, _ = cv2.connectedComponentsWithStats((fg & behind).astype(np.uint8), connectivity=8)
    drop = stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT] - 1 < low
    drop[0] = False
    return largest_component(fg & ~drop[parts])


def drop_side_arms(fg: np.ndarray, margin: float) -> np.ndarray:
    """The cut without its thin arms that reach the left or right frame edge: a kerb, a road strip or the gap
    between buildings, joined to the vehicle along a row, is thinner there than `SIDE_ARM_SHARE` of the cut's
    height, whereas a vehicle the frame crops is about as tall at the edge as elsewhere. An arm is what a
    vertical opening removes, among the removed parts those reaching within twice the `margin` band (a share
    of the width, sure background in the cuts) of a side edge."""
    ys = np.nonzero(fg)[0]
    if not ys.size:
        return fg
    k = max(3, round(SIDE_ARM_SHARE * (ys.max() - ys.min() + 1)))
    thin = fg & ~(cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, 1), np.uint8)) > 0)
    n, parts, stats, _ = cv2.connectedComponentsWithStats(thin.astype(np.uint8), connectivity=8)
    x, bw = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH]
    edge = round(2 * margin * fg.shape[1])   # arms the cuts stopped short of the margin band too
    arm = (x <= edge) | (x + bw >= fg.shape[1] - edge)
    arm[0] = False
    return largest_component(fg & ~arm[parts])


def _full_size(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask of the small copy at full size, smooth rather than the small copy's staircase."""
    return cv2.resize(cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.0), shape[::-1],
                      interpolation=cv2.INTER_LINEAR) > 0.5


def _check_rgb(rgb: np.ndarray) -> None:
    require_image(rgb, 3, PHASE, "decode the photo with imaging.load_photo first")


class GrabCutSanitizer:
    backend = "lite"

    def __init__(self, cfg: Phase1):
        self.cfg = cfg
        self._silhouettes = Recent(SILHOUETTES_KEPT)

    def sanitize(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> SanitizeResult:
        _check_rgb(rgb)
        t0 = time.perf_counter()
        if alpha is not None:
            if alpha.shape != rgb.shape[:2]:
                raise BadInputError(f"alpha is {alpha.shape}, image is {rgb.shape[:2]}", phase=PHASE,
                                    fix="pass the alpha channel decoded with the image")
            mask, method = alpha > 127, "alpha"
        wheels: list = []
        if alpha is None:
            parts: dict = {}
            cues: dict = {}
            mask, method = self._segment(
                rgb, lambda small: self._frame_labels(small, cues),
                lambda small, fg: self._parts(
                    small, drop_side_arms(drop_behind(fg, cues["behind"]), self.cfg.lite.frame_margin), wheels, parts),
                cues=cues), "grabcut"
            if mask.any():
                mask = self._second_pass(rgb, mask, parts)
        if not mask.any():
            raise QualityError("no vehicle found: the mask is empty", phase=PHASE,
                               fix="frame the vehicle away from the photo's edges, or use the ml backend")
        erased, detections, parts = find_text(rgb, mask)
        erased = self._within_budget(erased, detections, parts, self.cfg.quality.max_erased_share * mask.sum())
        clean = inpaint(rgb, erased)
        if erase_kept_silhouette(self, rgb, clean, mask, erased) < self.cfg.quality.min_silhouette_iou:
            # phase I's check would block the photo: an erase that moves the outline (a panel filled with
            # the background's colour) is not kept
            erased[:] = False
            clean = rgb
            for d in detections:
                d.update(kept=False, why=d["why"] + "; not erased: erasing moved the silhouette")
        kept = sum(d["kept"] for d in detections)
        return SanitizeResult(
            clean=clean, vehicle_mask=mask, erased_mask=erased, backend=self.backend, detections=detections,
            metrics={"parts_erased": kept, "note": f"lite backend: {kept} text lines and plates erased",
                     "mask_method": method, "wheels": len(wheels),
                     "erased_share": round(float(erased.sum() / mask.sum()), 4),
                     "vehicle_area": round(float(mask.mean()), 4),
                     "seconds": round(time.perf_counter() - t0, 3)})

    @staticmethod
    def _within_budget(erased: np.ndarray, detections: list[dict], parts: list[np.ndarray], budget: float) -> np.ndarray:
        """A vehicle covered in lettering (a box truck's door): erasing all of it would leave too little paint
        to fill from, so the tallest lines go first (they stay readable in a flat illustration; small print
        is smoothed away by phase II) until `budget` pixels are erased; the rest is reported not erased."""
        if erased.sum() <= budget:
            return erased
        share = erased.sum() / budget
        kept = np.zeros_like(erased)
        for i in sorted(range(len(detections)), key=lambda i: detections[i]["box"][1] - detections[i]["box"][3]):
            d, grown = detections[i], kept | parts[i]
            if grown.sum() > budget:
                d.update(kept=False, why=d["why"] + f"; not erased: all lettering is {share:.1f}x the erase bound")
            else:
                kept = grown
        return kept

    def silhouette(self, rgb: np.ndarray, hint: np.ndarray) -> np.ndarray:
        """The vehicle in `rgb` (e.g. a phase-II illustration), found by GrabCut prompted by `hint`."""
        _check_rgb(rgb)
        if hint.shape != rgb.shape[:2]:
            raise BadInputError(f"hint mask is {hint.shape}, image is {rgb.shape[:2]}", phase=PHASE,
                                fix="resize the hint to the image (imaging.resize_mask)")
        if not hint.any():
            raise BadInputError("hint mask is empty", phase=PHASE, fix="pass the vehicle mask from phase I")
        # the cut is deterministic: the same image and hint (phase I's erase check, then the phase's own check
        # on the same photo and clean plate) get the answer remembered, by content
        key = Recent.key(rgb, hint.astype(bool))
        if (known := self._silhouettes.get(key)) is not None:
            return known.copy()
        # area resampling keeps every hinted pixel, however thin, in the small copy
        found = self._segment(rgb, lambda small: self._hint_labels(
            cv2.resize(hint.astype(np.uint8) * 255, small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0,
            self.cfg.lite.frame_margin), iterations=min(HINT_ITERATIONS, self.cfg.lite.grabcut_iterations))
        self._silhouettes.put(key, found.copy())
        return found

    def _frame_labels(self, small: np.ndarray, cues: dict) -> np.ndarray:
        """The `frame_margin` band is sure background; inside, the row colour prior decides the start.
        `cues` gets the map of what is behind the vehicle (see `drop_behind`) and the parts the seed joined to
        its blob (cabin glass, wheels), which the cut keeps (`_segment`)."""
        h, w = small.shape[:2]
        my, mx = max(1, round(h * self.cfg.lite.frame_margin)), max(1, round(w * self.cfg.lite.frame_margin))
        lab = cv2.cvtColor(small.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        # each row's margin colours, smoothed over a few rows so a lane mark or a noisy row does not decide
        sides = [cv2.GaussianBlur(lab[:, cols].mean(axis=1)[:, None], (1, 5), 0)
                 for cols in (slice(0, mx), slice(w - mx, w))]
        distance = np.minimum(*(np.linalg.norm(lab - side, axis=2) for side in sides))
        row_fg = distance > ROW_PRIOR_DELTA_E
        bg, from_top = frame_evidence(small)
        fg = 1 - bg
        cues["behind"] = from_top < BEHIND_DELTA_E
        seed, cues["joined"] = vehicle_seed(((fg > 0.95) | (row_fg & (fg > 0.25))), fg, row_fg)
        labels = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        if not seed.any():
            return labels
        ys, xs = np.nonzero(seed)
        gy, gx = round(SEED_BOX_GROWTH * (ys.max() - ys.min() + 1)), round(SEED_BOX_GROWTH * (xs.max() - xs.min() + 1))
        box = np.zeros((h, w), bool)
        box[max(ys.min() - gy, 0):h, max(xs.min() - gx, 0):xs.max() + gx + 1] = True   # down to the ground
        # plain background is sure background, unless the seed needed its cabin or wheels: then the body between
        # the glass and the sill is as plain as the wall (or the road), and only probable background
        labels[~box if cues["joined"].any() else ~box | ((fg < 0.1) & ~row_fg)] = cv2.GC_BGD
        margin = np.ones((h, w), bool)
        margin[my:h - my, mx:w - mx] = False
        labels[margin & (fg < 0.5)] = cv2.GC_BGD
        labels[h - my:] = cv2.GC_BGD   # the bottom band is the road the vehicle stands on, however salient
        labels[seed | (box & row_fg & (labels != cv2.GC_BGD))] = cv2.GC_PR_FGD
        return labels

    @staticmethod
    def _hint_labels(hint: np.ndarray, margin: float) -> np.ndarray:
        """Sure vehicle deeper than `HINT_BAND` of the frame inside the hint, sure background as far outside
        it; in the band between, probable vehicle inside the hint and probable background outside: the cut
        decides only where the outline lies, so the check measures outlines moved, not colours relearnt."""
        h, w = hint.shape
        band = max(2, round(HINT_BAND * max(h, w)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        u8 = hint.astype(np.uint8)
        labels = np.where(hint, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        labels[cv2.erode(u8, kernel) > 0] = cv2.GC_FGD
        labels[cv2.dilate(np.pad(u8, band), kernel)[band:-band, band:-band] == 0] = cv2.GC_BGD
        # the frame's edge band outside the hint stays background, as phase I's own cut keeps it
        my, mx = max(1, round(h * margin)), max(1, round(w * margin))
        edge = np.ones((h, w), bool)
        edge[my:h - my, mx:w - mx] = False
        labels[edge & ~hint] = cv2.GC_BGD
        return labels

    def _second_pass(self, rgb: np.ndarray, mask: np.ndarray, parts: dict) -> np.ndarray:
        """The first mask refined as `silhouette()` sees it (the same cut that phase I's before/after check and
        phase II run) without the first pass's ground, then the tyres and roof parts found in the first pass
        added again at full size."""
        road = np.zeros(mask.shape, bool)
        road[rgb.shape[0] - max(1, round(rgb.shape[0] * self.cfg.lite.frame_margin)):] = True
        if "ground" in parts:   # the first cut's road and shadow under the body
            road |= _full_size(parts["ground"], mask.shape)
        for _ in range(SECOND_PASSES):   # until the cut no longer moves the outline much (a fixed point of the check)
            before, mask = mask, self.silhouette(rgb, mask)
            mask = drop_side_arms(mask & ~road, self.cfg.lite.frame_margin)   # the bottom band, the ground and arms, as in the first cut
            if iou(before, mask) >= STABLE_IOU:
                break
        if "roof" in parts:   # pale roof parts the band-limited cuts learn as background again
            mask |= _full_size(parts["roof"], mask.shape)
        if "wheels" in parts:  # tyres the second cut lost again to dark ground, drawn at full size
            k = rgb.shape[1] / parts["ground"].shape[1]
            mask = largest_component(mask | tyre_discs(mask.shape, [w.scaled(k) for w in parts["wheels"]]))
        return mask

    @staticmethod
    def _parts(small: np.ndarray, fg: np.ndarray, wheels: list, parts: dict) -> np.ndarray:
        """The first cut with its tyres and roof parts, without the road and shadow under it; `parts` gets
        what was found (small masks, and the wheels), for the second pass."""
        fg = GrabCutSanitizer._wheels_and_ground(small, fg, wheels, parts)
        roof = roof_parts(small, fg)
        if roof.any():
            parts["roof"] = roof
        return fg | roof

    @staticmethod
    def _wheels_and_ground(small: np.ndarray, fg: np.ndarray, found: list, parts: dict) -> np.ndarray:
        """Tyres found as circles or ellipses join the vehicle; what lies below the lowest tyre, or under the
        sills between two tyres, is road and shadow. `parts` gets the wheels and that cut."""
        wheels = find_wheels(small, fg)
        found.extend(wheels)
        if not wheels:
            return fg
        add = wheel_discs(fg.shape, wheels)
        cut = under_body(small, wheels)
        cut[int(np.ceil(ground_line(wheels) + GROUND_TOLERANCE * max(w.ry for w in wheels))):] = True
        parts.update(wheels=wheels, ground=cut)
        return largest_component((fg | add) & ~cut)

    def _segment(self, rgb: np.ndarray, start_labels, refine=None, iterations: int | None = None,
                 cues: dict | None = None) -> np.ndarray:
        """GrabCut on a small copy from `start_labels(small)`, cleaned and brought back to full size. With the
        `cues` of the first cut's start, the parts the seed joined to its blob (cabin glass, wheels) stay with the
        largest part."""
        h, w = rgb.shape[:2]
        scale = min(1.0, WORK_LONG_SIDE / max(h, w))
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        labels = start_labels(small)
        if not np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            return np.zeros((h, w), bool)
        if not np.isin(labels, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            return np.ones((h, w), bool)  # nothing to learn a background from: the vehicle fills the frame
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means on OpenCV's global RNG: same photo, same mask
        cv2.grabCut(np.ascontiguousarray(small), labels, None, bgd, fgd,
                    iterations or self.cfg.lite.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
        fg = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        # glass the seed found above a flat body stays though the cut lost its pale frame, for the closing to join
        fg = largest_component(fg, cues["joined"] if cues else None)
        k = 2 * round(CLOSE_SHARE * max(small.shape[:2]) / 2) + 1
        padded = np.pad(fg.astype(np.uint8), k)  # padding keeps the closing from gluing the mask to the frame
        fg = largest_component(cv2.morphologyEx(padded, cv2.MORPH_CLOSE,
                                                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))[k:-k, k:-k] > 0)
        fg = fill_notches(fg, cv2.cvtColor(small.astype(np.float32) / 255, cv2.COLOR_RGB2Lab))
        fg = fill_holes(fg)
        if refine is not None:  # after the closing, which would bridge the shadow between the wheels again
            fg = refine(small, fg)
        # smooth the small mask's staircase while bringing it to full size
        soft = cv2.resize(cv2.GaussianBlur(fg.astype(np.float32), (0, 0), 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
        if scale < 1:  # the small copy's outline is a working pixel wide: snap it to the photo's own edges
            soft = guided_filter(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255, soft,
                                 max(2, round(0.75 / scale)), GUIDED_EPS)
        return largest_component(soft > 0.5)
