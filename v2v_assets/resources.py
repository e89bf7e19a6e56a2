"""Dagster faces of the engines: small ConfigurableResources that build each engine lazily, once per
step process, so a batch loads its models once and only the step that needs a model loads it."""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from enum import Enum
from typing import Optional

import dagster as dg
from pydantic import PrivateAttr, field_validator

from v2v_resources.palette import Palette
from v2v_resources.settings import Settings, load_settings
from v2v_resources.storage import Home, default_home


class V2VHome(dg.ConfigurableResource):
    """Where inbox, storage, quarantine and caches live."""

    root: str = ""

    @property
    def home(self) -> Home:
        return Home(Path(self.root).resolve() if self.root else default_home()).ensure()


class Preset(str, Enum):
    conservative = "conservative"
    balanced = "balanced"
    aggressive = "aggressive"


class Backend(str, Enum):
    auto = "auto"
    ml = "ml"
    lite = "lite"


class V2VConfig(dg.ConfigurableResource):
    """The run's settings: configs/default.yaml, then a preset, then these typed overrides.

    Launch a run with `resources: {v2v_config: {config: {palette: automotive15, seed: 7}}}`; a bad value is
    refused before the run starts, naming the field."""

    config_path: Optional[str] = None
    preset: Optional[Preset] = None
    palette: Optional[str] = None                  # a palette name or "RRGGBB,RRGGBB,…"
    seed: Optional[int] = None
    steps: Optional[int] = None
    guidance: Optional[float] = None
    depth_weight: Optional[float] = None
    canny_weight: Optional[float] = None
    allow_skip_on_failure: Optional[bool] = None
    backend_phase1: Optional[Backend] = None
    backend_phase2: Optional[Backend] = None
    backend_phase3: Optional[Backend] = None
    overrides_json: Optional[str] = None           # any other keys, as JSON of the default.yaml layout

    @field_validator("palette")
    @classmethod
    def _palette(cls, v):
        if v is not None:
            Palette.parse(v)  # raises naming the bad entry
        return v

    def _overrides(self) -> dict:
        o: dict = json.loads(self.overrides_json) if self.overrides_json else {}
        p2: dict = {}
        if self.seed is not None:
            p2.setdefault("sdxl", {})["seed"] = self.seed
        if self.steps is not None:
            p2.setdefault("sdxl", {})["steps"] = self.steps
        if self.guidance is not None:
            p2.setdefault("sdxl", {})["guidance_scale"] = self.guidance
        if self.depth_weight is not None:
            p2.setdefault("controlnet", {})["depth_weight"] = self.depth_weight
        if self.canny_weight is not None:
            p2.setdefault("controlnet", {})["canny_weight"] = self.canny_weight
        if self.allow_skip_on_failure is not None:
            p2.setdefault("iou_retry", {})["allow_skip_on_failure"] = self.allow_skip_on_failure
        for phase, b in (("phase1", self.backend_phase1), ("phase2", self.backend_phase2),
                         ("phase3", self.backend_phase3)):
            if b is not None:
                o.setdefault(phase, {})["backend"] = Backend(b).value
        if p2:
            from v2v_resources.settings import deep_merge
            o = deep_merge(o, {"phase2": p2})
        if self.palette is not None:
            pal = Palette.parse(self.palette)
            o["palette"] = {"name": pal.name, "colors": list(pal.colors)}
        return o

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path, preset=self.preset and Preset(self.preset).value,
                             overrides=self._overrides())

    @cached_property
    def palette_obj(self) -> Palette:
        return Palette.from_choice(self.settings.palette)


class _LazyEngine(dg.ConfigurableResource):
    """Builds its engine on first use and keeps it for the rest of the step (= the batch).

    The settings come from the asset's own `v2v_config` at that first use, so launch-time run config (the
    launchpad, a backfill, a sensor's run request) reaches the engines exactly as it reaches the assets."""

    v2v_home: V2VHome
    _engine = PrivateAttr(default=None)

    def build(self, cfg: V2VConfig):  # pragma: no cover - overridden
        raise NotImplementedError

    def get(self, cfg: V2VConfig):
        if self._engine is None:
            self._engine = self.build(cfg)
        return self._engine

    def teardown_after_execution(self, context) -> None:
        release = getattr(self._engine, "release", None)
        if release:
            release()
        self._engine = None


class SanitizerEngine(_LazyEngine):
    def build(self, cfg: V2VConfig):
        from v2v_resources.backends import make_sanitizer

        return make_sanitizer(cfg.settings)


class SteerEngine(_LazyEngine):
    def build(self, cfg: V2VConfig):
        from v2v_resources.backends import make_sanitizer, make_steerer

        return make_steerer(cfg.settings, make_sanitizer(cfg.settings))


class ChromaEngine(_LazyEngine):
    def build(self, cfg: V2VConfig):
        from v2v_resources.backends import make_upscaler
        from v2v_resources.chroma.raster import PaletteRasterEngine

        return PaletteRasterEngine(cfg.settings.phase3, cfg.palette_obj, make_upscaler(cfg.settings),
                                   self.v2v_home.home.cache)


class VectorEngine(_LazyEngine):
    def build(self, cfg: V2VConfig):
        from v2v_resources.vector.engine import Vectorizer

        return Vectorizer(cfg.settings.phase4, cfg.palette_obj, self.v2v_home.home.cache)
