"""Phase III engine: ×4 upscale → output size → exact palette mapping → speckle removal → RGBA raster.

Every output pixel of the vehicle is a palette colour; the background is transparent or one palette
colour. The preview is taken from the index map by nearest neighbour, so it is palette-exact too (the
reference averaged it with INTER_AREA and so wrote off-palette colours).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadInputError, ConfigError, EngineError
from ..imaging import fit_size, resize_mask
from ..palette import Palette
from ..settings import Phase3
from .despeckle import OUTSIDE, despeckle, smallest_region
from .mapping import CUBE, PaletteMapper, pack_rgb
from .upscale import FACTOR, Upscaler, check_rgb

PHASE = "III chroma"


@dataclass
class PaletteRasterResult:
    raster: np.ndarray                 # H×W×4 uint8 at output_long_side
    preview: np.ndarray                # h×w×4 uint8 at preview_long_side, palette-exact
    colors_used: list[str]
    metrics: dict = field(default_factory=dict)


def palette_indices(rgba: np.ndarray, palette: Palette) -> np.ndarray:
    """H×W uint8 codes of an RGBA raster: the palette index of each opaque pixel, len(palette) for an
    opaque pixel of another colour, OUTSIDE for transparent pixels."""
    table = np.full(CUBE, len(palette), dtype=np.uint8)
    table[pack_rgb(palette.rgb)] = np.arange(len(palette))
    codes = table[pack_rgb(rgba)]
    codes[rgba[..., 3] == 0] = OUTSIDE
    return codes


def palette_report(raster_rgba: np.ndarray, palette: Palette) -> dict:
    """What the asset checks test: share of visible pixels in the palette, colours used, smallest region."""
    codes = palette_indices(raster_rgba, palette)
    visible = codes != OUTSIDE
    counts = np.bincount(codes[visible], minlength=len(palette) + 1)
    n_visible = int(visible.sum())
    used = [palette.colors[i] for i in np.flatnonzero(counts[:len(palette)])]
    off = len(np.unique(pack_rgb(raster_rgba[codes == len(palette)][:, :3]))) if counts[-1] else 0
    return {"palette_share": float(counts[:len(palette)].sum() / n_visible) if n_visible else 1.0,
            "colors_used": used, "n_colors": len(used) + off, "off_palette_px": int(counts[-1]),
            "smallest_region_px": smallest_region(codes)}


def _nearest(img: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize(size_wh, Image.Resampling.NEAREST))


class PaletteRasterEngine:
    def __init__(self, cfg: Phase3, palette: Palette, upscaler: Upscaler, cache_dir: Path | None = None):
        self.cfg, self.palette, self.upscaler = cfg, palette, upscaler
        self.background = None if cfg.background == "transparent" else cfg.background
        if self.background and not palette.contains(self.background):
            raise ConfigError(f"phase3.background {self.background} is not in palette {palette.name!r}",
                              phase=PHASE, fix=f"use 'transparent' or one of {', '.join(palette.colors)}")
        self.mapper = PaletteMapper(palette, cache_dir)

    def run(self, illustration: np.ndarray, mask: np.ndarray) -> PaletteRasterResult:
        check_rgb(illustration, PHASE)
        h, w = illustration.shape[:2]
        if mask.shape != (h, w):
            raise BadInputError(f"mask is {mask.shape[::-1]} but the illustration is {(w, h)}", phase=PHASE,
                                fix="pass the vehicle mask of the same illustration")
        if not mask.any():
            raise BadInputError("the vehicle mask is empty", phase=PHASE,
                                fix="check phase I's vehicle mask for this image")
        metrics: dict = {"upscaler": self.upscaler.name, "input_size": [w, h]}
        t0 = time.perf_counter()
        big = self.upscaler.upscale(illustration)
        if big.shape != (h * FACTOR, w * FACTOR, 3) or big.dtype != np.uint8:
            raise EngineError(f"upscaler {self.upscaler.name!r} returned {big.dtype} {big.shape}, expected "
                              f"uint8 {(h * FACTOR, w * FACTOR, 3)}", phase=PHASE,
                              fix="use an upscaler that enlarges exactly ×4")
        size = fit_size(w, h, self.cfg.output_long_side)
        if big.shape[1::-1] != size:
            big = np.asarray(Image.fromarray(big).resize(size, Image.Resampling.LANCZOS))
        inside = resize_mask(mask, size)
        t1 = time.perf_counter()
        indices = self.mapper.indices(big)
        del big
        t2 = time.perf_counter()
        stats = None
        if self.cfg.noise_removal.enabled:
            min_area = round(self.cfg.noise_removal.min_area_percent / 100 * size[0] * size[1])
            indices, stats = despeckle(indices, min_area, protect=inside)
            metrics["min_area_px"] = min_area
            metrics.update({f"despeckle_{k}": v for k, v in stats.as_dict().items()})
        t3 = time.perf_counter()

        raster = self._compose(indices, inside)
        preview_size = fit_size(*size, min(self.cfg.preview_long_side, max(size)))   # never enlarged
        preview = self._compose(_nearest(indices, preview_size), _nearest(inside, preview_size))
        report = palette_report(raster, self.palette)
        metrics.update({
            "seconds_upscale": round(t1 - t0, 4), "seconds_map": round(t2 - t1, 4),
            "seconds_despeckle": round(t3 - t2, 4), "output_size": list(size), "preview_size": list(preview_size),
            "pixels_changed": stats.pixels_changed if stats else 0,
            "lut_colors_computed": self.mapper.computed_colors,
            "palette_share": report["palette_share"], "n_colors": report["n_colors"],
            "smallest_region_px": report["smallest_region_px"]})
        return PaletteRasterResult(raster=raster, preview=preview, colors_used=report["colors_used"],
                                   metrics=metrics)

    def _compose(self, indices: np.ndarray, inside: np.ndarray) -> np.ndarray:
        # One gather of whole RGBA words: entry K is the background (a palette colour, or transparent).
        table = np.zeros((len(self.palette) + 1, 4), dtype=np.uint8)
        table[:-1, :3], table[:-1, 3] = self.palette.rgb, 255
        if self.background:
            table[-1] = table[self.palette.index_of(self.background)]
        words = table.view("<u4")[:, 0][np.where(inside, indices, len(self.palette))]
        return words[..., None].view(np.uint8)
