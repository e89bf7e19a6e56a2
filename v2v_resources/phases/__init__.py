"""The phases of the chain, each declared once in its own module and registered here in chain order.

Adding a phase: write a module with its `run`, checks and engine factory and a `PHASE = Phase(...)`, then
register it below (or, for an extension, `REGISTRY.extended(MY_PHASE)` and build definitions from that).
"""
from . import clean_plate, illustration, palette_raster, photo, vector_svg
from .base import CheckOutcome, Phase, PhaseOutcome, is_done, record_failure, thumbnail_markdown
from .engines import Engines
from .registry import Registry

REGISTRY = Registry([photo.PHASE, clean_plate.PHASE, illustration.PHASE, palette_raster.PHASE, vector_svg.PHASE])

__all__ = ["REGISTRY", "CheckOutcome", "Engines", "Phase", "PhaseOutcome", "Registry", "is_done",
           "record_failure", "thumbnail_markdown"]
