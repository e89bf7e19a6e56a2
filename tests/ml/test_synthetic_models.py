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


# -- the published on-disk layouts ---------------------------------------------------------------------------

def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_published_layouts_file_for_file(tiny_hub):
    from v2v_resources.models.synthetic import CONTROLNET_FILES, DEPTH_FILES, GDINO_FILES, SDXL_FILES

    assert _files(tiny_hub / "stabilityai/stable-diffusion-xl-base-1.0") == sorted(SDXL_FILES)
    for repo in ("diffusers/controlnet-depth-sdxl-1.0", "diffusers/controlnet-canny-sdxl-1.0"):
        assert _files(tiny_hub / repo) == sorted(CONTROLNET_FILES)
    assert _files(tiny_hub / "IDEA-Research/grounding-dino-base") == sorted(GDINO_FILES)
    assert _files(tiny_hub / "depth-anything/Depth-Anything-V2-Small-hf") == sorted(DEPTH_FILES)
    assert _files(tiny_hub / "files") == ["RealESRGAN_x4plus_anime_6B.pth", "big-lama.pt", "sam_vit_h_4b8939.pth"]
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in SDXL_FILES


def test_publishers_config_files_are_copied(tiny_hub):
    import json

    from v2v_resources.models.synthetic import PUBLISHED_DIR

    repo = "stabilityai/stable-diffusion-xl-base-1.0"
    for rel in ("model_index.json", "scheduler/scheduler_config.json", "tokenizer_2/tokenizer_config.json"):
        assert (tiny_hub / repo / rel).read_bytes() == (PUBLISHED_DIR / repo / rel).read_bytes()
    pre = json.loads((tiny_hub / "depth-anything/Depth-Anything-V2-Small-hf/preprocessor_config.json").read_text())
    published = json.loads((PUBLISHED_DIR / "depth-anything/Depth-Anything-V2-Small-hf/preprocessor_config.json")
                           .read_text())
    assert {k: v for k, v in pre.items() if k != "size"} == {k: v for k, v in published.items() if k != "size"}
    assert pre["size"] == {"height": 56, "width": 56}          # the tiny scale changes only the image size


def test_fp16_variant_weights_are_fp16(tiny_hub):
    from safetensors import safe_open

    f = tiny_hub / "diffusers/controlnet-depth-sdxl-1.0/diffusion_pytorch_model.fp16.safetensors"
    with safe_open(str(f), "pt") as st:
        assert {st.get_slice(k).get_dtype() for k in st.keys()} == {"F16"}


def test_esrgan_release_form_reads_with_weights_only(tiny_hub):
    from spandrel import ImageModelDescriptor, ModelLoader, canonicalize_state_dict

    sd = torch.load(tiny_hub / "files/RealESRGAN_x4plus_anime_6B.pth", weights_only=True)
    assert list(sd) == ["params_ema"]
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up2.weight",
            "conv_hr.weight", "conv_last.bias"} <= set(sd["params_ema"])
    desc = ModelLoader().load_from_state_dict(canonicalize_state_dict(sd))
    assert isinstance(desc, ImageModelDescriptor) and desc.scale == 4


def test_lama_archive_is_torchscript_and_converts_without_running(tiny_hub, tmp_path):
    import warnings
    import zipfile

    from v2v_resources.models.torchscript import torchscript_state_dict

    archive = tiny_hub / "files/big-lama.pt"
    names = zipfile.ZipFile(archive).namelist()
    assert any("/code/__torch__/" in n for n in names) and any(n.endswith("/data.pkl") for n in names)
    sd = torchscript_state_dict(archive)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.jit.load(str(archive)).state_dict()       # only here, to prove the reader equivalent
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in ref)
    assert "generator.model.1.bn_l.running_mean" in sd        # big-lama.pt's key names, which spandrel knows


def test_torchscript_reader_allows_no_other_global(tmp_path):
    import pickle
    import zipfile

    from v2v_resources.errors import ModelMissingError
    from v2v_resources.models.torchscript import torchscript_state_dict

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "evil.pt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ModelMissingError, match=r"global __builtin__\.print is not allowed"):
        torchscript_state_dict(bad)


def test_lama_loader_refuses_torchscript(tiny_hub):
    from v2v_resources.errors import EngineError
    from v2v_resources.sanitize.inpaint import LamaInpainter

    with pytest.raises(EngineError, match="safetensors only.*v2v models pull lama"):
        LamaInpainter(tiny_hub / "files/big-lama.pt", vram=None)
