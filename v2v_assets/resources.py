"""Dagster faces of the engines: the home, the run's settings, and who runs a phase on one image.

`engines` runs phases in the step's own process; `gpu_models` runs the GPU phases on the resident model
host(s) when `hosts` is set, else in-process exactly like `engines`. Engines are built on first use and kept
for the rest of the step (= the batch), from the run's own settings.
"""
from __future__ import annotations

import json
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

import dagster as dg
from pydantic import PrivateAttr, field_validator

from v2v_resources import intake
from v2v_resources.palette import Palette
from v2v_resources.phases import Engines, Phase, PhaseOutcome
from v2v_resources.settings import Settings, deep_merge, load_settings
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


# Typed run-config fields → their place in configs/default.yaml.
_FIELD_PATHS = {"seed": ("phase2", "sdxl", "seed"), "steps": ("phase2", "sdxl", "steps"),
                "guidance": ("phase2", "sdxl", "guidance_scale"),
                "depth_weight": ("phase2", "controlnet", "depth_weight"),
                "canny_weight": ("phase2", "controlnet", "canny_weight"),
                "allow_skip_on_failure": ("phase2", "iou_retry", "allow_skip_on_failure"),
                "backend_phase1": ("phase1", "backend"), "backend_phase2": ("phase2", "backend"),
                "backend_phase3": ("phase3", "backend")}


class V2VConfig(dg.ConfigurableResource):
    """The run's one settings object: configs/default.yaml (or `config_path`, else $V2V_CONFIG), then a preset,
    then these typed overrides.

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
    _per_options: dict = PrivateAttr(default_factory=dict)

    @field_validator("palette")
    @classmethod
    def _palette(cls, v):
        if v is not None:
            Palette.parse(v)  # raises naming the bad entry
        return v

    def overrides(self) -> dict:
        o: dict = json.loads(self.overrides_json) if self.overrides_json else {}
        for name, path in _FIELD_PATHS.items():
            value = getattr(self, name)
            if value is not None:
                for part in reversed(path):
                    value = {part: value.value if isinstance(value, Enum) else value}
                o = deep_merge(o, value)
        if self.palette is not None:
            pal = Palette.parse(self.palette)
            o["palette"] = {"name": pal.name, "colors": list(pal.colors)}
        return o

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_path, preset=self.preset and Preset(self.preset).value,
                             overrides=self.overrides())

    def with_options(self, options: dict) -> "V2VConfig":
        """This config with an image's own options (palette, preset, backends… as handed in with it) on top."""
        return V2VConfig(**{**{f: getattr(self, f) for f in type(self).model_fields}, **options}) if options else self

    def settings_for(self, home: Home, key: str) -> Settings:
        """The settings one image is processed with: the run's, then the options it was handed in with. Runs
        the inbox sensor starts carry those options already; follow-ups (automation, nightly, the UI) may
        mix images with different options, so every phase resolves them per image."""
        options = intake.stored_options(home, key)
        if not options:
            return self.settings
        cache = self._per_options
        tag = json.dumps(options, sort_keys=True)
        if tag not in cache:
            cache[tag] = self.with_options(options).settings
        return cache[tag]


PhaseCall = Callable[[Phase, str], PhaseOutcome]


class ModelEngines(dg.ConfigurableResource):
    """Runs phases in this process on engines built from each image's settings, once per step and settings
    (a batch started by the inbox sensor has one)."""

    v2v_home: V2VHome
    models_root: Optional[str] = None              # default: $V2V_MODELS, else /models
    _engines: dict = PrivateAttr(default_factory=dict)

    def engines(self, settings: Settings) -> Engines:
        tag = settings.model_dump_json()
        if tag not in self._engines:
            root = Path(self.models_root) if self.models_root else None
            home = self.v2v_home.home
            self._engines[tag] = Engines(settings, home.cache, models_root=root, home=home)
        return self._engines[tag]

    def caller(self, config: V2VConfig) -> tuple[PhaseCall, int]:
        """(run one phase on one key, how many keys may be in flight at once)."""
        home = self.v2v_home.home

        def call(phase: Phase, key: str) -> PhaseOutcome:
            settings = config.settings_for(home, key)
            return phase.run(home, key, settings, self.engines(settings).get(phase))

        return call, 1

    def teardown_after_execution(self, context) -> None:
        for engines in self._engines.values():
            engines.close()
        self._engines.clear()


class GpuModels(ModelEngines):
    """The GPU phases' models: the resident host(s) (`v2v host`, one per GPU) listed in `host.urls` of the run's
    settings (or in `hosts`, which wins); with none, in-process engines, as on a laptop or in tests. Requests
    carry the partition key, the home and the image's settings, never images; the step sends its keys
    concurrently so the host can batch them."""

    hosts: list[str] = []                          # e.g. ["http://127.0.0.1:8765"]; empty: settings.host.urls
    max_in_flight: int = 16                        # keys of one step sent at once over all hosts

    def caller(self, config: V2VConfig) -> tuple[PhaseCall, int]:
        urls = list(self.hosts) or config.settings.host.urls
        if not urls:
            return super().caller(config)
        from v2v_resources.host.client import HostClient

        client, home = HostClient.from_settings(urls, config.settings.host), self.v2v_home.home
        client.check_health()                      # at step start: fail early, with the hosts' own reasons

        def call(phase: Phase, key: str) -> PhaseOutcome:
            payload = config.settings_for(home, key).model_dump(mode="json")
            return PhaseOutcome.from_dict(client.run(phase.name, str(home.root), key, payload))

        return call, self.max_in_flight
