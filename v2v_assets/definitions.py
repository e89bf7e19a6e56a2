"""The v2v code location. Importing it touches no GPU and loads no model (the code server, the daemon and
every sensor tick import it)."""
import dagster as dg

from .clean_plate import clean_plate
from .illustration import illustration
from .jobs import process_images
from .palette_raster import palette_raster
from .photo import photo
from .resources import ChromaEngine, SanitizerEngine, SteerEngine, V2VConfig, V2VHome, VectorEngine
from .schedules import nightly_backfill
from .sensors import inbox_sensor
from .vector_svg import vector_svg

PHASE_ASSETS = [photo, clean_plate, illustration, palette_raster, vector_svg]


def build_resources(home_root: str = "", **config) -> dict:
    home, cfg = V2VHome(root=home_root), V2VConfig(**config)
    return {
        "v2v_home": home,
        "v2v_config": cfg,
        "sanitizer": SanitizerEngine(v2v_home=home),
        "steerer": SteerEngine(v2v_home=home),
        "chroma": ChromaEngine(v2v_home=home),
        "vectorizer": VectorEngine(v2v_home=home),
    }


defs = dg.Definitions(
    assets=PHASE_ASSETS,
    jobs=[process_images],
    schedules=[nightly_backfill],
    sensors=[
        inbox_sensor,
        # Dagster's automation sensor starts stopped by default; ours runs, so partial batches continue.
        dg.AutomationConditionSensorDefinition(
            "v2v_automation", target=dg.AssetSelection.groups("v2v"),
            default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30),
    ],
    resources=build_resources(),
)


def process_images_job():
    """The resolved batch job, for `dg.reconstructable` (the demo and tests launch it on an instance)."""
    return defs.resolve_job_def("process_images")
