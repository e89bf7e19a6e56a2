"""What a phase is, and what running it on one image gives.

A `Phase` is declared once (in its own module under `phases/`) and registered; the Dagster assets, their
checks and code versions, the CLI chain, the GPU host and the nightly plan are all derived from the registry.
A phase's `run(home, key, settings, engine)` reads its upstream's files under `Home.storage/<asset>/<key>/`,
runs the engine, evaluates the checks and writes its outputs atomically, `meta.json` last, so the presence of
`meta.json` means the phase finished for that key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import imaging
from ..errors import QualityError, V2VError
from ..settings import Settings
from ..storage import Home

if TYPE_CHECKING:
    from .engines import Engines


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)
    fix: str = ""                      # what to change when it fails


DEFAULT_FIX = "inspect the image; adjust the thresholds in configs/default.yaml or the run config if too strict"


@dataclass
class PhaseOutcome:
    key: str
    asset: str
    backend: str
    seconds: float
    files: dict[str, str]
    metadata: dict                          # numbers and short strings for the UI / plots
    checks: list[CheckOutcome]
    thumbnail: bytes | None = None          # small PNG for the UI
    extra: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)   # what produced it: engine version, backend, params digest
    error: V2VError | None = None           # set when a blocking check failed for a known input error

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.blocking and not c.passed]

    def raise_if_blocked(self) -> None:
        if self.error is not None:
            raise self.error
        bad = self.failed_checks
        if bad:
            raise QualityError("; ".join(f"{c.name}: {c.description}" for c in bad), file=self.key,
                               phase=self.asset, fix="; ".join(dict.fromkeys(c.fix or DEFAULT_FIX for c in bad)))

    def to_dict(self) -> dict:
        """JSON-safe form (the GPU host answers with it)."""
        d = {k: getattr(self, k) for k in ("key", "asset", "backend", "seconds", "files", "metadata", "extra",
                                              "recipe")}
        d["checks"] = [asdict(c) for c in self.checks]
        d["thumbnail"] = base64.b64encode(self.thumbnail).decode() if self.thumbnail else None
        if self.error is not None:
            e = self.error
            d["error"] = {"type": type(e).__name__, "reason": e.reason, "file": e.file, "phase": e.phase,
                          "fix": e.fix}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PhaseOutcome":
        from .. import errors

        err = None
        if d.get("error"):
            e = d["error"]
            kind = getattr(errors, e["type"], None)
            kind = kind if isinstance(kind, type) and issubclass(kind, V2VError) else V2VError
            err = kind(e["reason"], file=e.get("file"), phase=e.get("phase"), fix=e.get("fix"))
        return cls(key=d["key"], asset=d["asset"], backend=d["backend"], seconds=d["seconds"], files=d["files"],
                   metadata=d["metadata"], checks=[CheckOutcome(**c) for c in d["checks"]],
                   thumbnail=base64.b64decode(d["thumbnail"]) if d.get("thumbnail") else None,
                   extra=d.get("extra") or {}, recipe=d.get("recipe") or {}, error=err)


Runner = Callable[[Home, str, Settings, Any], PhaseOutcome]


@dataclass(frozen=True)
class Phase:
    """One step of the chain, declared once."""

    name: str                                  # the asset key and the storage folder
    description: str
    upstream: str | None                       # the phase whose files this one reads
    run: Runner
    checks: dict[str, str]                     # check name → what it asserts
    sections: tuple[str, ...]                  # settings sections whose output-affecting keys shape the output
    engine: Callable[["Engines"], Any] | None = None   # builds the engine; None: the phase needs none
    gpu: bool = False                          # runs on the GPU model host when one is configured
    backend_section: str | None = None         # the settings section whose `backend` (auto|ml|lite) it obeys
    version: str = "1"                         # bump when the algorithm's output changes

    def params_digest(self, settings: Settings) -> str:
        """Digest of the output-affecting settings this phase reads (operational knobs left out)."""
        payload = json.dumps(settings.fingerprint(*self.sections), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def recipe(self, settings: Settings, backend: str) -> dict:
        return {"engine_version": self.version, "params": self.params_digest(settings), "backend": backend}


# ---------------------------------------------------------------------------------------------- helpers
def finish(home: Home, outcome: PhaseOutcome, phase: Phase, settings: Settings) -> PhaseOutcome:
    """Record what produced the outcome and write `meta.json` (last), or leave the key failed."""
    outcome.recipe = phase.recipe(settings, outcome.backend)
    if outcome.error is None and not outcome.failed_checks:
        meta = {"key": outcome.key, "asset": outcome.asset, "backend": outcome.backend,
                "seconds": outcome.seconds, "files": outcome.files, "metadata": outcome.metadata,
                "checks": [asdict(c) for c in outcome.checks], "recipe": outcome.recipe, **outcome.extra}
        home.write_json(outcome.asset, outcome.key, meta)
        home.path(outcome.asset, outcome.key, "failure.json").unlink(missing_ok=True)
    return outcome


def record_failure(home: Home, asset: str, key: str, error: Exception, run_id: str = "") -> dict:
    """Write `failure.json` for a key (and drop a stale meta.json so it reads as not done)."""
    info = {"key": key, "asset": asset, "error": type(error).__name__,
            "reason": getattr(error, "reason", str(error)), "fix": getattr(error, "fix", None),
            "retryable": bool(getattr(error, "retryable", False)), "run_id": run_id,
            "time": time.time()}
    home.path(asset, key, "meta.json").unlink(missing_ok=True)
    home.write_json(asset, key, info, name="failure.json")
    return info


def is_done(home: Home, asset: str, key: str) -> bool:
    return home.path(asset, key, "meta.json").is_file()


def thumb(img: np.ndarray) -> bytes:
    return imaging.thumbnail_png(img, 128, 6000)


def thumbnail_markdown(png: bytes) -> str:
    return f"![thumbnail](data:image/png;base64,{base64.b64encode(png).decode()})"


def numbers(d: dict) -> dict:
    """Keep scalar numbers and short strings (what the UI can plot or show)."""
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v) if isinstance(v, (float, np.floating)) else int(v)
        elif isinstance(v, str) and len(v) <= 200:
            out[k] = v
    return out
