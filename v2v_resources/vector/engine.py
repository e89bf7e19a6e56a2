"""Phase IV engine: palette raster → vtracer SVG (time-limited) → palette-exact, framed, optionally stroked
SVG → validation → preview and fidelity rendered from the SVG itself."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..chroma.mapping import PaletteMapper
from ..chroma.raster import palette_indices
from ..errors import BadInputError, ConfigError
from ..imaging import fit_size
from ..palette import Palette
from ..settings import Phase4
from . import document, strokes
from .fidelity import fidelity
from .render import render_svg
from .safety import validate_svg
from .trace import trace

PHASE = "IV vector"


@dataclass
class VectorResult:
    svg: str
    preview: np.ndarray                # RGBA rendered from the SVG, long side cfg.preview_long_side
    metrics: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # validation failures: the svg_valid check reports them


class Vectorizer:
    def __init__(self, cfg: Phase4, palette: Palette, cache_dir: Path | None = None):
        self.cfg, self.palette = cfg, palette
        if cfg.strokes.strategy != "none" and not palette.contains(cfg.strokes.color):
            raise ConfigError(f"phase4.strokes.color {cfg.strokes.color} is not in palette {palette.name!r}",
                              phase=PHASE, fix=f"use one of {', '.join(palette.colors)} or strategy: none")
        self.mapper = PaletteMapper(palette, cache_dir)

    def run(self, raster: np.ndarray) -> VectorResult:
        if raster.ndim != 3 or raster.shape[2] != 4 or raster.dtype != np.uint8:
            raise BadInputError(f"expected an H×W×4 uint8 raster, got {raster.dtype} {raster.shape}",
                                phase=PHASE, fix="pass phase III's RGBA palette raster")
        h, w = raster.shape[:2]
        # Never trace above the raster's own size: enlarged pixels add time, not detail. Nearest neighbour
        # keeps the traced pixels palette-exact.
        trace_wh = fit_size(w, h, min(self.cfg.trace_long_side, max(w, h)))
        traced = raster if trace_wh == (w, h) else np.asarray(
            Image.fromarray(raster).resize(trace_wh, Image.Resampling.NEAREST))
        t0 = time.perf_counter()
        root = document.parse(trace(traced, self.cfg.vtracer, self.cfg.time_limit_s))
        document.set_frame(root, trace_wh, (w, h))
        snapped = document.snap_fills(root, self.palette)
        region_paths = document.count_paths(root)
        fills_svg = document.serialize(root)
        t1 = time.perf_counter()
        strategy = self.cfg.strokes.strategy
        if strategy in ("outline", "both"):
            strokes.add_outlines(root, self.cfg.strokes)
        n_lines = 0
        if strategy in ("centerline", "both"):
            sc = self.cfg.strokes
            lines = strokes.centerlines(palette_indices(traced, self.palette), sc.centerline_tolerance,
                                        sc.centerline_min_length)
            root.append(strokes.centerline_group(lines, self.cfg.strokes))
            n_lines = len(lines)
        svg = document.serialize(root)
        problems = validate_svg(svg, self.palette)
        t2 = time.perf_counter()
        preview_wh = fit_size(w, h, self.cfg.preview_long_side)
        if problems:   # never render what failed validation; the check fails with these reasons
            metrics = {"paths": region_paths + n_lines, "svg_bytes": len(svg.encode()), "agreement": 0.0}
            return VectorResult(svg=svg, preview=np.zeros((preview_wh[1], preview_wh[0], 4), np.uint8),
                                metrics=metrics, problems=problems)
        # Crisp edges: the preview, like the raster, holds only palette colours (no blended edge pixels).
        preview = render_svg(svg, preview_wh[0], antialias=False)
        t3 = time.perf_counter()
        # Agreement judges the traced fills against the pixels vtracer saw (a nearest-neighbour subsample of the
        # raster), at the traced size; the preview's rendering serves when it has that size. Strokes cover
        # boundaries on purpose, so their cost is reported beside it (agreement_with_strokes).
        same_size = preview.shape[1::-1] == trace_wh
        fid = self._fidelity(traced, fills_svg, preview if same_size and strategy == "none" else None)
        if strategy != "none":
            fid["agreement_with_strokes"] = self._fidelity(traced, svg, preview if same_size else None)["agreement"]
        t4 = time.perf_counter()
        metrics = {
            "paths": region_paths + n_lines, "region_paths": region_paths, "centerline_paths": n_lines,
            "svg_bytes": len(svg.encode()), "fills_snapped": snapped, "strokes": strategy,
            "trace_size": list(trace_wh), **fid,
            "seconds_trace": round(t1 - t0, 4), "seconds_strokes": round(t2 - t1, 4),
            "seconds_render": round(t3 - t2, 4), "seconds_fidelity": round(t4 - t3, 4)}
        return VectorResult(svg=svg, preview=preview, metrics=metrics)

    def _fidelity(self, reference: np.ndarray, svg: str, rendered: np.ndarray | None = None) -> dict:
        h, w = reference.shape[:2]
        if rendered is None:
            rendered = render_svg(svg, w, antialias=False)
        if rendered.shape[:2] != (h, w):   # resvg rounds the height from the aspect ratio
            rendered = np.asarray(Image.fromarray(rendered).resize((w, h), Image.Resampling.NEAREST))
        return fidelity(reference, rendered, self.mapper)
