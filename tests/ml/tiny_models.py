"""Tiny random-weight models in the real on-disk formats, and a manifest with their sha256.

`write_tiny_models(root)` writes every model the ml backends load (diffusers folders, transformers folders,
a segment_anything .pth, a TorchScript LaMa, a spandrel ESRGAN .pth, a diffusers-format LoRA) under `root`,
plus `root/models.yaml` (the same schema as configs/models.yaml) and returns that manifest's path. The real
loaders then run on them unchanged; only the sizes differ. Weights are seeded, so two calls write the same bytes.
"""
from __future__ import annotations

import json
import os
import tempfile
from functools import partial
from pathlib import Path

import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

GDINO_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "car", "vehicle", "side", "view", "mirror",
               "logo", "brand", "badge", "license", "plate", "text", "sticker", "wheel", "a", "the"]


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


def _clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_unicode()
    merges = ["c a", "ca r</w>", "r e", "re d</w>"]
    tokens = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges] + \
        ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


_UNET_COMMON = dict(block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=(2, 4),
                    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                    transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
                    cross_attention_dim=64)   # 80 = 6*8 time ids + 32 pooled; 64 = both text encoders' 32


def write_sdxl(base: Path, cn_depth: Path, cn_canny: Path) -> None:
    from diffusers import (AutoencoderKL, ControlNetModel, EulerDiscreteScheduler, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with tempfile.TemporaryDirectory() as tmp:
        tok = _clip_tokenizer(Path(tmp))
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), **_UNET_COMMON)
    # 4 blocks: the VAE downsamples x8 like the real one, so 128 px runs on a 16x16 latent
    vae = AutoencoderKL(block_out_channels=[32, 32, 32, 32], in_channels=3, out_channels=3, latent_channels=4,
                        layers_per_block=1, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, sample_size=128)
    tc = CLIPTextConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                        vocab_size=len(tok), hidden_act="gelu", projection_dim=32)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                   beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(tc),
                                     text_encoder_2=CLIPTextModelWithProjection(tc), tokenizer=tok,
                                     tokenizer_2=tok, unet=unet, scheduler=sched, add_watermarker=False)
    pipe.save_pretrained(base)
    for folder in (cn_depth, cn_canny):
        cn = ControlNetModel(in_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                             conditioning_embedding_out_channels=(8, 16, 16, 32), **_UNET_COMMON)  # x8 like the VAE
        cn.save_pretrained(folder)


def write_lora(path: Path, unet_dir: Path, rank: int = 4) -> None:
    """A diffusers-format LoRA (`unet.<module>.lora_A/B.weight`) on every attention projection of the tiny UNet."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(unet_dir)
    sd = {}
    for name, mod in unet.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v") \
                or name.endswith("to_out.0"):
            sd[f"unet.{name}.lora_A.weight"] = torch.randn(rank, mod.in_features) * 0.5
            sd[f"unet.{name}.lora_B.weight"] = torch.randn(mod.out_features, rank) * 0.5
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))


def write_grounding_dino(folder: Path) -> None:
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(GDINO_VOCAB) + "\n")
    proc = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 128}),
        tokenizer=BertTokenizer(str(folder / "vocab.txt")))
    cfg = GroundingDinoConfig(
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=16, decoder_ffn_dim=16, num_queries=20, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, use_timm_backbone=False,
        backbone_config=SwinConfig(window_size=7, embed_dim=8, depths=[1] * 4, num_heads=[1] * 4,
                                   out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4]),
        text_config={"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 8, "max_position_embeddings": 64, "vocab_size": len(GDINO_VOCAB)})
    GroundingDinoForObjectDetection(cfg).save_pretrained(folder)
    proc.save_pretrained(folder)


def write_depth_anything(folder: Path) -> None:
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config,
                              DPTImageProcessor)

    backbone = Dinov2Config(image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                            intermediate_size=37, out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False, apply_layernorm=True)
    cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                              neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8)
    DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      do_pad=False, resample=3, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)


def tiny_sam():
    """A segment_anything Sam with a tiny ViT; decoder heads fixed at 8 as in every released SAM."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return Sam(image_encoder=ImageEncoderViT(img_size=256, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                                             mlp_ratio=4, out_chans=32, qkv_bias=True,
                                             norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                                             window_size=4, global_attn_indexes=[1]),
               prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(16, 16),
                                            input_image_size=(256, 256), mask_in_chans=16),
               mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_depth=3,
                                        iou_head_hidden_dim=32,
                                        transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64,
                                                                      num_heads=8)),
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


