"""Every call from the host into the phase functions, in one place (their names and signatures are the
phase module's; the host knows only `PHASES` and `run_phase`)."""
from __future__ import annotations

import base64
import dataclasses

from .. import phases
from ..storage import Home

PHASES = ("clean_plate", "illustration", "palette_raster")


def run_phase(phase: str, home: Home, key: str, settings, engines) -> dict:
    """Run one GPU phase for one key with the host's resident `engines` (a `ResidentEngines.view`);
    returns the phase outcome as a JSON-able dict (`outcome_from_dict` turns it back)."""
    if phase == "clean_plate":
        out = phases.run_clean_plate(home, key, settings, engines.sanitizer)
    elif phase == "illustration":
        out = phases.run_illustration(home, key, settings, engines.steerer)
    elif phase == "palette_raster":
        out = phases.run_palette_raster(home, key, settings, engines.raster, engines.palette)
    else:
        raise KeyError(phase)
    return outcome_to_dict(out)


def outcome_to_dict(out) -> dict:
    d = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    d["checks"] = [dataclasses.asdict(c) for c in out.checks]
    d["thumbnail"] = base64.b64encode(out.thumbnail).decode() if out.thumbnail else None
    return d


def outcome_from_dict(d: dict):
    from ..quality import CheckOutcome

    d = dict(d)
    d["checks"] = [CheckOutcome(**c) for c in d["checks"]]
    d["thumbnail"] = base64.b64decode(d["thumbnail"]) if d.get("thumbnail") else None
    return phases.PhaseOutcome(**d)
