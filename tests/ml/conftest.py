"""Session fixtures: tiny random models in the published layouts, installed under a tmp V2V_MODELS and served
by a local Hugging Face endpoint; a volume pulled from that endpoint; engines on them."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tiny_models import write_tiny_models  # noqa: E402  (tests/ml is on sys.path under pytest)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))      # tests/: hf_endpoint
from hf_endpoint import HubServer  # noqa: E402

HAS_PEFT = importlib.util.find_spec("peft") is not None


@pytest.fixture(scope="session")
def _tiny(tmp_path_factory) -> tuple[Path, Path]:
    hub = tmp_path_factory.mktemp("hub")
    # the LoRA is written only where diffusers can load it (peft); its own test is skipped otherwise
    return write_tiny_models(tmp_path_factory.mktemp("models"), hub=hub), hub


@pytest.fixture(scope="session")
def tiny_manifest(_tiny) -> Path:
    """The installed tiny volume's manifest (the shipped one with every digest)."""
    return _tiny[0]


@pytest.fixture(scope="session")
def tiny_hub(_tiny) -> Path:
    """What the publishers serve (tiny random weights in their layouts): `<repo id>/…` and `files/<name>`."""
    return _tiny[1]


@pytest.fixture(scope="session")
def hub_server(tiny_hub):
    with HubServer(tiny_hub) as server:
        yield server


def endpoint_manifest(tiny_manifest: Path, server_url: str, out: Path) -> Path:
    """The shipped manifest as it is (repos, allow patterns, null digests), with the plain URLs pointed at the
    local server and SAM's pinned digest replaced by the tiny SAM's."""
    import yaml

    from v2v_resources.models.manifest import default_manifest_path

    data = yaml.safe_load(default_manifest_path().read_text())
    tiny = yaml.safe_load(tiny_manifest.read_text())["models"]
    for name, e in data["models"].items():
        if e.get("source") and e["source"].get("url"):
            e["source"]["url"] = f"{server_url}/files/{e['source']['url'].rsplit('/', 1)[-1]}"
    data["models"]["sam"]["sha256"] = tiny["sam"]["sha256"]
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="session")
def pulled(tmp_path_factory, tiny_manifest, hub_server):
    """(volume, manifest): every model with a source pulled from the local endpoint, as `v2v models pull` does,
    with HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set as the Makefile sets them."""
    from v2v_resources.models.pull import pull
    from v2v_resources.models.verify import ModelStore

    vol = tmp_path_factory.mktemp("pulled")
    manifest = endpoint_manifest(tiny_manifest, hub_server.url, vol.parent / f"{vol.name}-models.yaml")
    log: list[str] = []
    pull(ModelStore(vol, manifest), endpoint=hub_server.url, progress=False, echo=log.append)
    return vol, manifest, log


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
