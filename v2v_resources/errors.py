"""Errors that name the file, the phase and the fix."""
from __future__ import annotations


class V2VError(Exception):
    """Base error. `retryable` tells orchestration whether trying again can help."""

    retryable = False

    def __init__(self, reason: str, *, file: str | None = None, phase: str | None = None,
                 fix: str | None = None):
        self.reason, self.file, self.phase, self.fix = reason, file, phase, fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.phase:
            parts.append(f"[{self.phase}]")
        parts.append(self.reason)
        line = " ".join(parts)
        return f"{line} (fix: {self.fix})" if self.fix else line


class ConfigError(V2VError):
    """A configuration file or value is invalid."""


class BadInputError(V2VError):
    """The input itself is unusable; retrying cannot help."""


class QualityError(V2VError):
    """A phase produced output that fails its quality bound."""


class EngineError(V2VError):
    """An engine failed on a valid input."""


class TransientError(V2VError):
    """A failure worth retrying after a wait (CUDA out of memory, I/O hiccups)."""

    retryable = True


class ModelMissingError(V2VError):
    """A model file is missing or fails its checksum."""
