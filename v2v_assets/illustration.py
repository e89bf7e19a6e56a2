"""Phase II: a flat illustration with the vehicle's silhouette."""
import dagster as dg

from v2v_resources.phases import run_illustration

from .batch import run_batch
from .clean_plate import clean_plate
from .phase_asset import phase_asset
from .resources import SteerEngine, V2VConfig, V2VHome


@phase_asset("illustration", deps=[clean_plate], pool="gpu",
             description="Phase II: SDXL + ControlNet depth/canny + style LoRA (or edge-preserving flattening lite).")
def illustration(context: dg.AssetExecutionContext, v2v_home: V2VHome, v2v_config: V2VConfig,
                 steerer: SteerEngine):
    home, settings = v2v_home.home, v2v_config.settings
    yield from run_batch(context, home, "clean_plate",
                         lambda key: run_illustration(home, key, settings, steerer.get(v2v_config)))
