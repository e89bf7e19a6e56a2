"""A few recent answers of an engine, kept by the content of what they were asked with: engines whose calls
repeat on the same image (SAM's embedding for an image's vehicle and then its part boxes; the lite cut asked by
phase I's erase check and again by the phase's own check)."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np


class Recent:
    """The `size` most recently used answers, by key; safe to share between threads."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts) -> bytes:
        """A digest of arrays (shape, dtype and bytes) and of anything else by its repr."""
        h = hashlib.blake2b(digest_size=16)
        for p in parts:
            if isinstance(p, np.ndarray):
                h.update(repr((p.shape, p.dtype.str)).encode())
                h.update(np.ascontiguousarray(p).data)
            else:
                h.update(repr(p).encode())
        return h.digest()

    def get(self, key: bytes) -> Any:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: bytes, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
