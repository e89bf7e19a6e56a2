"""SDXL attempts from concurrent requests, batched: one pipeline call for up to `max_batch` of them.

A request thread hands in one attempt and blocks until its image is back. The batcher's thread takes the
oldest waiting attempt and every other one with the same batch signature (size, steps, guidance, control
weights), up to `max_batch`; it waits for companions at most `max_wait_s` from the oldest one's arrival.
An IoU retry is simply a new attempt from its request thread (new seed, stronger weights): it joins a later
batch. The prompt embeddings are taken on this thread, so all SDXL work stays on one CUDA stream.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Attempt:
    steerer: object               # an MlSteerer (or config twin): its cfg fixes steps, guidance, prompt
    controls: list
    size_wh: tuple[int, int]
    seed: int
    weights: tuple[float, float]
    signature: tuple
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


class SdxlBatcher:
    def __init__(self, max_batch: int, max_wait_s: float, metrics=None, thread_init=None):
        self.max_batch, self.max_wait_s, self.metrics = max_batch, max_wait_s, metrics
        self._cv = threading.Condition()
        self._waiting: list[_Attempt] = []
        self._closed = False
        self.batch_sizes: list[int] = []
        self._thread = threading.Thread(target=self._loop, args=(thread_init,), name="sdxl-batcher", daemon=True)
        self._thread.start()

    def generate(self, steerer, controls, size_wh, seed: int, weights) -> np.ndarray:
        """Blocking: queue one attempt, return its image (or raise what its batch raised)."""
        a = _Attempt(steerer, controls, tuple(size_wh), seed, tuple(weights),
                     steerer.batch_signature(size_wh, weights))
        with self._cv:
            if self._closed:
                raise RuntimeError("the SDXL batcher is closed")
            self._waiting.append(a)
            self._depth()
            self._cv.notify_all()
        return a.future.result()

    def _depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels("sdxl").set(len(self._waiting))

    def _take(self) -> list[_Attempt]:
        with self._cv:
            while True:
                while not self._waiting and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return []
                first = self._waiting[0]
                group = [a for a in self._waiting if a.signature == first.signature][: self.max_batch]
                left = first.arrived + self.max_wait_s - time.monotonic()
                if len(group) >= self.max_batch or left <= 0:
                    taken = set(map(id, group))
                    self._waiting = [a for a in self._waiting if id(a) not in taken]
                    self._depth()
                    return group
                self._cv.wait(left)

    def _loop(self, thread_init) -> None:
        if thread_init is not None:
            thread_init()
        while batch := self._take():
            t0 = time.perf_counter()
            try:
                jobs = [a.steerer.job(a.controls, a.seed) for a in batch]
                images = batch[0].steerer.generate_batch(jobs, batch[0].size_wh, batch[0].weights)
            except BaseException as e:      # every waiting request gets the error; the batcher lives on
                log.exception("SDXL batch of %d failed", len(batch))
                for a in batch:
                    a.future.set_exception(e)
                continue
            self.batch_sizes.append(len(batch))
            if self.metrics is not None:
                self.metrics.batch_size.observe(len(batch))
                self.metrics.batch_seconds.observe(time.perf_counter() - t0)
            for a, img in zip(batch, images):
                a.future.set_result(img)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            for a in self._waiting:
                a.future.set_exception(RuntimeError("the host is shutting down"))
            self._waiting.clear()
            self._cv.notify_all()
        self._thread.join(timeout=5)
