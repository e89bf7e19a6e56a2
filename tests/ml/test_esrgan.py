"""Phase III ml upscaler: spandrel loads a Real-ESRGAN .pth; tiled output matches one pass; wrong files refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from v2v_resources.chroma.esrgan import EsrganUpscaler
from v2v_resources.chroma.upscale import Upscaler
from v2v_resources.errors import BadInputError, EngineError


@pytest.fixture(scope="module")
def esrgan_path(store):
    return store.require("esrgan")


def test_x4_uint8_and_tiles_agree_with_one_pass(esrgan_path):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    tiled = EsrganUpscaler(esrgan_path, tile=16, tile_pad=8)
    whole = EsrganUpscaler(esrgan_path, tile=0)
    assert isinstance(tiled, Upscaler) and tiled.name == "esrgan" and tiled.dtype == torch.float32
    a, b = tiled.upscale(rgb), whole.upscale(rgb)
    assert a.shape == (160, 224, 3) and a.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() < 0.05 and diff.max() <= 2          # the padding hides the seams


def test_half_precision_only_on_gpu(esrgan_path):
    assert EsrganUpscaler(esrgan_path, device="cpu", dtype=torch.float16).dtype == torch.float32


def test_rejects_non_x4_models_garbage_and_bad_input(tmp_path, esrgan_path):
    from spandrel.architectures.ESRGAN import ESRGAN

    x2 = tmp_path / "x2.pth"
    torch.save(ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=2).state_dict(), x2)
    with pytest.raises(EngineError, match="×2"):
        EsrganUpscaler(x2)
    junk = tmp_path / "junk.pth"
    torch.save({"something": torch.zeros(3)}, junk)
    with pytest.raises(EngineError, match="not a loadable upscaler"):
        EsrganUpscaler(junk)
    with pytest.raises(BadInputError):
        EsrganUpscaler(esrgan_path).upscale(np.zeros((8, 8, 4), np.uint8))
