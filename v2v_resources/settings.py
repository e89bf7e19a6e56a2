"""Typed configuration for the four phases, validated at load.

`load_settings()` reads `configs/default.yaml`, applies an optional preset and overrides, and returns a
frozen `Settings`. Any unknown, missing or ill-typed key fails with its dotted path in the message.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .color import normalize_hex
from .errors import ConfigError

CONFIG_DIR = Path(os.environ.get("V2V_CONFIG_DIR", Path(__file__).resolve().parent.parent / "configs"))
Backend = Literal["auto", "ml", "lite"]
PRESETS = ("conservative", "balanced", "aggressive")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def operational(**constraints) -> Any:
    """A required key that changes how fast or where a phase runs, never what it outputs: it stays out of the
    digests that decide staleness, so tuning it never marks an image stale."""
    return Field(json_schema_extra={"operational": True}, **constraints)


def _output_affecting(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        if (info.json_schema_extra or {}).get("operational"):
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            value = _output_affecting(value)
        elif isinstance(value, list):
            value = [_output_affecting(v) if isinstance(v, BaseModel) else v for v in value]
        out[name] = value
    return out


HexColor = Annotated[str, AfterValidator(normalize_hex)]


class Hardware(_Strict):
    device: Literal["auto", "cuda", "cpu"] = operational()
    precision: Literal["float16", "bfloat16", "float32"]
    max_vram_gb: float | None = operational(gt=0)
    reserve_vram_gb: float = operational(ge=0)
    attention: Literal["sdpa", "xformers"] = operational()
    enable_attention_slicing: bool = operational()
    compile: bool = operational()
    tf32: bool = operational()
    cpu_threads: int | None = operational(gt=0)


class PaletteChoice(_Strict):
    name: str | None
    colors: list[str] | None

    @model_validator(mode="after")
    def _one_source(self):
        if not self.name and not self.colors:
            raise ValueError("give a palette name or a list of colours")
        return self


class Intake(_Strict):
    # The limits only decide which photos are refused (a refused photo is missing, so it is redone anyway).
    max_pixels: int = operational(gt=0)
    min_side: int = operational(ge=1)
    max_aspect_ratio: float = operational(ge=1)
    extensions: list[str] = operational()
    working_long_side: int = Field(ge=64, le=4096)
    settle_seconds: float = operational(ge=0)
    max_batch: int = operational(ge=1, le=10000)
    scan_limit: int = operational(ge=1)


class Detector(_Strict):
    box_threshold: float = Field(ge=0, le=1)
    text_threshold: float = Field(ge=0, le=1)
    vehicle_prompt: str
    part_prompts: list[str]
    max_part_share: float = Field(gt=0, le=1)
    max_parts: int = Field(ge=0, le=100)


class Segmenter(_Strict):
    mask_dilation_px: int = Field(ge=0)
    multimask: bool


class Inpaint(_Strict):
    resize_limit: int = Field(ge=64)


class Phase1Lite(_Strict):
    grabcut_iterations: int = Field(ge=1, le=20)
    frame_margin: float = Field(gt=0, lt=0.5)


class Phase1Quality(_Strict):
    min_vehicle_area: float = Field(ge=0, le=1)
    max_vehicle_area: float = Field(ge=0, le=1)
    max_erased_share: float = Field(ge=0, le=1)
    min_silhouette_iou: float = Field(ge=0, le=1)


class ThresholdVariation(_Strict):
    box_threshold: float = Field(ge=0, le=1)
    text_threshold: float = Field(ge=0, le=1)


class Phase1Retry(_Strict):
    max_attempts: int = Field(ge=1, le=10)
    variations: list[ThresholdVariation]


class Phase1(_Strict):
    backend: Backend
    detector: Detector
    segmenter: Segmenter
    inpaint: Inpaint
    lite: Phase1Lite
    quality: Phase1Quality
    retry: Phase1Retry


class Sdxl(_Strict):
    steps: int = Field(ge=1, le=200)
    guidance_scale: float = Field(ge=0, le=30)
    scheduler: Literal["unipc", "euler", "dpmpp"]
    seed: int = Field(ge=0)
    skip_finished_controlnets: bool


class ControlNet(_Strict):
    depth_weight: float = Field(ge=0, le=2)
    canny_weight: float = Field(ge=0, le=2)
    guidance_end: list[float]

    @field_validator("guidance_end")
    @classmethod
    def _two_in_unit(cls, v):
        if len(v) != 2 or not all(0 < x <= 1 for x in v):
            raise ValueError("guidance_end needs two values in (0, 1]: depth, canny")
        return v


class Lora(_Strict):
    scale: float = Field(ge=0, le=2)


class Canny(_Strict):
    low: int = Field(ge=0, le=255)
    high: int = Field(ge=0, le=255)
    bilateral_d: int = Field(ge=1)
    bilateral_sigma: float = Field(gt=0)
    clahe_clip: float = Field(gt=0)
    clahe_tiles: int = Field(ge=1)


class Phase2Lite(_Strict):
    bilateral_passes: int = Field(ge=0, le=20)
    bilateral_d: int = Field(ge=1)
    bilateral_sigma_color: float = Field(gt=0)
    bilateral_sigma_space: float = Field(gt=0)
    mean_shift_spatial: float = Field(gt=0)
    mean_shift_color: float = Field(gt=0)
    clusters: int = Field(ge=2, le=64)
    min_region_px: int = Field(ge=0)
    outline_delta_l: float = Field(ge=0)
    edge_darkening: float = Field(ge=0, le=1)


class IouRetry(_Strict):
    max_retries: int = Field(ge=0, le=10)
    iou_threshold: float = Field(ge=0, le=1)
    weight_step: float = Field(ge=0, le=1)
    max_depth_weight: float = Field(ge=0, le=2)
    max_canny_weight: float = Field(ge=0, le=2)
    allow_skip_on_failure: bool


class Phase2(_Strict):
    backend: Backend
    generation_long_side: int = Field(ge=64, le=2048, multiple_of=8)
    prompt: str
    lora_trigger: str
    negative_prompt: str
    sdxl: Sdxl
    controlnet: ControlNet
    lora: Lora
    canny: Canny
    lite: Phase2Lite
    iou_retry: IouRetry
    background: HexColor


class NoiseRemoval(_Strict):
    enabled: bool
    min_area_percent: float = Field(ge=0, le=10)


class Phase3(_Strict):
    backend: Backend
    output_long_side: int = Field(ge=64, le=16384)
    preview_long_side: int = Field(ge=64, le=8192)
    esrgan_tile: int = operational(ge=0)          # tiles overlap by the pad, so the seams do not show
    esrgan_tile_pad: int = operational(ge=0)
    background: str
    noise_removal: NoiseRemoval

    @field_validator("background")
    @classmethod
    def _bg(cls, v):
        return v if v == "transparent" else normalize_hex(v)


class VTracer(_Strict):
    colormode: Literal["color", "binary"]
    hierarchical: Literal["stacked", "cutout"]
    mode: Literal["spline", "polygon", "none"]
    filter_speckle: int = Field(ge=0, le=128)
    color_precision: int = Field(ge=1, le=8)
    layer_difference: int = Field(ge=0, le=255)
    corner_threshold: int = Field(ge=0, le=180)
    length_threshold: float = Field(ge=3.5, le=10)
    max_iterations: int = Field(ge=1, le=100)
    splice_threshold: int = Field(ge=0, le=180)
    path_precision: int = Field(ge=0, le=10)


class Strokes(_Strict):
    strategy: Literal["none", "outline", "centerline", "both"]
    color: HexColor
    width: float = Field(gt=0, le=50)
    centerline_tolerance: float = Field(ge=0)
    centerline_min_length: int = Field(ge=0)


class Phase4Quality(_Strict):
    min_agreement: float = Field(ge=0, le=1)
    max_svg_bytes: int = Field(gt=0)
    max_paths: int = Field(gt=0)


class Phase4(_Strict):
    vtracer: VTracer
    trace_long_side: int = Field(ge=64, le=16384)
    time_limit_s: float = operational(gt=0)
    strokes: Strokes
    preview_long_side: int = Field(ge=64, le=8192)
    quality: Phase4Quality


class Api(_Strict):
    """`v2v api`: the HTTP API over the inbox and the Dagster instance (operational: no output depends on it)."""
    bind: str = operational()
    port: int = operational(ge=1, le=65535)
    token_hashes: list[str] = operational()          # "sha256:<hex>" from `v2v api hash-token`
    max_upload_bytes: int = operational(gt=0)
    allowed_types: list[str] = operational()         # MIME types of the decoded format, not the client's claim
    rate_limit_per_minute: float = operational(gt=0)  # per token
    rate_limit_burst: int = operational(ge=1)
    request_timeout_s: float = operational(gt=0)
    ready_tick_age_s: float = operational(gt=0)      # /ready: the inbox sensor ticked within this long

    @field_validator("token_hashes")
    @classmethod
    def _hashes(cls, v):
        for h in v:
            algo, _, digest = h.partition(":")
            if algo != "sha256" or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
                raise ValueError(f"{h[:12]}…: not a token hash; make one with `v2v api hash-token`")
        return v


class Orchestration(_Strict):
    executor: Literal["auto", "multiprocess", "in_process"] = operational()
    max_runtime_s: int = Field(gt=0)
    nightly_cron: str
    nightly_max_images: int = Field(ge=1)


class Host(_Strict):
    """`v2v host`: the resident model host per GPU, and how clients reach it."""
    urls: list[str] = operational()             # the hosts GPU steps send their work to; []: in-process engines
    bind: str                                   # 127.0.0.1 unless the host serves other machines
    port: int = Field(ge=1, le=65535)
    token_env: str                              # env var holding the bearer token (required off loopback)
    max_batch: int = Field(ge=1, le=64)         # SDXL images per pipeline call
    max_wait_ms: float = Field(ge=0)            # how long the oldest queued attempt waits for companions
    workers: int = Field(ge=1, le=256)          # requests in progress at once (phase I, ESRGAN, waiting SDXL)
    warmup: bool                                # one synthetic image through every engine before /ready
    request_timeout_s: float = Field(gt=0)      # client: one request, queueing included
    connect_timeout_s: float = Field(gt=0)
    retries: int = Field(ge=0, le=100)          # client: transient failures (refused, reset, 503, timeout)
    backoff_s: float = Field(ge=0)              # client: first wait, doubled per retry up to max_backoff_s
    max_backoff_s: float = Field(ge=0)


class Output(_Strict):
    png_preview: bool


class Training(_Strict):
    """Style LoRA fine-tuning (v2v_resources/train): the set, the recipe, and how the run is kept safe."""
    data_dir: str | None = operational()          # <data_dir>/<version>/; None: $V2V_HOME/training_sets
    use_version: str | None = operational()       # the style_lora version illustrations depend on; None: no edge
    min_image_side: int = Field(ge=8)
    rank: int = Field(ge=1, le=256)
    alpha: float = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                          "polynomial"]
    lr_warmup_steps: int = Field(ge=0)
    steps: int = Field(ge=1)
    resolution: int = Field(ge=64, le=2048, multiple_of=8)
    batch_size: int = Field(ge=1, le=64)
    gradient_accumulation: int = Field(ge=1, le=256)
    max_grad_norm: float = Field(gt=0)
    seed: int = Field(ge=0)
    mixed_precision: Literal["no", "fp16", "bf16"]
    use_8bit_adam: bool
    gradient_checkpointing: bool = operational()
    checkpoint_every: int = operational(ge=1)
    keep_checkpoints: int = operational(ge=1)
    time_limit_s: float | None = operational(gt=0)
    sample_prompts: list[str] = operational()    # empty: the training set's first captions
    sample_steps: int = operational(ge=1, le=200)


class Settings(_Strict):
    hardware: Hardware
    palette: PaletteChoice
    intake: Intake
    phase1: Phase1
    phase2: Phase2
    phase3: Phase3
    phase4: Phase4
    api: Api
    output: Output
    orchestration: Orchestration
    training: Training
    host: Host

    def backend(self, phase: str) -> str:
        return getattr(self, phase).backend

    def fingerprint(self, *sections: str) -> dict[str, Any]:
        """The output-affecting keys of the named sections (operational knobs left out), for digests."""
        return {s: _output_affecting(getattr(self, s)) for s in sections}


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as e:
        raise ConfigError("file not found", file=str(path), phase="config",
                          fix="check the path or V2V_CONFIG_DIR") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=str(path), phase="config",
                          fix="correct the YAML syntax") from e
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping", file=str(path), phase="config",
                          fix="write `key: value` pairs")
    return data


def format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        kind = {"extra_forbidden": "unknown key", "missing": "missing key"}.get(e["type"], e["msg"])
        lines.append(f"{loc}: {kind}" + (f" (got {e['input']!r})" if e["type"] not in
                                          ("missing", "extra_forbidden") else ""))
    return "; ".join(lines)


def validate_settings(data: dict, source: str = "<settings>") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e), file=source, phase="config",
                          fix="correct the key named above (see configs/default.yaml)") from e


def load_settings(path: str | Path | None = None, *, preset: str | None = None,
                  overrides: dict | None = None) -> Settings:
    """Load `path` (else $V2V_CONFIG, else configs/default.yaml), then a preset from configs/presets/, then
    `overrides`. Every reader (assets, sensor, run tags, CLI) goes through here, so they agree on the file."""
    path = path or os.environ.get("V2V_CONFIG")
    src = Path(path) if path else CONFIG_DIR / "default.yaml"
    data = _read_yaml(src)
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"preset: unknown preset {preset!r}", phase="config",
                              fix=f"use one of {', '.join(PRESETS)}")
        data = deep_merge(data, _read_yaml(CONFIG_DIR / "presets" / f"{preset}.yaml"))
    if overrides:
        data = deep_merge(data, overrides)
    return validate_settings(data, str(src))
