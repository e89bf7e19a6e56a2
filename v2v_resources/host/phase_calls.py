"""Every call from the host into the phase registry, in one place: which phases the host serves, and
running one of them for one key with a resident engine."""
from __future__ import annotations

from ..phases import REGISTRY
from ..storage import Home

PHASES = tuple(p.name for p in REGISTRY if p.gpu)     # clean_plate, illustration, palette_raster


def run_phase(phase: str, home: Home, key: str, settings, engine) -> dict:
    """The registered phase's `run` with the host's engine for it; the outcome as a JSON-safe dict
    (`PhaseOutcome.from_dict` turns it back on the caller's side)."""
    return REGISTRY[phase].run(home, key, settings, engine).to_dict()
