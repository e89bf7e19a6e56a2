"""Benchmark of phases III (chroma) and IV (vector) on flat synthetic illustrations or given PNGs.

    .venv/bin/python bench/chroma_vector.py [--sizes 1024 4096] [--images DIR] [--cache DIR]

Prints seconds per stage (upscale, map, despeckle, vtracer, strokes, render, fidelity), peak RSS, path count,
SVG bytes and agreement for each image; the last line is one JSON object with every number.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from v2v_resources.chroma.raster import PaletteRasterEngine  # noqa: E402
from v2v_resources.chroma.upscale import LanczosUpscaler  # noqa: E402
from v2v_resources.imaging import load_png  # noqa: E402
from v2v_resources.palette import Palette  # noqa: E402
from v2v_resources.settings import load_settings  # noqa: E402
from v2v_resources.vector.engine import Vectorizer  # noqa: E402


def flat_illustration(long_side: int, palette: Palette, seed: int = 0, shapes: int = 60, jitter: int = 6,
                      square: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A flat, vehicle-like illustration (RGB) and its vehicle mask: a body, a cabin and two wheels filled
    with polygons and ellipses in palette colours, colours jittered by ±`jitter` and edges softened the way
    a generated or flattened image is, on a white background."""
    rng = np.random.default_rng(seed)
    w, h = long_side, long_side if square else long_side * 3 // 4
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


def peak_rss_mb() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024     # the vtracer process
    return {"peak_rss_mb": round(own), "peak_rss_vtracer_mb": round(child)}


def run_one(name: str, rgb: np.ndarray, mask: np.ndarray, settings, palette: Palette, cache: Path,
            strokes: str) -> dict:
    p3 = settings.phase3.model_copy(update={"output_long_side": 4 * max(rgb.shape[:2])})
    p4 = settings.phase4.model_copy(update={"strokes": settings.phase4.strokes.model_copy(
        update={"strategy": strokes})})
    engine = PaletteRasterEngine(p3, palette, LanczosUpscaler(), cache)
    t = time.perf_counter()
    cold = engine.run(rgb, mask)                  # fills the lookup table for this image's colours
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    r3 = engine.run(rgb, mask)                    # the steady state: the table knows the colours
    t3 = time.perf_counter() - t
    t = time.perf_counter()
    r4 = Vectorizer(p4, palette, cache).run(r3.raster)
    t4 = time.perf_counter() - t
    m3, m4 = r3.metrics, r4.metrics
    row = {"image": name, "size": m3["output_size"], "upscale_s": m3["seconds_upscale"],
           "map_cold_s": cold.metrics["seconds_map"], "lut_colors_computed": cold.metrics["lut_colors_computed"],
           "map_s": m3["seconds_map"], "despeckle_s": m3["seconds_despeckle"],
           "despeckle_passes": m3.get("despeckle_passes", 0), "phase3_cold_s": round(cold_s, 3),
           "phase3_s": round(t3, 3), "vtracer_s": m4["seconds_trace"], "strokes_s": m4["seconds_strokes"],
           "render_s": m4["seconds_render"], "fidelity_s": m4["seconds_fidelity"], "phase4_s": round(t4, 3),
           "phase3_4_s": round(t3 + t4, 3), "paths": m4["paths"], "svg_bytes": m4["svg_bytes"],
           "agreement_pct": round(100 * m4["agreement"], 3), "silhouette_iou": round(m4["silhouette_iou"], 4),
           "palette_share": m3["palette_share"], "colors_used": len(r3.colors_used), **peak_rss_mb()}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def load_input(path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = load_png(path)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    mask = img[..., 3] > 127 if img.shape[2] == 4 else np.ones(img.shape[:2], bool)
    return np.ascontiguousarray(img[..., :3]), mask


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], help="output long sides (synthetic)")
    ap.add_argument("--images", type=Path, help="folder of PNG illustrations to run instead")
    ap.add_argument("--cache", type=Path, help="lookup-table cache (default: a fresh temp folder)")
    ap.add_argument("--strokes", default="none", choices=["none", "outline", "centerline", "both"])
    args = ap.parse_args(argv)
    settings, palette = load_settings(), Palette.from_choice(load_settings().palette)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="v2v-bench-"))
    if args.images:
        inputs = [(p.name, *load_input(p)) for p in sorted(args.images.glob("*.png"))]
    else:
        inputs = [(f"flat{size}", *flat_illustration(size // 4, palette, seed=size, square=True))
                  for size in args.sizes]
    rows = [run_one(name, rgb, mask, settings, palette, cache, args.strokes) for name, rgb, mask in inputs]
    print(json.dumps({"cache": str(cache), "strokes": args.strokes, "results": rows}))


if __name__ == "__main__":
    main()
