"""SDXL base + MultiControlNet [depth, canny] (+ optional style LoRA), built once from local folders."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import EngineError

LORA_ADAPTER = "v2v_style"
PHASE = "phase2"


def _scheduler(name: str, config):
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

    cls = {"unipc": UniPCMultistepScheduler, "euler": EulerDiscreteScheduler,
           "dpmpp": DPMSolverMultistepScheduler}[name]
    return cls.from_config(config)


def load_controlnet_pipeline(base: Path, controlnets: list[tuple[Path, str | None]], *, dtype: torch.dtype,
                             scheduler: str, variant: str | None = None):
    """`controlnets`: (folder, weight variant) in conditioning order; `variant` is the base model's."""
    from diffusers import ControlNetModel, MultiControlNetModel, StableDiffusionXLControlNetPipeline

    common = dict(local_files_only=True, use_safetensors=True)
    nets = [ControlNetModel.from_pretrained(p, dtype=dtype, variant=v, **common) for p, v in controlnets]
    pipe = StableDiffusionXLControlNetPipeline.from_pretrained(
        base, controlnet=MultiControlNetModel(nets), dtype=dtype, variant=variant,
        add_watermarker=False, **common)
    pipe.scheduler = _scheduler(scheduler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_style_lora(pipe, path: Path, scale: float) -> None:
    """Load a LoRA under our own adapter name and activate exactly that name (the reference asked for
    'default' while diffusers had named it 'default_0')."""
    try:
        pipe.load_lora_weights(str(path), adapter_name=LORA_ADAPTER)
    except ValueError as e:
        fix = "install peft (diffusers needs it for LoRA)" if "PEFT" in str(e) else \
            "use an SDXL LoRA in diffusers or kohya format, or remove the file to run without it"
        raise EngineError(f"style LoRA not loadable: {e}", file=str(path), phase=PHASE, fix=fix) from e
    pipe.set_adapters([LORA_ADAPTER], [scale])
