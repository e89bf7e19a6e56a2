"""Every ml model at a configured architecture with random weights, in the publishers' exact on-disk layouts.

`write_published(hub, scale)` plays the publishers: it writes what each source of `configs/models.yaml` serves,
under `hub/<repo id>/…` for Hugging Face repos and `hub/files/<name>` for plain URLs:
- diffusers folders with `*.fp16.safetensors` weights (SDXL base, both ControlNets), the published
  `model_index.json`, scheduler and tokenizer configs;
- transformers folders (GroundingDINO, Depth Anything V2) with the published preprocessor and tokenizer configs;
- SAM as a plain state-dict .pth, Real-ESRGAN as `{"params_ema": state_dict}` in basicsr's key names, and
  big-lama as a real TorchScript archive (`torch.jit.save` of a traced generator), as released.
The publishers' small config files are data under `published/` (copied, with only the image size changed at
the tiny scale); weights and model configs follow `configs/architectures/<scale>.yaml`.

`write_models(root, scale)` writes that and installs it under `root` the way `v2v models pull` lays out a
volume (the same allow patterns; LaMa converted to safetensors by the pull-time converter), plus
`root/models.yaml`: the shipped manifest with every digest filled in. The tests use scale "tiny";
bench/gpu_throughput.py uses "full", the publishers' sizes. Tokenizers carry a small vocabulary whose ids stay
inside the real embedding tables, so the text encoders keep their real size and cost.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from functools import partial
from pathlib import Path

import torch
import yaml

from ..settings import CONFIG_DIR
from .checksum import sha256_file
from .manifest import Manifest, load_manifest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ARCH_DIR = CONFIG_DIR / "architectures"
PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
URL_DIR = "files"                 # hub/<URL_DIR>/<file name> holds what a plain URL serves
LAMA_TRACE_SIZE = 32              # the traced input; the archive's weights do not depend on it
GDINO_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "car", "vehicle", "side", "view", "mirror",
               "logo", "brand", "badge", "license", "plate", "text", "sticker", "wheel", "a", "the"]
# every file of each published repo, as listed on the Hub (weights in the variants v2v pulls, README.md; the
# full-precision duplicates and other frameworks' exports are left out)
SDXL_FILES = ["model_index.json", "scheduler/scheduler_config.json", "README.md",
              *(f"{t}/{f}" for t in ("tokenizer", "tokenizer_2")
                for f in ("merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json")),
              *(f"{t}/{f}" for t in ("text_encoder", "text_encoder_2")
                for f in ("config.json", "model.fp16.safetensors")),
              *(f"{t}/{f}" for t in ("unet", "vae") for f in ("config.json", "diffusion_pytorch_model.fp16.safetensors"))]
CONTROLNET_FILES = ["config.json", "diffusion_pytorch_model.fp16.safetensors", "README.md"]
GDINO_FILES = ["config.json", "model.safetensors", "preprocessor_config.json", "special_tokens_map.json",
               "tokenizer.json", "tokenizer_config.json", "vocab.txt", "README.md"]
DEPTH_FILES = ["config.json", "model.safetensors", "preprocessor_config.json", "README.md"]


def architectures(scale: str) -> dict:
    path = ARCH_DIR / f"{scale}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no architecture set {scale!r}: {path} does not exist "
                                f"(have: {', '.join(p.stem for p in ARCH_DIR.glob('*.yaml'))})")
    return yaml.safe_load(path.read_text())


def _published(repo: str, rel: str, folder: Path, **changes) -> None:
    """Copy the publisher's config file `rel` of `repo` into `folder`, with `changes` to its top-level keys."""
    src = PUBLISHED_DIR / repo / rel
    dst = folder / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if changes:
        dst.write_text(json.dumps({**json.loads(src.read_text()), **changes}, indent=2) + "\n")
    else:
        shutil.copyfile(src, dst)


def _keep_only(folder: Path, files: list[str], repo: str) -> None:
    """Make `folder` hold exactly the published file list: drop what a library's save added, add the README."""
    (folder / "README.md").write_text(f"# {repo}\n\nRandom weights in the published layout, for tests.\n")
    for f in [p for p in folder.rglob("*") if p.is_file()]:
        if f.relative_to(folder).as_posix() not in files:
            f.unlink()
    for d in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise RuntimeError(f"{repo}: the writer did not produce {missing}")


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


