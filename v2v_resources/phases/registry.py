"""The ordered set of phases: what the Dagster layer, the CLI chain, the GPU host and the nightly plan walk."""
from __future__ import annotations

from typing import Iterator

from .base import Phase


class Registry:
    def __init__(self, phases: tuple[Phase, ...] | list[Phase] = ()):
        self._phases: dict[str, Phase] = {}
        for p in phases:
            self.register(p)

    def register(self, phase: Phase) -> Phase:
        """Add a phase after the ones it depends on; its upstream must already be registered."""
        if phase.name in self._phases:
            raise ValueError(f"phase {phase.name!r} is registered twice")
        if phase.upstream is not None and phase.upstream not in self._phases:
            raise ValueError(f"phase {phase.name!r}: upstream {phase.upstream!r} is not registered before it")
        self._phases[phase.name] = phase
        return phase

    def extended(self, *phases: Phase) -> "Registry":
        """A new registry with these phases added (the original is left as it was)."""
        return Registry([*self._phases.values(), *phases])

    def __getitem__(self, name: str) -> Phase:
        try:
            return self._phases[name]
        except KeyError:
            raise KeyError(f"no phase named {name!r}; known: {', '.join(self._phases)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._phases

    def __iter__(self) -> Iterator[Phase]:
        return iter(self._phases.values())

    def __len__(self) -> int:
        return len(self._phases)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._phases)

    @property
    def last(self) -> Phase:
        return list(self._phases.values())[-1]
