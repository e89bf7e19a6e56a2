"""Choose each phase's engine from its configured backend (auto | ml | lite)."""
from __future__ import annotations

from pathlib import Path

from .settings import Settings


def make_sanitizer(settings: Settings, models_root: Path | None = None):
    from .sanitize.lite import GrabCutSanitizer

    return GrabCutSanitizer(settings.phase1)


def make_steerer(settings: Settings, sanitizer, models_root: Path | None = None):
    from .steer.lite import FlatteningSteerer

    return FlatteningSteerer(settings.phase2, sanitizer)


def make_upscaler(settings: Settings, models_root: Path | None = None):
    from .chroma.upscale import LanczosUpscaler

    return LanczosUpscaler()
