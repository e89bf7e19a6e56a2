"""One owner for the accelerator inside a step: device, precision, attention, a VRAM budget, OOM recovery.

Each Dagster step is its own process, so a phase's models live exactly as long as its step. Inside it the
manager keeps every registered model resident while they fit `hardware.max_vram_gb` (default: the card less
`reserve_vram_gb`); when they do not, the least recently needed move to CPU. A CUDA out-of-memory error frees
what it can and retries once, then falls back to diffusers' model CPU offload where the model has it. On CPU
the same calls run and the budget is ignored. Importing this module never initialises CUDA.
"""
from __future__ import annotations

import gc
import importlib.util
import itertools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from .errors import TransientError
from .settings import Hardware

log = logging.getLogger(__name__)
GB = 1e9
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def resolve_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def resolve_dtype(precision: str, device: str) -> torch.dtype:
    """Half precision only on the GPU: CPU kernels for fp16 are slow or missing."""
    return _DTYPES[precision] if device.startswith("cuda") else torch.float32


def choose_attention(setting: str) -> str:
    """'sdpa' (PyTorch's fused attention, diffusers' default) or 'xformers' when asked for and importable."""
    if setting == "xformers" and importlib.util.find_spec("xformers") is None:
        log.warning("attention: xformers asked for but not importable; using PyTorch SDPA")
        return "sdpa"
    log.info("attention: %s", setting)
    return setting


def estimate_gb(model: Any) -> float:
    """Bytes of parameters and buffers: an nn.Module, or a diffusers pipeline's module components."""
    mods = [model] if isinstance(model, torch.nn.Module) else [
        c for c in getattr(model, "components", {}).values() if isinstance(c, torch.nn.Module)]
    total = 0
    for m in mods:
        total += sum(t.numel() * t.element_size() for t in itertools.chain(m.parameters(), m.buffers()))
    return total / GB


@dataclass
class _Slot:
    model: Any
    size_gb: float
    on_device: bool = False
    offloaded: bool = False      # diffusers model CPU offload: it moves its own parts
    last_used: int = 0


class VramManager:
    def __init__(self, hardware: Hardware, *, device: str | None = None, total_gb: float | None = None):
        self.hardware = hardware
        self.device = device or resolve_device(hardware.device)
        self.dtype = resolve_dtype(hardware.precision, self.device)
        self.attention = choose_attention(hardware.attention)
        self.is_cuda = self.device.startswith("cuda")
        if hardware.cpu_threads:
            torch.set_num_threads(hardware.cpu_threads)
        if self.is_cuda:      # process-wide; PyTorch's default leaves fp32 matmuls off the tensor cores
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = hardware.tf32
        if self.is_cuda and total_gb is None and torch.cuda.is_available():
            total_gb = torch.cuda.get_device_properties(torch.device(self.device)).total_memory / GB
        self.budget_gb: float | None = None
        if self.is_cuda:
            self.budget_gb = hardware.max_vram_gb or max((total_gb or 0) - hardware.reserve_vram_gb, 0.5)
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.RLock()       # a model host's request threads share one manager
        self._clock = itertools.count(1)
        self.image_peaks_gb: list[float] = []
        self.events: list[str] = []          # what the manager did (moves, OOM recoveries), for metadata
        log.info("device %s, dtype %s, budget %s GB", self.device, str(self.dtype).removeprefix("torch."),
                 "unlimited" if self.budget_gb is None else f"{self.budget_gb:.1f}")

    # ---- registry -------------------------------------------------------------------------------------
    def register(self, name: str, model: Any, size_gb: float | None = None) -> Any:
        self._slots[name] = _Slot(model, estimate_gb(model) if size_gb is None else size_gb)
        return model

    def resident(self) -> list[str]:
        return [n for n, s in self._slots.items() if s.on_device]

    @property
    def used_gb(self) -> float:
        return sum(s.size_gb for s in self._slots.values() if s.on_device and not s.offloaded)

    def acquire(self, name: str) -> Any:
        """Make `name` usable on the device now, moving least-recently-needed models out if over budget."""
        with self._lock:
            slot = self._slots[name]
            slot.last_used = next(self._clock)
            if slot.on_device:
                return slot.model
            if self.budget_gb is not None:
                self._make_room(slot.size_gb, keep=name)
                if slot.size_gb > self.budget_gb and self._offload(name, "larger than the budget"):
                    return slot.model
            slot.model.to(self.device)
            slot.on_device = True
            return slot.model

    def _make_room(self, need_gb: float, keep: str) -> None:
        while self.used_gb + need_gb > self.budget_gb:
            others = [(s.last_used, n) for n, s in self._slots.items() if s.on_device and n != keep
                      and not s.offloaded]
            if not others:
                return
            self.move_to_cpu(min(others)[1], "over the VRAM budget")

    def move_to_cpu(self, name: str, why: str) -> None:
        with self._lock:
            slot = self._slots[name]
            slot.model.to("cpu")
            slot.on_device = False
        self._note(f"{name} -> cpu ({why})")
        self.empty_cache()

    def _offload(self, name: str, why: str) -> bool:
        slot = self._slots[name]
        if slot.offloaded:
            return True
        if not hasattr(slot.model, "enable_model_cpu_offload"):
            return False
        slot.model.enable_model_cpu_offload(device=self.device)
        slot.on_device = slot.offloaded = True
        self._note(f"{name}: model CPU offload ({why})")
        return True

    def _note(self, event: str) -> None:
        self.events.append(event)
        log.warning("vram: %s", event)

    def empty_cache(self) -> None:
        gc.collect()
        if self.is_cuda and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- out of memory -----------------------------------------------------------------------------------
    def run(self, fn: Callable[[], Any], *, owner: str) -> Any:
        """Call `fn`; on CUDA OOM free every other model and retry once, then CPU-offload `owner` and retry."""
        try:
            return fn()
        except torch.OutOfMemoryError:
            self._note(f"{owner}: CUDA out of memory; freeing other models and retrying")
        for n in self.resident():
            if n != owner and not self._slots[n].offloaded:
                self.move_to_cpu(n, f"OOM in {owner}")
        self.empty_cache()
        try:
            return fn()
        except torch.OutOfMemoryError as e:
            if not self._offload(owner, "out of memory twice"):
                raise TransientError(f"CUDA out of memory in {owner} after freeing other models: {e}",
                                     phase=owner, fix="lower hardware.max_vram_gb, the tile or the generation "
                                     "size, or free the GPU from other processes") from e
        self.empty_cache()
        return fn()

    # ---- diffusers pipelines --------------------------------------------------------------------------
    def configure_pipeline(self, pipe: Any) -> Any:
        if self.attention == "xformers":
            pipe.enable_xformers_memory_efficient_attention()
        if self.hardware.enable_attention_slicing:
            pipe.enable_attention_slicing()
        return pipe

    # ---- peak memory ------------------------------------------------------------------------------------
    @contextmanager
    def image(self) -> Iterator[None]:
        """Record the peak VRAM of one image (0 on CPU)."""
        cuda = self.is_cuda and torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            yield
        finally:
            self.image_peaks_gb.append(torch.cuda.max_memory_allocated() / GB if cuda else 0.0)

    @property
    def last_image_peak_gb(self) -> float:
        return self.image_peaks_gb[-1] if self.image_peaks_gb else 0.0

    @property
    def batch_peak_gb(self) -> float:
        return max(self.image_peaks_gb, default=0.0)

    def close(self) -> None:
        """Free everything: the step is over."""
        for n in self.resident():
            if not self._slots[n].offloaded:
                self._slots[n].model.to("cpu")
        self._slots.clear()
        self.empty_cache()
