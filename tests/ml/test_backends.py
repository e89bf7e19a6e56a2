"""Backend choice per phase: auto picks ml when models verify, lite otherwise (and says why); ml is strict."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from v2v_resources import backends
from v2v_resources.errors import ModelMissingError
from v2v_resources.models.verify import ModelStore
from v2v_resources.settings import load_settings


def settings_with(**phases):
    return load_settings(overrides={"hardware": {"device": "cpu"},
                                    **{p: {"backend": b} for p, b in phases.items()}})


def test_auto_uses_ml_when_models_verify(tiny_root, tiny_manifest):
    s = settings_with(phase1="auto", phase3="auto")
    san = backends.make_sanitizer(s, tiny_root, manifest=tiny_manifest)
    up = backends.make_upscaler(s, tiny_root, manifest=tiny_manifest)
    assert san.backend == "ml" and up.name == "esrgan" and "verified" in san.backend_reason
    assert up.upscale(np.zeros((8, 8, 3), np.uint8)).shape == (32, 32, 3)


def test_auto_falls_back_to_lite_and_says_why_once(tmp_path, caplog):
    s = settings_with(phase1="auto", phase3="auto")
    with caplog.at_level(logging.INFO, logger="v2v_resources.backends"):
        san = backends.make_sanitizer(s, tmp_path)
        backends.make_sanitizer(s, tmp_path)
        up = backends.make_upscaler(s, tmp_path)
    assert san.backend == "lite" and up.name == "lanczos"
    assert "grounding-dino missing" in san.backend_reason and "v2v models pull" in san.backend_reason
    assert sum("phase1 backend" in r.message for r in caplog.records) == 1      # logged once per process


def test_ml_with_a_missing_model_names_file_path_and_command(tmp_path):
    s = settings_with(phase3="ml")
    with pytest.raises(ModelMissingError) as e:
        backends.make_upscaler(s, tmp_path)
    msg = str(e.value)
    expected = tmp_path / "esrgan" / "RealESRGAN_x4plus_anime_6B.pth"
    assert str(expected) in msg and "v2v models pull esrgan" in msg and "[phase3]" in msg


def test_lite_never_looks_at_models(tmp_path):
    s = settings_with(phase1="lite", phase3="lite")
    assert backends.make_sanitizer(s, tmp_path).backend == "lite"
    assert backends.make_upscaler(s, tmp_path).name == "lanczos"


def test_steerer_shares_the_sanitizers_vram_manager(tiny_root, tiny_manifest, ml_settings):
    pytest.importorskip("v2v_resources.steer.edges")
    s = ml_settings
    san = backends.make_sanitizer(s, tiny_root, manifest=tiny_manifest)
    st = backends.make_steerer(s, san, tiny_root, manifest=tiny_manifest)
    assert st.backend == "ml" and st.vram is san.vram
    st.release()
    assert san.vram.resident() == []


def test_choice_for_a_corrupt_model(tiny_root, tiny_manifest, tmp_path):
    import shutil

    root = tmp_path / "vol"
    shutil.copytree(tiny_root, root)
    (root / "lama" / "big-lama.safetensors").write_bytes(b"not safetensors")
    store = ModelStore(root, root / "models.yaml")
    auto = backends.choose_backend(settings_with(phase1="auto"), "phase1", store)
    assert auto.backend == "lite" and "lama corrupt" in auto.reason
    with pytest.raises(ModelMissingError, match="corrupt.*big-lama.safetensors"):
        backends.choose_backend(settings_with(phase1="ml"), "phase1", store)
