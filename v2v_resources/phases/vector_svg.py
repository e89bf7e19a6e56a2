"""Phase IV: the SVG (vtracer + strokes), validated, and its PNG preview."""
from __future__ import annotations

import time

from .. import imaging
from ..settings import Settings
from ..storage import Home, write_text_atomic
from .base import CheckOutcome, Phase, PhaseOutcome, finish, numbers, thumb

NAME = "vector_svg"


def build(kit):
    from ..vector.engine import Vectorizer

    return Vectorizer(kit.settings.phase4, kit.palette, kit.cache_dir)


def checks(settings: Settings, problems: list[str], svg_bytes: int, paths: int, agreement: float) -> list[CheckOutcome]:
    q = settings.phase4.quality
    size_problems = []
    if svg_bytes > q.max_svg_bytes:
        size_problems.append(f"{svg_bytes} bytes > {q.max_svg_bytes}")
    if paths > q.max_paths:
        size_problems.append(f"{paths} paths > {q.max_paths}")
    all_problems = list(problems) + size_problems
    return [
        CheckOutcome("svg_valid", not all_problems, True,
                     "; ".join(all_problems[:5]) or f"valid, {paths} paths, {svg_bytes} bytes",
                     {"svg_bytes": svg_bytes, "paths": paths, "problems": len(all_problems)}),
        CheckOutcome("render_agreement", agreement >= q.min_agreement, True,
                     f"render agreement {agreement:.2%} (min {q.min_agreement:.0%})",
                     {"agreement": agreement}),
    ]


def run(home: Home, key: str, settings: Settings, vectorizer) -> PhaseOutcome:
    t0 = time.perf_counter()
    raster = imaging.load_png(home.path("palette_raster", key, "raster.png"))
    res = vectorizer.run(raster)
    m = res.metrics
    svg_bytes = len(res.svg.encode())
    out_checks = checks(settings, res.problems, svg_bytes, int(m.get("paths", 0)), float(m.get("agreement", 0.0)))
    files = {}
    if not res.problems:   # an invalid or unsafe SVG never reaches its final name
        files["svg"] = str(write_text_atomic(home.path(NAME, key, f"{key}.svg"), res.svg))
        if settings.output.png_preview:
            files["preview"] = str(imaging.save_png(home.path(NAME, key, f"{key}.png"), res.preview))
    md = {"svg_bytes": svg_bytes, **numbers(m)}
    out = PhaseOutcome(key, NAME, "vtracer", time.perf_counter() - t0, files, md, out_checks, thumb(res.preview),
                       {"problems": res.problems})
    return finish(home, out, PHASE, settings)


PHASE = Phase(
    name=NAME,
    description="Phase IV: vtracer SVG snapped to the palette, strokes, validated, PNG preview.",
    upstream="palette_raster", run=run, engine=build, sections=("palette", "phase4", "output"),
    checks={"svg_valid": "The SVG parses safely, fills only palette colours and stays within size bounds.",
            "render_agreement": "The rendered SVG agrees with the palette raster."},
)
