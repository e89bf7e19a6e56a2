import dagster as dg

from v2v_resources.settings import Settings

from .assets import GROUP

JOB_NAME = "process_images"
MAX_RUNTIME_TAG = "dagster/max_runtime"


def max_runtime_tags(settings: Settings) -> dict[str, str]:
    """Run monitoring stops a run that outlives its max runtime."""
    return {MAX_RUNTIME_TAG: str(settings.orchestration.max_runtime_s)}


def batch_job(settings: Settings):
    """The whole chain for a range of images; checks run inline with their assets. The sensor and the schedule
    tag each run with the max runtime of the settings they evaluate with; this default covers UI launches."""
    return dg.define_asset_job(
        JOB_NAME, selection=dg.AssetSelection.groups(GROUP),
        description="photo → clean_plate → illustration → palette_raster → vector_svg for a range of images",
        tags=max_runtime_tags(settings))
