"""Intake: decode each dropped photo safely into the working RGB image (+ alpha mask)."""
import dagster as dg

from v2v_resources.phases import run_photo

from .batch import run_batch
from .phase_asset import phase_asset
from .resources import V2VConfig, V2VHome


@phase_asset("photo", automation=False,
             description="The dropped photo, decoded safely (bomb limit, EXIF, CMYK/16-bit/palette/alpha → RGB).")
def photo(context: dg.AssetExecutionContext, v2v_home: V2VHome, v2v_config: V2VConfig):
    home, settings = v2v_home.home, v2v_config.settings
    yield from run_batch(context, home, None, lambda key: run_photo(home, key, settings))
