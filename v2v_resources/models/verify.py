"""Is each model on the volume, complete and the bytes the manifest (or lock) expects?

`ModelStore.require(name)` is the only way the engines get a model path: it checks the sha256 of every file
(cached by size and mtime) before first use and raises `ModelMissingError` naming the file, the expected path
and the `v2v models pull` command.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..errors import ModelMissingError
from .checksum import Sha256Cache, default_cache_file
from .manifest import Lock, Manifest, ModelEntry, load_manifest, models_root

SINGLE = "."          # the lock's key for a single-file model


class State(str, Enum):
    PRESENT = "present"          # every file there and matching its digest
    MISSING = "missing"
    CORRUPT = "corrupt"          # a file's sha256 differs from the manifest or lock
    UNVERIFIED = "unverified"    # there, but no digest is known yet: `v2v models pull` records one


@dataclass(frozen=True)
class ModelStatus:
    name: str
    state: State
    path: Path
    detail: str = ""
    bad_file: Path | None = None            # the first missing/corrupt/unverified file
    files: dict[str, str] = field(default_factory=dict)   # relative file -> sha256 actually found

    @property
    def ok(self) -> bool:
        return self.state is State.PRESENT


def pull_command(name: str) -> str:
    return f"v2v models pull {name}"


class ModelStore:
    """The model volume seen through the manifest: paths, states, and verified access."""

    def __init__(self, root: str | Path | None = None, manifest: Manifest | str | Path | None = None,
                 cache_file: Path | None | bool = True):
        self.root = models_root(root)
        self.manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        self.cache = Sha256Cache(default_cache_file(self.root) if cache_file is True else cache_file or None)
        self._verified: dict[str, ModelStatus] = {}

    @property
    def lock(self) -> Lock:
        return Lock(self.root)       # re-read: `pull` in another process may have recorded digests

    def path(self, name: str) -> Path:
        return self.root / self.manifest.entry(name).path

    def expected(self, name: str) -> dict[str, str | None]:
        """Relative file -> expected sha256 (None when unknown); the manifest wins over the lock."""
        entry = self.manifest.entry(name)
        locked = self.lock.files(name)
        if not entry.is_folder:
            return {SINGLE: entry.sha256 or locked.get(SINGLE)}
        rels = dict.fromkeys(list(entry.files) + list(locked))
        return {r: entry.files.get(r) or locked.get(r) for r in rels}

    def status(self, name: str, *, refresh: bool = False) -> ModelStatus:
        if not refresh and name in self._verified:
            return self._verified[name]
        st = self._check(name, self.manifest.entry(name))
        if st.ok:
            self._verified[name] = st
        return st

    def _check(self, name: str, entry: ModelEntry) -> ModelStatus:
        base = self.path(name)
        if not base.exists():
            return ModelStatus(name, State.MISSING, base, "nothing there", base)
        if entry.is_folder and not base.is_dir():
            return ModelStatus(name, State.CORRUPT, base, f"{base} should be a folder", base)
        expected = self.expected(name)
        if entry.is_folder and not expected:
            return ModelStatus(name, State.UNVERIFIED, base, "no files or digests known for this folder", base)
        found: dict[str, str] = {}
        unverified: Path | None = None
        for rel, want in expected.items():
            f = base if rel == SINGLE else base / rel
            if not f.is_file():
                return ModelStatus(name, State.MISSING, base, f"{f} is missing", f)
            got = self.cache.digest(f)
            found[rel] = got
            if want is None:
                unverified = unverified or f
            elif got != want:
                return ModelStatus(name, State.CORRUPT, base,
                                   f"{f}: sha256 {got[:12]}… but expected {want[:12]}…", f)
        if unverified is not None:
            return ModelStatus(name, State.UNVERIFIED, base, f"{unverified} has no known sha256", unverified,
                               found)
        return ModelStatus(name, State.PRESENT, base, f"{len(found)} file(s) verified", None, found)

    def verify_all(self, names: list[str] | None = None) -> list[ModelStatus]:
        return [self.status(n, refresh=True) for n in (names or list(self.manifest.models))]

    def require(self, name: str) -> Path:
        """The verified path of `name`, or a `ModelMissingError` that says what to run."""
        st = self.status(name)
        if st.ok:
            return st.path
        entry = self.manifest.entry(name)
        fix = (f"run `{pull_command(name)}`" if entry.source else
               f"put the file at {st.path} (you supply it), then run `{pull_command(name)}` to record its sha256")
        if st.state is State.CORRUPT:
            fix = f"delete it and run `{pull_command(name)}`" if entry.source else fix
        raise ModelMissingError(f"model {name!r} is {st.state.value}: {st.detail}; expected at {st.path}",
                                file=str(st.bad_file or st.path), phase=entry.phase, fix=fix)