class TinyLama(torch.nn.Module):
    """LaMa's TorchScript call signature: (image [1,3,H,W] 0-1, mask [1,1,H,W] 0/1) -> image [1,3,H,W] 0-1."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(8, 3, 3, padding=1), torch.nn.Sigmoid())

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = image * (1 - mask)
        fill = self.net(torch.cat([known, mask], dim=1))
        return known + fill * mask


def write_esrgan(path: Path) -> None:
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.save(ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4).state_dict(), path)


def _sha(path: Path) -> str:
    from v2v_resources.models.checksum import sha256_file

    return sha256_file(path)


def _folder_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def write_tiny_models(root: str | Path, *, lora: bool | None = None) -> Path:
    """Write every tiny model under `root` and `root/models.yaml`; returns the manifest path.

    The style LoRA is written only where diffusers can load it (peft importable) unless `lora` says."""
    root = Path(root)
    if lora is None:
        import importlib.util

        lora = importlib.util.find_spec("peft") is not None
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    write_grounding_dino(root / "grounding-dino")
    sam_path = root / "sam" / "sam_tiny.pth"
    sam_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_sam().state_dict(), sam_path)
    lama_path = root / "lama" / "big-lama.pt"
    lama_path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(TinyLama().eval()).save(str(lama_path))
    write_depth_anything(root / "depth")
    write_sdxl(root / "sdxl", root / "controlnet-depth", root / "controlnet-canny")
    esrgan_path = root / "esrgan" / "esrgan_tiny_x4.pth"
    esrgan_path.parent.mkdir(parents=True, exist_ok=True)
    write_esrgan(esrgan_path)
    lora_path = root / "lora" / "style.safetensors"
    if lora:
        write_lora(lora_path, root / "sdxl" / "unet")

    def folder(name, phase, fmt, sub, required=True):
        return {"family": name, "phase": phase, "format": fmt, "path": sub, "source": {"repo": f"tiny/{sub}"},
                "files": _folder_files(root / sub), "vram_gb": 0.01, "licence": "test", "required": required}

    def single(name, phase, fmt, file: Path, required=True, source=True):
        return {"family": name, "phase": phase, "format": fmt, "path": file.relative_to(root).as_posix(),
                "source": {"url": f"https://example.invalid/{file.name}"} if source else None,
                "sha256": _sha(file) if file.exists() else None, "vram_gb": 0.01, "licence": "test",
                "required": required}

    models = {
        "grounding-dino": folder("grounding-dino", "phase1", "transformers", "grounding-dino"),
        "sam": single("sam", "phase1", "pth", sam_path),
        "lama": single("lama", "phase1", "torchscript", lama_path),
        "depth": folder("depth-anything-v2", "phase2", "transformers", "depth"),
        "sdxl": folder("sdxl", "phase2", "diffusers", "sdxl"),
        "controlnet-depth": folder("controlnet", "phase2", "diffusers", "controlnet-depth"),
        "controlnet-canny": folder("controlnet", "phase2", "diffusers", "controlnet-canny"),
        "style-lora": single("lora", "phase2", "safetensors", lora_path, required=False, source=False),
        "esrgan": single("esrgan", "phase3", "pth", esrgan_path),
    }
    manifest = root / "models.yaml"
    manifest.write_text(yaml.safe_dump({"version": 1, "models": models}, sort_keys=False))
    return manifest
