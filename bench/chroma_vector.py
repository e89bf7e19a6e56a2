"""Benchmark of phases III (chroma) and IV (vector) on flat synthetic illustrations or given PNGs.

    .venv/bin/python bench/chroma_vector.py [--sizes 1024 4096] [--images DIR] [--cache DIR]

Prints seconds per stage (upscale, map, despeckle, vtracer, strokes, render, fidelity), peak RSS, path count,
SVG bytes and agreement for each image; the last line is one JSON object with every number.
"""
from __future__ import annotations

import cv2
import numpy as np

from v2v_resources.palette import Palette


def flat_illustration(long_side: int, palette: Palette, seed: int = 0, shapes: int = 60,
                      jitter: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A flat, vehicle-like illustration (RGB) and its vehicle mask: a body, a cabin and two wheels filled
    with polygons and ellipses in palette colours, colours jittered by ±`jitter` and edges softened the way
    a generated or flattened image is, on a white background."""
    rng = np.random.default_rng(seed)
    w, h = long_side, long_side * 3 // 4
    s = long_side / 1000
    mask = np.zeros((h, w), np.uint8)
    body = np.array([[80, 430], [120, 330], [330, 300], [430, 180], [700, 180], [820, 300], [930, 330],
                     [950, 430]]) * s
    cv2.fillPoly(mask, [body.astype(np.int32)], 1)
    for cx in (240, 760):
        cv2.circle(mask, (int(cx * s), int(440 * s)), int(85 * s), 1, -1)
    img = np.full((h, w, 3), 255, np.uint8)
    colors = palette.rgb.astype(int)
    layer = np.zeros((h, w, 3), np.uint8)
    layer[:] = colors[rng.integers(len(colors))]
    for _ in range(shapes):
        c = tuple(int(v) for v in colors[rng.integers(len(colors))])
        cx, cy = int(rng.uniform(60, 960) * s), int(rng.uniform(150, 540) * s)
        if rng.random() < 0.5:
            axes = (int(rng.uniform(15, 140) * s), int(rng.uniform(10, 90) * s))
            cv2.ellipse(layer, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, c, -1, cv2.LINE_AA)
        else:
            pts = (np.array([cx, cy]) + rng.uniform(-120, 120, (int(rng.integers(3, 7)), 2)) * s).astype(np.int32)
            cv2.fillPoly(layer, [cv2.convexHull(pts)], c, cv2.LINE_AA)
    noise = rng.integers(-jitter, jitter + 1, layer.shape) if jitter else 0
    layer = np.clip(layer.astype(int) + noise, 0, 255).astype(np.uint8)
    inside = mask.astype(bool)
    img[inside] = layer[inside]
    return cv2.GaussianBlur(img, (3, 3), 0), inside
