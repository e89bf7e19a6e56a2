"""The engines of one settings object, built on first use and shared.

One `Engines` serves a Dagster step (one batch), `v2v process` or a GPU host: every phase's engine is built
by its registered factory the first time that phase runs, so a bad input fails before any model loads and a
phase that never runs loads nothing. The ml engines share one VRAM manager; it (and torch) is imported only
when an ml engine is built, so the lite path never imports torch.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..palette import Palette
from ..settings import Settings

if TYPE_CHECKING:
    from ..models.verify import ModelStore
    from ..storage import Home
    from ..vram import VramManager
    from .base import Phase


class Engines:
    def __init__(self, settings: Settings, cache_dir: Path, *, models_root: Path | None = None,
                 manifest: Path | None = None, home: "Home | None" = None):
        """`home`: where engines find what the pipeline made itself (a style LoRA trained by `style_lora`)."""
        self.settings, self.cache_dir, self.home = settings, Path(cache_dir), home
        self.models_root, self.manifest = models_root, manifest
        self._built: dict[str, Any] = {}
        if settings.hardware.cpu_threads:
            import cv2

            cv2.setNumThreads(settings.hardware.cpu_threads)

    @cached_property
    def palette(self) -> Palette:
        return Palette.from_choice(self.settings.palette)

    @cached_property
    def store(self) -> "ModelStore":
        from ..models.verify import ModelStore

        return ModelStore(self.models_root, self.manifest)

    @cached_property
    def vram(self) -> "VramManager":
        """Built by the first ml engine; every later one shares it (one budget for all resident models)."""
        from ..vram import VramManager

        return VramManager(self.settings.hardware)

    def get(self, phase: "Phase | str") -> Any:
        """The engine of `phase` (a registered name, or a Phase object, e.g. one not in the default registry)."""
        if isinstance(phase, str):
            from . import REGISTRY

            phase = REGISTRY[phase]
        if phase.name not in self._built:
            self._built[phase.name] = phase.engine(self) if phase.engine else None
        return self._built[phase.name]

    def close(self) -> None:
        """Free the models (end of a step); the object can be dropped afterwards."""
        if "vram" in self.__dict__:
            self.vram.close()
        self._built.clear()
