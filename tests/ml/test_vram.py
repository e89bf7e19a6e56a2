"""VRAM manager policy on fake sized models: residency under a budget, LRU moves, the OOM path, peaks."""
from __future__ import annotations

import pytest
import torch

from v2v_resources.errors import TransientError
from v2v_resources.settings import load_settings
from v2v_resources.vram import VramManager, estimate_gb, resolve_dtype


class Fake:
    """A 'model' with a size and a `.to()` that records where it is."""

    def __init__(self):
        self.where, self.moves = "cpu", []

    def to(self, device):
        self.where = str(device)
        self.moves.append(self.where)
        return self


class FakePipe(Fake):
    def __init__(self):
        super().__init__()
        self.offloaded = False

    def enable_model_cpu_offload(self, device=None):
        self.offloaded = True


def hw(**kw):
    return load_settings(overrides={"hardware": kw}).hardware


def gpu(budget=10.0, **kw):
    """A manager that believes it drives a CUDA card, without touching CUDA (fakes never allocate)."""
    return VramManager(hw(max_vram_gb=budget, **kw), device="cuda")


def test_all_resident_when_they_fit():
    vm = gpu(10)
    models = {n: vm.register(n, Fake(), s) for n, s in (("a", 3), ("b", 3), ("c", 3))}
    for n in models:
        vm.acquire(n)
    assert vm.resident() == ["a", "b", "c"] and vm.used_gb == 9
    assert all(m.where == "cuda" and m.moves == ["cuda"] for m in models.values())
    vm.acquire("a")
    assert models["a"].moves == ["cuda"]          # already resident: no second move


def test_least_recently_needed_moves_to_cpu_when_over_budget():
    vm = gpu(10)
    a, b, c = (vm.register(n, Fake(), 4) for n in "abc")
    vm.acquire("a")
    vm.acquire("b")
    vm.acquire("a")            # a is now the most recently needed
    vm.acquire("c")            # 12 GB > 10: b goes
    assert sorted(vm.resident()) == ["a", "c"] and b.where == "cpu" and a.where == "cuda"
    assert vm.used_gb <= 10 and any("b -> cpu" in e for e in vm.events)


def test_model_larger_than_budget_uses_cpu_offload_when_it_can():
    vm = gpu(5)
    pipe = vm.register("sdxl", FakePipe(), 8)
    vm.acquire("sdxl")
    assert pipe.offloaded and pipe.moves == []           # diffusers moves its own parts
    plain = vm.register("big", Fake(), 8)
    vm.acquire("big")
    assert plain.where == "cuda"                          # no offload available: tried, OOM path handles it


def test_oom_frees_others_retries_once_then_offloads():
    vm = gpu(20)
    other = vm.register("sam", Fake(), 3)
    pipe = vm.register("sdxl", FakePipe(), 8)
    vm.acquire("sam")
    vm.acquire("sdxl")
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) <= 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return "image"

    assert vm.run(flaky, owner="sdxl") == "image"
    assert len(calls) == 3 and other.where == "cpu" and pipe.offloaded
    assert any("out of memory" in e for e in vm.events) and any("CPU offload" in e for e in vm.events)


def test_oom_without_offload_raises_a_retryable_error():
    vm = gpu(20)
    vm.register("esrgan", Fake(), 1)

    def always():
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(TransientError) as e:
        vm.run(always, owner="esrgan")
    assert e.value.retryable and "esrgan" in str(e.value)


def test_cpu_ignores_budget_forces_fp32_and_records_zero_peaks():
    vm = VramManager(hw(device="cpu", max_vram_gb=1, precision="float16"))
    assert vm.device == "cpu" and vm.dtype == torch.float32 and vm.budget_gb is None
    big = [vm.register(n, Fake(), 50) for n in "ab"]
    vm.acquire("a"), vm.acquire("b")
    assert vm.resident() == ["a", "b"] and all(m.where == "cpu" for m in big)
    with vm.image():
        pass
    assert vm.image_peaks_gb == [0.0] and vm.batch_peak_gb == 0.0
    vm.close()
    assert vm.resident() == []


def test_precision_and_attention_choice():
    assert resolve_dtype("bfloat16", "cuda") == torch.bfloat16 and resolve_dtype("float16", "cpu") == torch.float32
    vm = gpu(10, attention="xformers")
    import importlib.util

    assert vm.attention == ("xformers" if importlib.util.find_spec("xformers") else "sdpa")


def test_size_estimate_from_parameters():
    m = torch.nn.Linear(1000, 1000)          # 1,001,000 fp32 params
    assert estimate_gb(m) == pytest.approx(1_001_000 * 4 / 1e9)
