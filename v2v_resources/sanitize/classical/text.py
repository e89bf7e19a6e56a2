"""Lettering and licence plates on the vehicle, found without weights, and erased into the paint round them.

Characters: MSER regions of the lightness and of its negative (dark-on-light and light-on-dark lettering)
inside the vehicle, and the larger connected components of its Otsu threshold (big bold lettering), kept when they are character-shaped (size against the vehicle, aspect, fill) and have a
steady stroke width (distance-transform ridge: its spread is small against its mean). A lone letter-like
blob is common on a car (a bolt, a lamp segment), so only rows of at least `MIN_LINE` similar characters
side by side count as text. Plates: a bright or strongly coloured convex quadrilateral of plate proportions
that holds such a text line, or else the plain panel of another colour a text line sits on. Erasing: the
characters' own pixels, dilated by their stroke, and whole plates and panels with their rim are filled by
Telea's fast-marching inpainting from the pixels round them, so text becomes the surrounding paint rather
than a blank box.
"""
from __future__ import annotations

import cv2
import numpy as np

MIN_CHAR_H, MAX_CHAR_H = 0.012, 0.2    # character height, share of the vehicle box height
MAX_STROKE_SPREAD = 0.65              # std / mean of the stroke width along the character's skeleton
MAX_CHAR_ASPECT = 1.7                 # width / height of a character: bold italic capitals (M, W) are wide
LARGE_CHAR_H = 0.04                   # Otsu components shorter than this share of the vehicle height are left
                                      # to MSER (small ones are mostly noise and paint texture)
MIN_LINE_ASPECT = 1.8                 # width / height of a row of at least MIN_LINE characters
MIN_LINE = 3                          # characters in a row for it to be text
PLATE_ASPECT = (1.4, 6.5)             # width / height of a plate (EU 4.7, US 2, CN 3.1)
PLATE_MARGIN = 1.15                   # a plate is at least this many times taller than its text line
PANEL_REACH = 1.5                     # a panel round a text line ends within this many line heights of it
PANEL_DELTA_E = 12.0                  # Lab distance from the panel's colour within which a pixel is panel
PANEL_CONTRAST = 20.0                 # Lab distance between the panel and the paint round it
PANEL_RIM = 0.3                       # a panel's frame or rim, erased with it, in line heights
INPAINT_RADIUS = 5
MAX_RIM_PX = 4                        # widest rim erased round a glyph, pixels of the photo at working size


def _regions(gray: np.ndarray, vehicle_h: int):
    """(pixel coordinates, box) of candidate character regions from two sources: MSER regions, with a loose
    stability bound (blurred, anti-aliased ink on a real plate varies a lot between levels), and the connected
    components of the Otsu threshold of the vehicle's box in both polarities, which keep large bold lettering
    that MSER misses (its shaded rim spreads the level at which a letter is stable)."""
    mser = cv2.MSER_create(delta=5, min_area=12, max_area=max(60, int((MAX_CHAR_H * vehicle_h) ** 2)),
                           max_variation=0.5, min_diversity=0.05)
    yield from zip(*mser.detectRegions(gray))   # OpenCV's MSER finds dark and light regions in one pass
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    for layer in (ink, 1 - ink):
        n, comp, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=8)
        for i in np.flatnonzero(stats[1:, cv2.CC_STAT_HEIGHT] >= LARGE_CHAR_H * vehicle_h) + 1:
            x, y, w, h = stats[i, :4]
            if h > MAX_CHAR_H * vehicle_h:
                continue
            ys, xs = np.nonzero(comp[y:y + h, x:x + w] == i)
            yield np.stack([xs + x, ys + y], 1), (x, y, w, h)


