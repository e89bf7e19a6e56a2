"""How faithfully an SVG rendering reproduces the palette raster it was traced from."""
from __future__ import annotations

import numpy as np

from ..chroma.mapping import PaletteMapper
from ..chroma.raster import palette_indices
from ..imaging import iou


def fidelity(raster_rgba: np.ndarray, rendered_rgba: np.ndarray, mapper: PaletteMapper) -> dict:
    """`agreement`: share of pixels inside the union of both silhouettes (alpha > 127) where both are
    opaque and the rendering's colour maps to the raster's palette colour (antialiased edges are judged by
    their nearest palette colour). `silhouette_iou`: IoU of the two alpha > 127 masks."""
    if rendered_rgba.shape != raster_rgba.shape:
        raise ValueError(f"rendering is {rendered_rgba.shape}, raster is {raster_rgba.shape}")
    a, b = raster_rgba[..., 3] > 127, rendered_rgba[..., 3] > 127
    union = a | b
    both = a & b
    truth = palette_indices(raster_rgba, mapper.palette)
    same = both & (mapper.indices(rendered_rgba[..., :3]) == truth)
    n = int(union.sum())
    return {"agreement": float(same.sum() / n) if n else 1.0, "silhouette_iou": iou(a, b)}
