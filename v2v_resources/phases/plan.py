"""Which images need redoing: compare what produced each phase's output with what the settings ask now.

A phase's output is stale when its recorded recipe differs from the current one in engine version, in the
digest of its output-affecting settings, or in the backend `auto` would now choose (weights installed since,
or removed). Operational knobs (batch size, VRAM budget, compile, …) are not in the digest, so tuning them
never makes an image stale.
"""
from __future__ import annotations

from typing import Callable

from ..backends import choose_backend
from ..models.verify import ModelStore
from ..settings import Settings
from .base import Phase
from .registry import Registry


def expected_recipe(phase: Phase, settings: Settings, store: ModelStore) -> dict:
    recipe = phase.recipe(settings, backend="")
    if phase.backend_section:
        recipe["backend"] = choose_backend(settings, phase.backend_section, store).backend
    else:
        recipe.pop("backend")
    return recipe


def is_stale(recorded: dict | None, expected: dict) -> bool:
    return recorded is None or any(recorded.get(k) != v for k, v in expected.items())


def stale_keys(registry: Registry, settings_for: Callable[[str], Settings], store: ModelStore, keys: list[str],
               recorded: dict[str, dict[str, dict]]) -> list[str]:
    """`recorded[phase][key]` is the recipe of the key's latest materialisation, `settings_for(key)` the settings
    the key would be processed with now (its own options included); keys keep their order."""
    expected: dict[str, dict[str, dict]] = {}     # settings (as JSON) → phase → recipe

    def stale(key: str) -> bool:
        settings = settings_for(key)
        want = expected.setdefault(settings.model_dump_json(),
                                   {p.name: expected_recipe(p, settings, store) for p in registry})
        return any(is_stale(recorded.get(p.name, {}).get(key), want[p.name]) for p in registry)

    return [k for k in keys if stale(k)]