def write_clip_vocab(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_unicode()
    merges = ["c a", "ca r</w>", "r e", "re d</w>"]
    tokens = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges] + \
        ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def write_sdxl(arch: dict, base: Path, controlnets: list[Path], dtype: torch.dtype) -> None:
    """SDXL base and ControlNets built from its UNet, saved as the fp16 variant like the published repos."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    repo = "stabilityai/stable-diffusion-xl-base-1.0"
    for tok in ("tokenizer", "tokenizer_2"):
        write_clip_vocab(base / tok)
        for rel in ("special_tokens_map.json", "tokenizer_config.json"):
            _published(repo, f"{tok}/{rel}", base)
    t = CLIPTokenizer.from_pretrained(base / "tokenizer")
    ids = dict(bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id, pad_token_id=t.pad_token_id)
    for rel in ("model_index.json", "scheduler/scheduler_config.json"):
        _published(repo, rel, base)
    save = dict(variant="fp16", safe_serialization=True)
    unet = UNet2DConditionModel(**arch["unet"]).to(dtype)
    for folder in controlnets:
        ControlNetModel.from_unet(unet, **arch["controlnet"]).half().save_pretrained(folder, **save)
        _keep_only(folder, CONTROLNET_FILES, folder.name)
    unet.half().save_pretrained(base / "unet", **save)
    del unet
    AutoencoderKL(**arch["vae"]).half().save_pretrained(base / "vae", **save)
    CLIPTextModel(CLIPTextConfig(**arch["text_encoder"], **ids)).half().save_pretrained(base / "text_encoder", **save)
    CLIPTextModelWithProjection(CLIPTextConfig(**arch["text_encoder_2"], **ids)).half().save_pretrained(
        base / "text_encoder_2", **save)
    _keep_only(base, SDXL_FILES, repo)


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
    from transformers import BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection

    repo = "IDEA-Research/grounding-dino-base"
    folder.mkdir(parents=True, exist_ok=True)
    GroundingDinoForObjectDetection(GroundingDinoConfig(**arch["model"])).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(GDINO_VOCAB) + "\n")
    # the fast tokenizer's tokenizer.json, from the same vocabulary and the published settings
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    for rel in ("special_tokens_map.json", "tokenizer_config.json"):
        _published(repo, rel, folder)
    _published(repo, "preprocessor_config.json", folder,
               **({"size": arch["image_size"]} if arch.get("image_size") else {}))
    _keep_only(folder, GDINO_FILES, repo)


def write_depth(arch: dict, folder: Path) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    repo = "depth-anything/Depth-Anything-V2-Small-hf"
    DepthAnythingForDepthEstimation(DepthAnythingConfig(**arch["model"])).save_pretrained(folder)
    s = arch["image_size"]
    _published(repo, "preprocessor_config.json", folder, size={"height": s, "width": s})
    _keep_only(folder, DEPTH_FILES, repo)


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


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


# spandrel's sequential index -> basicsr's name, for the x4 RRDBNet (two upsampling convolutions)
ESRGAN_X4_LAYERS = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}


def basicsr_esrgan_keys(sd: dict[str, torch.Tensor], num_blocks: int) -> dict[str, torch.Tensor]:
    """spandrel's ESRGAN names (`model.N…`) -> the names of basicsr's RRDBNet, which Real-ESRGAN releases use."""
    out = {}
    for k, v in sd.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
        elif m := re.fullmatch(rf"model\.1\.sub\.{num_blocks}\.(weight|bias)", k):
            out[f"conv_body.{m[1]}"] = v
        else:
            idx, kind = re.fullmatch(r"model\.(\d+)\.(weight|bias)", k).groups()
            out[f"{ESRGAN_X4_LAYERS[idx]}.{kind}"] = v
    return out


class _TorchScriptLama(torch.nn.Module):
    """big-lama.pt's module: the generator under `generator`, called with (image, mask)."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        return mask * self.generator(image * (1 - mask), mask) + (1 - mask) * image


