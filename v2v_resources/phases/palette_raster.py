"""Phase III: ×4 upscale, exact CIEDE2000 palette, speckles removed."""
from __future__ import annotations

import time

from .. import imaging
from ..backends import make_upscaler
from ..settings import Settings
from ..storage import Home
from .base import CheckOutcome, Phase, PhaseOutcome, finish, numbers, thumb

NAME = "palette_raster"


def build(kit):
    from ..chroma.raster import PaletteRasterEngine

    upscaler = make_upscaler(kit.settings, kit.models_root, manifest=kit.manifest, vram=lambda: kit.vram)
    return PaletteRasterEngine(kit.settings.phase3, kit.palette, upscaler, kit.cache_dir)


def checks(palette_share: float, n_colors: int, palette_size: int) -> list[CheckOutcome]:
    ok = palette_share == 1.0 and n_colors <= palette_size
    return [CheckOutcome("palette_exact", ok, True,
                         f"{palette_share:.4%} palette pixels, {n_colors} colours used of {palette_size}",
                         {"palette_share": palette_share, "n_colors": n_colors})]


def run(home: Home, key: str, settings: Settings, engine) -> PhaseOutcome:
    t0 = time.perf_counter()
    ill = imaging.load_png(home.path("illustration", key, "illustration.png"))
    mask = imaging.load_mask(home.path("illustration", key, "mask.png"))
    res = engine.run(ill, mask)
    palette, upscaler = engine.palette, engine.upscaler
    files = {"raster": str(imaging.save_png(home.path(NAME, key, "raster.png"), res.raster)),
             "preview": str(imaging.save_png(home.path(NAME, key, "preview.png"), res.preview))}
    md = {"width": res.raster.shape[1], "height": res.raster.shape[0], "palette": palette.name,
          "colors_used": len(res.colors_used), "backend_reason": getattr(upscaler, "backend_reason", ""),
          **numbers(res.metrics)}
    # measured on the written raster by the engine
    out = PhaseOutcome(key, NAME, getattr(upscaler, "backend", "lite"), time.perf_counter() - t0, files, md,
                       checks(res.metrics["palette_share"], res.metrics["n_colors"], len(palette)),
                       thumb(res.preview), {"colors_used": list(res.colors_used),
                                            "palette_colors": list(palette.colors)})
    return finish(home, out, PHASE, settings)


PHASE = Phase(
    name=NAME,
    description="Phase III: ×4 upscale (ESRGAN or Lanczos), exact CIEDE2000 palette, speckle removal.",
    upstream="illustration", run=run, engine=build, gpu=True, backend_section="phase3", sections=("hardware", "palette", "phase3"),
    checks={"palette_exact": "Every pixel is a palette colour and no more colours than the palette are used."},
)
