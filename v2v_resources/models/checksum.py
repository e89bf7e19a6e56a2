"""sha256 of model files, cached by (path, size, mtime) so re-verifying multi-GB weights is cheap.

The cache is a JSON file (default `<V2V_MODELS>/.sha256-cache.json`). A changed file changes its size or
mtime and is hashed again; a cache that cannot be written (read-only model volume) only costs speed.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from ..storage import sha256_file, write_json_atomic

log = logging.getLogger(__name__)


class Sha256Cache:
    """`digest(path)` returns the file's sha256, hashing only when (size, mtime) changed since last time."""

    def __init__(self, cache_file: Path | None):
        self.cache_file = Path(cache_file) if cache_file else None
        self._lock = threading.Lock()
        self._entries: dict[str, list] = {}
        if self.cache_file and self.cache_file.is_file():
            try:
                self._entries = json.loads(self.cache_file.read_text())
            except (OSError, ValueError):
                self._entries = {}     # a damaged cache is only a slower verify
        self.hashed = 0                # files actually read this session (tests and doctor report it)

    def digest(self, path: str | Path) -> str:
        path = Path(path).resolve()
        st = path.stat()
        key = str(path)
        with self._lock:
            hit = self._entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = sha256_file(path)
        with self._lock:
            self._entries[key] = [st.st_size, st.st_mtime_ns, digest]
            self.hashed += 1
        self._save()
        return digest

    def _save(self) -> None:
        if not self.cache_file:
            return
        try:
            with self._lock:
                snapshot = dict(self._entries)
            write_json_atomic(self.cache_file, snapshot)
        except OSError as e:
            log.debug("sha256 cache not written (%s): %s", self.cache_file, e)
            self.cache_file = None


def default_cache_file(models_root: Path) -> Path | None:
    root = Path(models_root)
    return root / ".sha256-cache.json" if os.access(root, os.W_OK) else None