def write_lama_archive(path: Path) -> None:
    """A real TorchScript archive of the LaMa generator, as big-lama.pt is released (spandrel's architecture)."""
    import warnings

    from spandrel.architectures.LaMa import LaMa

    module = _TorchScriptLama(LaMa(in_nc=4, out_nc=3).model.cpu()).eval()
    s = LAMA_TRACE_SIZE
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)         # torch.jit is deprecated; the release used it
        traced = torch.jit.trace(module, (torch.rand(1, 3, s, s), torch.zeros(1, 1, s, s)), check_trace=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(traced, str(path))


def _url_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def write_published(hub: str | Path, scale: str = "tiny", *, manifest: Manifest | None = None,
                    device: str = "cpu", dtype: torch.dtype = torch.float32) -> Path:
    """Write what every source of `manifest` (default: the shipped one) serves, under `hub`; returns `hub`.

    `device`: where weights are initialised (a GPU makes the full set quick); `dtype`: of the diffusers models
    while they are built (they are saved in fp16, as published). Seeded: the same call writes the same weights."""
    from spandrel.architectures.ESRGAN import ESRGAN

    hub, arch = Path(hub), architectures(scale)
    m = manifest or load_manifest()
    src = {n: e.source for n, e in m.models.items() if e.source}
    repo = {n: hub / s.repo for n, s in src.items() if s.repo}
    url = {n: hub / URL_DIR / _url_name(s.url) for n, s in src.items() if s.url}
    torch.manual_seed(0)
    with torch.device(device):
        write_grounding_dino(arch["grounding_dino"], repo["grounding-dino"])
        url["sam"].parent.mkdir(parents=True, exist_ok=True)
        torch.save(_state(build_sam(arch["sam"])), url["sam"])
        write_depth(arch["depth"], repo["depth"])
        write_sdxl(arch["sdxl"], repo["sdxl"], [repo["controlnet-depth"], repo["controlnet-canny"]], dtype)
        esrgan = ESRGAN(in_nc=3, out_nc=3, scale=4, **arch["esrgan"])
        torch.save({"params_ema": basicsr_esrgan_keys(_state(esrgan), arch["esrgan"]["num_blocks"])}, url["esrgan"])
    write_lama_archive(url["lama"])
    return hub


def write_models(root: str | Path, scale: str = "tiny", *, lora: bool | None = None, hub: str | Path | None = None,
                 device: str = "cpu", dtype: torch.dtype = torch.float32) -> Path:
    """Write every model of `scale`, installed under `root` as `v2v models pull` lays it out, and
    `root/models.yaml` (the shipped manifest with every digest); returns that manifest's path.

    `hub`: where the published form is written (kept for tests that pull from it); by default a temporary
    folder. Volume files are hard links to it where the file system allows. The LoRA (which nobody publishes:
    users supply it) is written only where diffusers can load it (peft) unless `lora` says."""
    import importlib.util

    from .hub import install_file, select_repo_files

    root = Path(root)
    if lora is None:
        lora = importlib.util.find_spec("peft") is not None
    shipped = load_manifest()
    with tempfile.TemporaryDirectory(prefix="v2v-hub-") as tmp:
        pub = write_published(hub or tmp, scale, manifest=shipped, device=device, dtype=dtype)
        for entry in shipped.models.values():
            target, s = root / entry.path, entry.source
            if s is None:
                continue
            if s.repo:
                for rel in select_repo_files(pub / s.repo, s.allow_patterns):
                    install_file(pub / s.repo / rel, target / rel, link=True)
            else:
                install_file(pub / URL_DIR / _url_name(s.url), target, link=True, convert=s.convert)
    if lora:
        write_lora(root / shipped.entry("style-lora").path, root / shipped.entry("sdxl").path / "unet",
                   **architectures(scale)["sdxl"]["lora"])
    models = {}
    for name, entry in shipped.models.items():
        data = entry.model_dump(mode="json", exclude_none=True)
        base = root / entry.path
        if entry.is_folder:
            data["files"] = {f.relative_to(base).as_posix(): sha256_file(f)
                             for f in sorted(base.rglob("*")) if f.is_file()}
        elif base.is_file():
            data["sha256"] = sha256_file(base)
        data["source"] = entry.source.model_dump(exclude_none=True) if entry.source else None
        models[name] = data
    manifest = root / "models.yaml"
    manifest.write_text(yaml.safe_dump({"version": 1, "models": models}, sort_keys=False))
    return manifest


def ensure_models(root: str | Path, scale: str, cuda: bool) -> Path:
    """The benchmarks' volume: every model of `scale` with random weights under `root`, written once (fp16 on a
    GPU) and reused by later runs; returns `root`."""
    import time

    root = Path(root)
    if not (root / "models.yaml").exists():
        t = time.perf_counter()
        write_models(root, scale, lora=True, device="cuda" if cuda else "cpu",
                     dtype=torch.float16 if cuda else torch.float32)
        if cuda:
            torch.cuda.empty_cache()
        print(f"models ({scale}) written in {time.perf_counter() - t:.1f} s under {root}", flush=True)
    return root
