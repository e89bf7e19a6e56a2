import dagster as dg

from .versions import definition_settings

MAX_RUNTIME_TAG = "dagster/max_runtime"

# The whole chain for a range of images; checks run inline with their assets. Run monitoring stops a run
# that outlives its max runtime.
process_images = dg.define_asset_job(
    "process_images",
    selection=dg.AssetSelection.groups("v2v"),
    description="photo → clean_plate → illustration → palette_raster → vector_svg for a range of images",
    tags={MAX_RUNTIME_TAG: str(definition_settings().orchestration.max_runtime_s)},
)
