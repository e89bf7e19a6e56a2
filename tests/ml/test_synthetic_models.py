"""The benchmark's full-size architectures are the published ones: parameter counts of every model, built on
the meta device (no memory, no weights), match the released checkpoints."""
import pytest
import torch

from v2v_resources.models.synthetic import architectures, build_sam

# millions of parameters of the released checkpoints (their config.json / model cards)
PUBLISHED = {"unet": 2567.464, "controlnet": 1251.014, "vae": 83.654, "text_encoder": 123.060,
             "text_encoder_2": 694.660, "grounding_dino": 232.315, "depth": 24.785, "sam": 641.091,
             "esrgan": 4.468, "lama": 50.976}


def _millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def _build_all(a: dict) -> dict[str, torch.nn.Module]:
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.LaMa import LaMa
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, DepthAnythingConfig,
                              DepthAnythingForDepthEstimation, GroundingDinoConfig, GroundingDinoForObjectDetection)

    s = a["sdxl"]
    unet = UNet2DConditionModel(**s["unet"])
    return {"unet": unet, "controlnet": ControlNetModel.from_unet(unet, **s["controlnet"]),
            "vae": AutoencoderKL(**s["vae"]), "text_encoder": CLIPTextModel(CLIPTextConfig(**s["text_encoder"])),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**s["text_encoder_2"])),
            "grounding_dino": GroundingDinoForObjectDetection(GroundingDinoConfig(**a["grounding_dino"]["model"])),
            "depth": DepthAnythingForDepthEstimation(DepthAnythingConfig(**a["depth"]["model"])),
            "sam": build_sam(a["sam"]), "esrgan": ESRGAN(in_nc=3, out_nc=3, scale=4, **a["esrgan"]),
            "lama": LaMa(in_nc=4, out_nc=3)}


def test_full_architectures_have_the_published_sizes():
    with torch.device("meta"):
        models = _build_all(architectures("full"))
    got = {k: round(_millions(m), 3) for k, m in models.items()}
    assert got == pytest.approx(PUBLISHED, abs=0.002)


def test_tiny_architectures_are_tiny():
    with torch.device("meta"):
        models = _build_all(architectures("tiny"))
    assert all(_millions(m) < 2 for k, m in models.items() if k != "lama")   # spandrel's LaMa has no size knobs


def test_unknown_scale_names_the_file():
    with pytest.raises(FileNotFoundError, match="no architecture set 'huge'.*have:"):
        architectures("huge")
