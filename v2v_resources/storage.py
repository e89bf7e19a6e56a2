"""The v2v home folder and atomic file writes.

One home (`V2V_HOME`, default `./.v2v`) holds `inbox/`, `storage/<asset>/<partition>/…`, `quarantine/`,
`cache/` and the Dagster instance `dagster_home/`. Every file is written to a temp file in the target folder
and renamed over the target, so a crash never leaves a partial output under its final name.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

TMP_PREFIX = ".v2v-tmp-"


def default_home() -> Path:
    return Path(os.environ.get("V2V_HOME", ".v2v")).resolve()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success fsync and rename it over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: Path, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: Path, obj: Any) -> Path:
    return write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=True, default=str))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (photos in the inbox and multi-GB model weights alike)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def remove_orphan_temps(root: Path) -> int:
    """Delete temp files left by a killed writer; returns how many were removed."""
    n = 0
    for p in Path(root).rglob(f"{TMP_PREFIX}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


@dataclass(frozen=True)
class Home:
    """Paths inside one v2v home folder."""

    root: Path

    @classmethod
    def from_env(cls) -> "Home":
        return cls(default_home())

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def ensure(self) -> "Home":
        for p in (self.inbox, self.storage, self.quarantine, self.cache, self.dagster_home):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def asset_dir(self, asset: str, partition: str) -> Path:
        if "/" in partition or partition.startswith("."):
            raise ValueError(f"unsafe partition key {partition!r}")
        return self.storage / asset / partition

    def path(self, asset: str, partition: str, name: str) -> Path:
        return self.asset_dir(asset, partition) / name

    def read_json(self, asset: str, partition: str, name: str = "meta.json") -> dict:
        return json.loads(self.path(asset, partition, name).read_text())

    def write_json(self, asset: str, partition: str, obj: Any, name: str = "meta.json") -> Path:
        return write_json_atomic(self.path(asset, partition, name), obj)
