"""SVG → RGBA pixels with resvg (no system fonts: v2v SVGs carry no text)."""
from __future__ import annotations

import io

import numpy as np
import resvg_py
from PIL import Image

from ..errors import BadInputError, EngineError
from .safety import parse_svg, safety_problems

PHASE = "IV vector"


def render_svg(svg: str, width: int, antialias: bool = True) -> np.ndarray:
    """H×W×4 uint8 (straight alpha) rendering of `svg`, `width` pixels wide. Unsafe SVGs are refused.
    `antialias=False` renders crisp edges: every pixel one fill colour, for pixel-by-pixel comparisons."""
    root, why = parse_svg(svg)
    problems = [why] if root is None else safety_problems(root)
    if problems:
        raise BadInputError(f"refusing to render an unsafe SVG: {'; '.join(problems[:3])}", phase=PHASE,
                            fix="render only SVGs that pass validate_svg")
    try:
        png = resvg_py.svg_to_bytes(svg_string=svg, width=int(width), skip_system_fonts=True,
                                    shape_rendering="geometric_precision" if antialias else "crisp_edges")
    except ValueError as e:
        raise EngineError(f"resvg could not render the SVG: {e}", phase=PHASE,
                          fix="check that the SVG has a valid size and viewBox") from e
    with Image.open(io.BytesIO(bytes(png))) as im:
        return np.asarray(im.convert("RGBA")).copy()
