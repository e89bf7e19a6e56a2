"""Session fixtures: tiny random models in the real formats under a tmp V2V_MODELS, and engines on them."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tiny_models import write_tiny_models  # noqa: E402  (tests/ml is on sys.path under pytest)

HAS_PEFT = importlib.util.find_spec("peft") is not None


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    # the LoRA is written only where diffusers can load it (peft); its own test is skipped otherwise
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_root(tiny_manifest) -> Path:
    return tiny_manifest.parent


@pytest.fixture(scope="session")
def ml_settings():
    from v2v_resources.settings import load_settings

    return load_settings(overrides={
        "hardware": {"device": "cpu"},
        "phase1": {"backend": "ml", "quality": {"min_vehicle_area": 0.0, "max_vehicle_area": 1.0}},
        "phase2": {"backend": "ml", "generation_long_side": 64, "prompt": "a red car", "negative_prompt": "blur",
                   "lora_trigger": "car", "sdxl": {"steps": 2},
                   "iou_retry": {"allow_skip_on_failure": True}},
        "phase3": {"backend": "ml", "esrgan_tile": 32, "esrgan_tile_pad": 4},
    })


@pytest.fixture(scope="session")
def store(tiny_root, tiny_manifest):
    from v2v_resources.models.verify import ModelStore

    return ModelStore(tiny_root, tiny_manifest)


@pytest.fixture(scope="session")
def ml_sanitizer(ml_settings, store):
    from v2v_resources.sanitize.ml import MlSanitizer
    from v2v_resources.vram import VramManager

    return MlSanitizer(ml_settings.phase1, store, VramManager(ml_settings.hardware))


@pytest.fixture(scope="session")
def ml_steerer(ml_settings, store, ml_sanitizer):
    from v2v_resources.steer.ml import MlSteerer

    return MlSteerer(ml_settings.phase2, ml_sanitizer, store, ml_sanitizer.vram)


@pytest.fixture
def car():
    """A 96×128 'car' (red body, dark wheels, a white plate) on grey, and its true mask."""
    rgb = np.full((96, 128, 3), 170, np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[35:75, 14:114] = True
    rgb[mask] = (200, 30, 30)
    rgb[62:70, 54:74] = 255
    for cx in (34, 94):
        yy, xx = np.ogrid[:96, :128]
        wheel = (yy - 74) ** 2 + (xx - cx) ** 2 <= 81
        rgb[wheel] = 20
        mask |= wheel
    return rgb, mask
