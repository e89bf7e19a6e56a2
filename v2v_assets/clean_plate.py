"""Phase I: the vehicle's mask, with logos, badges, plates, mirrors and text erased."""
import dagster as dg

from v2v_resources.phases import run_clean_plate

from .batch import run_batch
from .phase_asset import phase_asset
from .photo import photo
from .resources import SanitizerEngine, V2VConfig, V2VHome


@phase_asset("clean_plate", deps=[photo], pool="gpu",
             description="Phase I: vehicle mask + parts erased (GroundingDINO + SAM + LaMa, or GrabCut lite).")
def clean_plate(context: dg.AssetExecutionContext, v2v_home: V2VHome, v2v_config: V2VConfig,
                sanitizer: SanitizerEngine):
    home, settings = v2v_home.home, v2v_config.settings
    yield from run_batch(context, home, "photo",
                         lambda key: run_clean_plate(home, key, settings, sanitizer.get(v2v_config)))
