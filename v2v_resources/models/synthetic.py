"""Every ml model at a configured architecture with random weights, in the real on-disk formats.

`write_models(root, scale)` reads `configs/architectures/<scale>.yaml` and writes what the ml backends load:
diffusers folders (SDXL base, two ControlNets built from its UNet), transformers folders (GroundingDINO, the
depth model), a segment_anything .pth, spandrel-format LaMa and ESRGAN files and a diffusers-format LoRA, plus
`root/models.yaml` (the schema of configs/models.yaml, with every sha256). The production loaders run on them
unchanged. The tests use scale "tiny"; bench/gpu_throughput.py uses "full", the publishers' sizes, since
timing does not depend on weight values. Tokenizers are written offline with a small vocabulary: their ids
stay inside the real embedding tables, so the text encoders keep their real size and cost.
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import partial
from pathlib import Path

import torch
import yaml

from ..settings import CONFIG_DIR
from .checksum import sha256_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ARCH_DIR = CONFIG_DIR / "architectures"
GDINO_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "car", "vehicle", "side", "view", "mirror",
               "logo", "brand", "badge", "license", "plate", "text", "sticker", "wheel", "a", "the"]


def architectures(scale: str) -> dict:
    path = ARCH_DIR / f"{scale}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no architecture set {scale!r}: {path} does not exist "
                                f"(have: {', '.join(p.stem for p in ARCH_DIR.glob('*.yaml'))})")
    return yaml.safe_load(path.read_text())


def _byte_unicode() -> list[str]:
    """GPT-2/CLIP byte -> unicode table, so a CLIP BPE vocab can be written offline."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_unicode()
    merges = ["c a", "ca r</w>", "r e", "re d</w>"]
    tokens = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges] + \
        ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def write_sdxl(arch: dict, base: Path, controlnets: list[Path], dtype: torch.dtype) -> None:
    from diffusers import (AutoencoderKL, ControlNetModel, EulerDiscreteScheduler, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with tempfile.TemporaryDirectory() as tmp:
        tok = clip_tokenizer(Path(tmp))
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    unet = UNet2DConditionModel(**arch["unet"])
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                   beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**arch["vae"]), text_encoder=CLIPTextModel(CLIPTextConfig(**arch["text_encoder"], **ids)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**arch["text_encoder_2"], **ids)),
        tokenizer=tok, tokenizer_2=tok, unet=unet, scheduler=sched, add_watermarker=False)
    for folder in controlnets:
        ControlNetModel.from_unet(unet, **arch["controlnet"]).to(dtype).save_pretrained(folder)
    pipe.to(dtype).save_pretrained(base)


