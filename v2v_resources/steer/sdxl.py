"""SDXL base + MultiControlNet [depth, canny] (+ optional style LoRA), built once from local folders."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import EngineError

LORA_ADAPTER = "v2v_style"
PHASE = "phase2"
log = logging.getLogger(__name__)


def _scheduler(name: str, config):
    from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

    cls = {"unipc": UniPCMultistepScheduler, "euler": EulerDiscreteScheduler,
           "dpmpp": DPMSolverMultistepScheduler}[name]
    return cls.from_config(config)


def gated_multicontrolnet(nets):
    """A MultiControlNetModel that does not run a net whose scale is 0 at this step, and scales residuals
    outside the nets.

    diffusers keeps calling a ControlNet after its `control_guidance_end`, at scale 0 (its residuals are
    multiplied by 0), so the canny net's last quarter of steps is pure waste; skipping it changes nothing
    in the image. Scaling outside also keeps a compiled net's inputs constant (a Python float scale would
    be a recompile per value)."""
    from diffusers import MultiControlNetModel

    class GatedMultiControlNet(MultiControlNetModel):
        def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale,
                    **kwargs):
            kwargs["return_dict"] = False
            down, mid = None, None
            for image, scale, net in zip(controlnet_cond, conditioning_scale, self.nets):
                if scale == 0:
                    continue
                d, m = net(sample=sample, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                           controlnet_cond=image, conditioning_scale=1.0, **kwargs)
                if down is None:
                    down, mid = [x * scale for x in d], m * scale
                else:
                    down = [a + x * scale for a, x in zip(down, d)]
                    mid = mid + m * scale
            return down, mid          # (None, None) when every net is off: the UNet runs without residuals

    return GatedMultiControlNet(nets)


def load_controlnet_pipeline(base: Path, controlnets: list[tuple[Path, str | None]], *, dtype: torch.dtype,
                             scheduler: str, variant: str | None = None, skip_finished: bool = True):
    """`controlnets`: (folder, weight variant) in conditioning order; `variant` is the base model's."""
    from diffusers import ControlNetModel, MultiControlNetModel, StableDiffusionXLControlNetPipeline

    common = dict(local_files_only=True, use_safetensors=True)
    nets = [ControlNetModel.from_pretrained(p, dtype=dtype, variant=v, **common) for p, v in controlnets]
    multi = gated_multicontrolnet(nets) if skip_finished else MultiControlNetModel(nets)
    pipe = StableDiffusionXLControlNetPipeline.from_pretrained(
        base, controlnet=multi, dtype=dtype, variant=variant, add_watermarker=False, **common)
    pipe.scheduler = _scheduler(scheduler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def compile_denoiser(pipe) -> None:
    """torch.compile the UNet and every ControlNet in place (the VAE and text encoders run once per image).

    The first call per shape pays the compilation; inductor's on-disk cache shortens it in later processes."""
    pipe.unet.compile()
    for net in pipe.controlnet.nets:
        net.compile()
    log.info("phase2: UNet and %d ControlNets compiled (first image pays the compilation)",
             len(pipe.controlnet.nets))


def load_style_lora(pipe, path: Path, scale: float) -> None:
    """Load a LoRA under our own adapter name (the reference asked for 'default' while diffusers had named it
    'default_0') and fuse exactly that adapter into the weights at `scale`.

    The scale is fixed for an engine's life, so fusing loses nothing; unfused, every attention projection
    runs two extra small matmuls per step (measurable on a GPU) and a compiled graph carries them too."""
    try:
        pipe.load_lora_weights(str(path), adapter_name=LORA_ADAPTER)
    except ValueError as e:
        fix = "install peft (diffusers needs it for LoRA)" if "PEFT" in str(e) else \
            "use an SDXL LoRA in diffusers or kohya format, or remove the file to run without it"
        raise EngineError(f"style LoRA not loadable: {e}", file=str(path), phase=PHASE, fix=fix) from e
    pipe.fuse_lora(lora_scale=scale, adapter_names=[LORA_ADAPTER])
    pipe.unload_lora_weights()     # the fused weights stay; the LoRA layers go
