"""Phase III: ×4 upscale, exact CIEDE2000 palette, speckles removed."""
import dagster as dg

from v2v_resources.phases import run_palette_raster

from .batch import run_batch
from .illustration import illustration
from .phase_asset import phase_asset
from .resources import ChromaEngine, V2VConfig, V2VHome


@phase_asset("palette_raster", deps=[illustration], pool="gpu",
             description="Phase III: ×4 upscale (ESRGAN or Lanczos), exact CIEDE2000 palette, speckle removal.")
def palette_raster(context: dg.AssetExecutionContext, v2v_home: V2VHome, v2v_config: V2VConfig,
                   chroma: ChromaEngine):
    home, settings, palette = v2v_home.home, v2v_config.settings, v2v_config.palette_obj
    yield from run_batch(context, home, "illustration",
                         lambda key: run_palette_raster(home, key, settings, chroma.get(v2v_config), palette))