def write_lora(path: Path, unet_dir: Path, rank: int, std: float) -> None:
    """A diffusers-format LoRA (`unet.<module>.lora_A/B.weight`) on every attention projection of the UNet."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    cfg = json.loads((unet_dir / "config.json").read_text())
    with torch.device("meta"):     # only module names and shapes are needed
        unet = UNet2DConditionModel.from_config(cfg)
    sd = {}
    for name, mod in unet.named_modules():
        if isinstance(mod, torch.nn.Linear) and (name.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v")
                                                 or name.endswith("to_out.0")):
            sd[f"unet.{name}.lora_A.weight"] = torch.randn(rank, mod.in_features) * std
            sd[f"unet.{name}.lora_B.weight"] = torch.randn(mod.out_features, rank) * std
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in sd.items()}, str(path))


def write_grounding_dino(arch: dict, folder: Path) -> None:
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(GDINO_VOCAB) + "\n")
    proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size=arch["image_size"]),
                                  tokenizer=BertTokenizer(str(folder / "vocab.txt")))
    GroundingDinoForObjectDetection(GroundingDinoConfig(**arch["model"])).save_pretrained(folder)
    proc.save_pretrained(folder)


def write_depth(arch: dict, folder: Path) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    DepthAnythingForDepthEstimation(DepthAnythingConfig(**arch["model"])).save_pretrained(folder)
    s = arch["image_size"]
    DPTImageProcessor(size={"height": s, "width": s}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      do_pad=False, resample=3, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)


def build_sam(a: dict):
    """A segment_anything Sam; the decoder's 8 heads and 3 extra masks are fixed in every released SAM."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = a["img_size"] // a["patch_size"]
    return Sam(image_encoder=ImageEncoderViT(
                   img_size=a["img_size"], patch_size=a["patch_size"], embed_dim=a["embed_dim"], depth=a["depth"],
                   num_heads=a["num_heads"], mlp_ratio=4, out_chans=a["out_chans"], qkv_bias=True,
                   norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=a["window_size"],
                   global_attn_indexes=a["global_attn_indexes"]),
               prompt_encoder=PromptEncoder(embed_dim=a["out_chans"], image_embedding_size=(grid, grid),
                                            input_image_size=(a["img_size"], a["img_size"]),
                                            mask_in_chans=a["mask_in_chans"]),
               mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=a["out_chans"], iou_head_depth=3,
                                        iou_head_hidden_dim=a["out_chans"],
                                        transformer=TwoWayTransformer(depth=2, embedding_dim=a["out_chans"],
                                                                      mlp_dim=a["decoder_mlp_dim"], num_heads=8)),
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def _save_state(module: torch.nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save(sd, path)


def write_models(root: str | Path, scale: str = "tiny", *, lora: bool | None = None, device: str = "cpu",
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write every model of `scale` under `root` and `root/models.yaml`; returns the manifest path.

    `device`: where weights are initialised (a GPU makes the full set quick); `dtype`: of the diffusers
    weights, as published (SAM, GroundingDINO and LaMa stay fp32 like their releases). Seeded: the same
    call writes the same bytes. The LoRA is written only where diffusers can load it (peft) unless `lora` says."""
    import importlib.util

    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.LaMa import LaMa

    root, arch = Path(root), architectures(scale)
    if lora is None:
        lora = importlib.util.find_spec("peft") is not None
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    paths = {"sam": root / "sam" / "sam.pth", "lama": root / "lama" / "big-lama.safetensors",
             "esrgan": root / "esrgan" / "esrgan_x4.pth", "style-lora": root / "lora" / "style.safetensors"}
    with torch.device(device):
        write_grounding_dino(arch["grounding_dino"], root / "grounding-dino")
        _save_state(build_sam(arch["sam"]), paths["sam"])
        _save_state(LaMa(in_nc=4, out_nc=3), paths["lama"])   # image + mask in
        write_depth(arch["depth"], root / "depth")
        write_sdxl(arch["sdxl"], root / "sdxl", [root / "controlnet-depth", root / "controlnet-canny"], dtype)
        _save_state(ESRGAN(in_nc=3, out_nc=3, scale=4, **arch["esrgan"]), paths["esrgan"])
    if lora:
        write_lora(paths["style-lora"], root / "sdxl" / "unet", **arch["sdxl"]["lora"])

    def gb(p: Path) -> float:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        return round(sum(f.stat().st_size for f in files) / 1e9, 3)

    def folder(family, phase, fmt, sub):
        files = {f.relative_to(root / sub).as_posix(): sha256_file(f)
                 for f in sorted((root / sub).rglob("*")) if f.is_file()}
        return {"family": family, "phase": phase, "format": fmt, "path": sub, "source": {"repo": f"{scale}/{sub}"},
                "files": files, "vram_gb": gb(root / sub), "licence": "test", "required": True}

    def single(name, family, phase, fmt, required=True, source=True):
        p = paths[name]
        return {"family": family, "phase": phase, "format": fmt, "path": p.relative_to(root).as_posix(),
                "source": {"url": f"https://example.invalid/{p.name}"} if source else None,
                "sha256": sha256_file(p) if p.exists() else None, "vram_gb": gb(p) if p.exists() else 0.0,
                "licence": "test", "required": required}

    models = {
        "grounding-dino": folder("grounding-dino", "phase1", "transformers", "grounding-dino"),
        "sam": single("sam", "sam", "phase1", "pth"),
        "lama": single("lama", "lama", "phase1", "safetensors"),
        "depth": folder("depth-anything-v2", "phase2", "transformers", "depth"),
        "sdxl": folder("sdxl", "phase2", "diffusers", "sdxl"),
        "controlnet-depth": folder("controlnet", "phase2", "diffusers", "controlnet-depth"),
        "controlnet-canny": folder("controlnet", "phase2", "diffusers", "controlnet-canny"),
        "style-lora": single("style-lora", "lora", "phase2", "safetensors", required=False, source=False),
        "esrgan": single("esrgan", "esrgan", "phase3", "pth"),
    }
    manifest = root / "models.yaml"
    manifest.write_text(yaml.safe_dump({"version": 1, "models": models}, sort_keys=False))
    return manifest
