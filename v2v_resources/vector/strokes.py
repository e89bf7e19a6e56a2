"""Line work over the flat regions: A `outline` strokes every region path; B `centerline` draws the
skeleton of the colour-boundary map as open polylines.

Centerlines are traced from the skeleton itself: junction pixels split it into simple branches, each
branch is walked from one end to the other (its 8-connected contour runs there and back, so half of it is
the branch), Douglas-Peucker simplifies it, and the ends reach back to their junctions so lines meet. The
reference instead took contours of the 1-px lines, so every line came out as a thin closed loop.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.etree.ElementTree import Element

import cv2
import numpy as np

from ..chroma.despeckle import OUTSIDE
from ..settings import Strokes
from .safety import SVG_NS, local

_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float32)


def stroke_attrs(cfg: Strokes) -> dict[str, str]:
    return {"stroke": cfg.color, "stroke-width": f"{cfg.width:g}", "vector-effect": "non-scaling-stroke",
            "stroke-linejoin": "round", "stroke-linecap": "round"}


def add_outlines(root: Element, cfg: Strokes) -> int:
    """Stroke every filled region path (strategy A). Returns the number of paths stroked."""
    paths = [el for el in root.iter() if local(el.tag) == "path" and el.get("fill", "none") != "none"]
    for el in paths:
        el.attrib.update(stroke_attrs(cfg))
    return len(paths)


def boundary_map(codes: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another code, background-to-background excluded."""
    edge = np.zeros(codes.shape, dtype=bool)
    right = codes[:, :-1] != codes[:, 1:]
    right &= (codes[:, :-1] != OUTSIDE) | (codes[:, 1:] != OUTSIDE)
    down = codes[:-1] != codes[1:]
    down &= (codes[:-1] != OUTSIDE) | (codes[1:] != OUTSIDE)
    edge[:, :-1] |= right
    edge[:-1] |= down
    return edge


def _neighbours(mask: np.ndarray) -> np.ndarray:
    return cv2.filter2D(mask.astype(np.uint8), cv2.CV_8U, _RING, borderType=cv2.BORDER_CONSTANT)


def _walk(contour: np.ndarray, is_end: np.ndarray) -> np.ndarray:
    """One branch's ordered pixels from its 8-connected contour (x, y rows): from an end to the other end,
    or the whole loop when the branch has no end."""
    ends = np.flatnonzero(is_end[contour[:, 1], contour[:, 0]])
    if len(ends) == 0:
        return np.vstack([contour, contour[:1]])
    c = np.roll(contour, -ends[0], axis=0)
    later = np.flatnonzero(is_end[c[1:, 1], c[1:, 0]])
    return c[: later[0] + 2] if len(later) else c


def _reach_junction(line: np.ndarray, junction: np.ndarray) -> np.ndarray:
    h, w = junction.shape
    out = [line]
    for end, where in ((line[0], 0), (line[-1], 1)):
        x0, y0 = int(end[0]), int(end[1])
        ys, xs = np.nonzero(junction[max(0, y0 - 1):y0 + 2, max(0, x0 - 1):x0 + 2])
        if len(xs):
            j = np.array([[xs[0] + max(0, x0 - 1), ys[0] + max(0, y0 - 1)]])
            out.insert(0 if where == 0 else len(out), j)
    return np.vstack(out)


def centerlines(codes: np.ndarray, tolerance: float, min_length: int) -> list[np.ndarray]:
    """Simplified open polylines (N×2 float, x y in pixel units) along the colour boundaries of `codes`."""
    # scikit-image costs ~2 s of imports: only SVGs with centerlines pay it
    from skimage.measure import approximate_polygon
    from skimage.morphology import skeletonize

    skeleton = skeletonize(boundary_map(codes))
    count = _neighbours(skeleton)
    junction = skeleton & (count >= 3)
    branches = skeleton & ~junction
    is_end = branches & (_neighbours(branches) <= 1)
    contours, _ = cv2.findContours(branches.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    lines = []
    for contour in contours:
        line = _walk(contour[:, 0, :], is_end)
        if len(line) < min_length:
            continue
        line = _reach_junction(line, junction)
        lines.append(approximate_polygon(line.astype(float) + 0.5, tolerance))
    return lines


def centerline_group(lines: list[np.ndarray], cfg: Strokes) -> Element:
    group = ET.Element(f"{{{SVG_NS}}}g", {"id": "centerlines", "fill": "none", **stroke_attrs(cfg)})
    for line in lines:
        d = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in line)
        ET.SubElement(group, f"{{{SVG_NS}}}path", {"d": d, "fill": "none"})
    return group
