"""Phase IV: the SVG (vtracer + strokes) and its PNG preview."""
import dagster as dg

from v2v_resources.phases import run_vector_svg

from .batch import run_batch
from .palette_raster import palette_raster
from .phase_asset import phase_asset
from .resources import V2VConfig, V2VHome, VectorEngine


@phase_asset("vector_svg", deps=[palette_raster],
             description="Phase IV: vtracer SVG snapped to the palette, strokes, validated, PNG preview.")
def vector_svg(context: dg.AssetExecutionContext, v2v_home: V2VHome, v2v_config: V2VConfig,
               vectorizer: VectorEngine):
    home, settings, palette = v2v_home.home, v2v_config.settings, v2v_config.palette_obj
    yield from run_batch(context, home, "palette_raster",
                         lambda key: run_vector_svg(home, key, settings, vectorizer.get(v2v_config), palette))
