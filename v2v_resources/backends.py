"""Choose each phase's engine from its configured backend (auto | ml | lite).

`auto` uses the ml engine when every required model of the phase verifies (manifest + lock sha256) and the
lite engine otherwise, logging the reason once per process; `ml` with a missing or corrupt model raises
`ModelMissingError` naming the file, its expected path and the `v2v models pull` command. Each engine gets
`.backend` ("ml" | "lite") and `.backend_reason` for metadata.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING, Callable, Union

from .errors import ConfigError
from .models.manifest import Manifest
from .models.verify import ModelStore, pull_command
from .settings import Settings

if TYPE_CHECKING:
    from .vram import VramManager

# A VRAM manager, or a function giving the shared one (so the lite path never builds one, nor imports torch).
VramSource = Union["VramManager", Callable[[], "VramManager"], None]

log = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class BackendChoice:
    phase: str
    backend: str        # "ml" | "lite"
    reason: str


def choose_backend(settings: Settings, phase: str, store: ModelStore) -> BackendChoice:
    setting = settings.backend(phase)
    if setting == "lite":
        return BackendChoice(phase, "lite", "configured: lite")
    needed = store.manifest.for_phase(phase, required=True)
    bad = [st for st in (store.status(n) for n in needed) if not st.ok]
    if setting == "ml":
        for st in bad:
            store.require(st.name)          # raises with the file, expected path and pull command
        return BackendChoice(phase, "ml", "configured: ml, models verified")
    if not bad:
        choice = BackendChoice(phase, "ml", "auto: models verified")
    else:
        states = ", ".join(f"{st.name} {st.state.value}" for st in bad)
        choice = BackendChoice(phase, "lite", f"auto: {states} under {store.root}; using lite "
                                              f"(`{pull_command(' '.join(st.name for st in bad))}` enables ml)")
    if (phase, choice.reason) not in _logged:
        _logged.add((phase, choice.reason))
        log.log(logging.WARNING if bad else logging.INFO, "%s backend: %s", phase, choice.reason)
    return choice


def _vram(vram: VramSource, settings: Settings) -> "VramManager":
    if callable(vram):
        return vram()
    if vram is None:
        from .vram import VramManager

        return VramManager(settings.hardware)
    return vram


def _tag(engine, choice: BackendChoice):
    engine.backend, engine.backend_reason = choice.backend, choice.reason
    return engine


def make_sanitizer(settings: Settings, models_root: Path | None = None, *, manifest: Manifest | Path | None = None,
                   vram: VramSource = None):
    store = ModelStore(models_root, manifest)
    choice = choose_backend(settings, "phase1", store)
    if choice.backend == "ml":
        from .sanitize.ml import MlSanitizer

        return _tag(MlSanitizer(settings.phase1, store, _vram(vram, settings)), choice)
    from .sanitize.lite import GrabCutSanitizer

    return _tag(GrabCutSanitizer(settings.phase1), choice)


def make_steerer(settings: Settings, sanitizer, models_root: Path | None = None, *,
                 manifest: Manifest | Path | None = None, vram: VramSource = None,
                 trained_loras: Path | None = None):
    """`sanitizer` gives the silhouettes for the IoU check; an ml one also lends its VRAM manager."""
    store = ModelStore(models_root, manifest)
    choice = choose_backend(settings, "phase2", store)
    if choice.backend == "ml":
        from .steer.ml import MlSteerer

        vram = getattr(sanitizer, "vram", None) or _vram(vram, settings)
        version, lora = settings.training.use_version, None
        if version:     # a style LoRA trained here (the style_lora asset), checked against its recorded sha256
            from .train import trained_lora

            if trained_loras is None:
                raise ConfigError(f"training.use_version is {version!r} but no home to find it in",
                                  phase="phase2", fix="build the engines with the v2v home")
            lora = trained_lora(trained_loras / version)
        return _tag(MlSteerer(settings.phase2, sanitizer, store, vram, lora), choice)
    from .steer.lite import FlatteningSteerer

    return _tag(FlatteningSteerer(settings.phase2, sanitizer), choice)


def make_upscaler(settings: Settings, models_root: Path | None = None, *, manifest: Manifest | Path | None = None,
                  vram: VramSource = None):
    store = ModelStore(models_root, manifest)
    choice = choose_backend(settings, "phase3", store)
    if choice.backend == "ml":
        from .chroma.esrgan import EsrganUpscaler

        vram = _vram(vram, settings)
        p3 = settings.phase3
        return _tag(EsrganUpscaler(store.require("esrgan"), vram.device, vram.dtype, p3.esrgan_tile,
                                   p3.esrgan_tile_pad, vram=vram), choice)
    from .chroma.upscale import LanczosUpscaler

    return _tag(LanczosUpscaler(), choice)