def _char_candidates(gray: np.ndarray, vehicle_h: int) -> list[tuple[np.ndarray, tuple[int, int, int, int], float]]:
    """(pixel mask in its box, box x y w h, stroke width) of every character-shaped region."""
    out, seen = [], set()
    for pts, (x, y, w, h) in _regions(gray, vehicle_h):
        key = (x // 2, y // 2, w // 2, h // 2)
        if key in seen or not (MIN_CHAR_H * vehicle_h <= h <= MAX_CHAR_H * vehicle_h) or not 0.1 <= w / h <= MAX_CHAR_ASPECT:
            continue
        m = np.zeros((h + 2, w + 2), np.uint8)
        m[pts[:, 1] - y + 1, pts[:, 0] - x + 1] = 1
        fill = m.sum() / (w * h)
        if not 0.15 <= fill <= 0.85:
            continue
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
        ridge = dist[(dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (m > 0)]
        if ridge.size < 3 or ridge.std() / max(ridge.mean(), 1e-6) > MAX_STROKE_SPREAD:
            continue
        seen.add(key)
        out.append((m[1:-1, 1:-1], (x, y, w, h), float(2 * ridge.mean())))
    return out


def _lines(boxes: np.ndarray, strokes: np.ndarray) -> list[list[int]]:
    """Indices of characters grouped into rows: similar height and stroke, tops and bottoms level, gaps under
    1.5 heights (wheel spokes and lamp segments fan out, so their tops and bottoms do not line up)."""
    n = len(boxes)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    x, y, w, h = boxes.T.astype(np.float64)
    cy = y + h / 2
    for i in range(n):
        for j in range(i + 1, n):
            hh = max(h[i], h[j])
            if min(h[i], h[j]) / hh < 0.6 or abs(cy[i] - cy[j]) > 0.35 * hh:
                continue
            if abs(y[i] - y[j]) > 0.25 * hh or abs(y[i] + h[i] - y[j] - h[j]) > 0.25 * hh:
                continue
            if max(strokes[i], strokes[j]) > 1.6 * min(strokes[i], strokes[j]):
                continue
            gap = max(x[i], x[j]) - min(x[i] + w[i], x[j] + w[j])
            if -0.5 * hh < gap < 1.5 * hh:   # side by side, neither nested in the other
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    # a row of letters is wide: a stack of spokes or lamp segments grouped by chance is not
    return [g for g in groups.values() if len(g) >= MIN_LINE
            and (x[g] + w[g]).max() - x[g].min() >= MIN_LINE_ASPECT * ((y[g] + h[g]).max() - y[g].min())]


def _plates(gray: np.ndarray, lines: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """Convex quadrilaterals of plate proportions round a text line (contours of the Canny map)."""
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 60, 160), np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    plates = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        if h < 8 or not PLATE_ASPECT[0] <= w / h <= PLATE_ASPECT[1]:
            continue
        quad = cv2.approxPolyDP(cv2.convexHull(c), 0.04 * cv2.arcLength(c, True), True)
        if len(quad) != 4 or cv2.contourArea(quad) < 0.6 * w * h:
            continue
        for lx, ly, lw, lh in lines:   # the plate holds a text line that fills most of its width, with a
            # margin round it (the hull of the glyphs' own edges is no plate)
            if x <= lx and lx + lw <= x + w and y <= ly and ly + lh <= y + h and lw >= 0.45 * w \
                    and 0.3 * h <= lh <= h / PLATE_MARGIN:
                plates.append(quad.reshape(-1, 2))
                break
    return plates


def _panel(lab: np.ndarray, glyphs: np.ndarray, line: tuple[int, int, int, int]) -> np.ndarray | None:
    """The plain panel a text line is printed on (a plate without a contour of its own, a sticker): the pixels
    of the panel's colour (the median round the glyphs in the line box) connected to the line, when they end
    within `PANEL_REACH` line heights of it and differ from the paint round them; None when the letters are on
    the body's own paint (the region runs on) or no panel differs from the paint."""
    x, y, w, h = line
    reach = max(2, round(PANEL_REACH * h))
    H, W = glyphs.shape
    wy0, wy1, wx0, wx1 = max(y - reach, 0), min(y + h + reach, H), max(x - reach, 0), min(x + w + reach, W)
    if wy0 == 0 or wx0 == 0 or wy1 == H or wx1 == W:
        return None   # the window would leave the vehicle's box: nothing round it to compare with
    win, ink = lab[wy0:wy1, wx0:wx1], glyphs[wy0:wy1, wx0:wx1] > 0
    core = np.zeros(ink.shape, bool)
    core[y - wy0:y - wy0 + h, x - wx0:x - wx0 + w] = True
    ground = win[core & ~ink]
    if len(ground) < 8:
        return None
    colour = np.median(ground, axis=0)
    similar = (np.linalg.norm(win - colour, axis=2) < PANEL_DELTA_E).astype(np.uint8)
    n, regions = cv2.connectedComponents(similar | ink.astype(np.uint8), connectivity=4)
    touching = np.unique(regions[core & (similar > 0)])
    panel = np.isin(regions, touching[touching > 0])
    if not panel.any() or panel[0].any() or panel[-1].any() or panel[:, 0].any() or panel[:, -1].any():
        return None   # it runs on to the window's edge: the letters are on the paint itself
    # the paint round it: the window beyond the panel and its rim (a plate's frame is often dark)
    around = cv2.dilate(panel.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    if around.sum() < 8 or np.linalg.norm(np.median(win[around], axis=0) - colour) < PANEL_CONTRAST:
        return None
    out = np.zeros(glyphs.shape, bool)
    out[wy0:wy1, wx0:wx1] = panel
    return out


def find_text(rgb: np.ndarray, vehicle_mask: np.ndarray) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """(H×W bool pixels to erase, detections [{label, score, box, kept, why}], each detection's own H×W bool
    pixels) for lettering and plates."""
    erase = np.zeros(vehicle_mask.shape, bool)
    if not vehicle_mask.any():
        return erase, [], []
    ys, xs = np.nonzero(vehicle_mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    gray = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    inside = vehicle_mask[y0:y1, x0:x1]
    chars = [c for c in _char_candidates(gray, y1 - y0) if inside[c[1][1] + c[1][3] // 2, c[1][0] + c[1][2] // 2]]
    if len(chars) < MIN_LINE:
        return erase, [], []
    boxes = np.array([c[1] for c in chars])
    local = np.zeros(inside.shape, np.uint8)
    detections, line_boxes, line_glyphs, parts = [], [], [], []

    def add(part: np.ndarray, detection: dict) -> None:
        nonlocal local
        local |= part
        full = np.zeros(vehicle_mask.shape, bool)
        full[y0:y1, x0:x1] = (part > 0) & inside
        parts.append(full)
        detections.append(detection)

    for group in _lines(boxes, np.array([c[2] for c in chars])):
        glyphs = np.zeros(inside.shape, np.uint8)
        for i in group:
            m, (x, y, w, h), _ = chars[i]
            glyphs[y:y + h, x:x + w] |= m.astype(np.uint8)
        # the anti-aliased rim and a thin drop shadow go too: grow the glyphs by most of their stroke width,
        # at most `MAX_RIM_PX` (the rim of a big bold letter is no wider than a small one's)
        k = 2 * min(MAX_RIM_PX, max(1, round(0.6 * float(np.median([chars[i][2] for i in group]))))) + 1
        grown = cv2.dilate(glyphs, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        gx0, gy0 = boxes[group, 0].min(), boxes[group, 1].min()
        gx1, gy1 = (boxes[group, 0] + boxes[group, 2]).max(), (boxes[group, 1] + boxes[group, 3]).max()
        line_boxes.append((gx0, gy0, gx1 - gx0, gy1 - gy0))
        line_glyphs.append(glyphs)
        add(grown, {"label": "text", "score": round(min(1.0, len(group) / 6), 3),
                    "box": [int(gx0 + x0), int(gy0 + y0), int(gx1 + x0), int(gy1 + y0)], "kept": True,
                    "why": f"{len(group)} characters in a row"})
    plates = _plates(gray, line_boxes)
    lab = cv2.cvtColor(rgb[y0:y1, x0:x1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    for box, glyph_px in zip(line_boxes, line_glyphs):
        lx, ly, lw, lh = box
        if any(cv2.pointPolygonTest(q.astype(np.float32), (lx + lw / 2, ly + lh / 2), False) >= 0 for q in plates):
            continue   # on a plate found by its contour, erased whole below
        panel = _panel(lab, glyph_px, box)
        if panel is None:
            continue
        # the panel's frame or rim (a plate holder, a shadow) goes with it, so no blank frame is left
        k = 2 * max(2, round(PANEL_RIM * lh)) + 1
        ys_, xs_ = np.nonzero(panel)
        add(cv2.dilate(panel.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))),
            {"label": "license plate", "score": 0.8,
             "box": [int(xs_.min() + x0), int(ys_.min() + y0), int(xs_.max() + 1 + x0), int(ys_.max() + 1 + y0)],
             "kept": True, "why": "plain panel of another colour round a text line"})
    for quad in plates:
        filled = cv2.fillPoly(np.zeros(inside.shape, np.uint8), [quad.astype(np.int32)], 1)
        qx, qy, qw, qh = cv2.boundingRect(quad.astype(np.int32))
        add(filled, {"label": "license plate", "score": 1.0,
                     "box": [int(qx + x0), int(qy + y0), int(qx + qw + x0), int(qy + qh + y0)], "kept": True,
                     "why": "plate-shaped quadrilateral holding a text line"})
    erase[y0:y1, x0:x1] = (local > 0) & inside
    return erase, detections, parts


def inpaint(rgb: np.ndarray, erase: np.ndarray) -> np.ndarray:
    """`rgb` with the `erase` pixels filled from their surroundings (Telea), worked on their bounding box."""
    if not erase.any():
        return rgb
    ys, xs = np.nonzero(erase)
    pad = 4 * INPAINT_RADIUS
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, rgb.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, rgb.shape[1])
    out = rgb.copy()
    out[y0:y1, x0:x1] = cv2.inpaint(np.ascontiguousarray(rgb[y0:y1, x0:x1]),
                                    erase[y0:y1, x0:x1].astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return out
