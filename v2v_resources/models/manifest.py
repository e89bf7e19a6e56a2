"""The model manifest (`configs/models.yaml`) and its lock file (`<V2V_MODELS>/manifest.lock.json`).

The manifest says what each model is, where it comes from and where it lives under the model volume; a
sha256 it gives is authoritative. Where the manifest has none (Hugging Face folders, files whose digest is not
published), `v2v models pull` records the digest of what it downloaded in the lock file, and later
verifications compare against that.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..settings import CONFIG_DIR, format_validation_error
from ..storage import write_json_atomic

PHASE = "models"
LOCK_NAME = "manifest.lock.json"
Format = Literal["diffusers", "transformers", "pth", "safetensors"]
FOLDER_FORMATS = ("diffusers", "transformers")
Sha = str | None


def models_root(root: str | Path | None = None) -> Path:
    """The model volume: the argument, else `V2V_MODELS`, else /models."""
    return Path(root or os.environ.get("V2V_MODELS", "/models"))


def default_manifest_path() -> Path:
    return Path(os.environ.get("V2V_MODELS_MANIFEST", CONFIG_DIR / "models.yaml"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    repo: str | None = None             # Hugging Face repo id
    revision: str | None = None         # branch, tag or commit; None = main
    filename: str | None = None         # one file of `repo` (hf_hub_download) instead of a snapshot
    allow_patterns: list[str] | None = None   # limit a snapshot to the files the loader needs
    url: str | None = None              # plain https download (http only from this machine: a local mirror)
    convert: Literal["torchscript"] | None = None   # the download is a TorchScript archive: its tensors are
    #                                     written once, at pull time, to the safetensors file at `path`

    @model_validator(mode="after")
    def _one_kind(self):
        if bool(self.repo) == bool(self.url):
            raise ValueError("give exactly one of repo or url")
        if self.url and not (self.url.startswith("https://") or _loopback_http(self.url)):
            raise ValueError("url must be https (plain http only for 127.0.0.1 / localhost)")
        if self.convert and not self.url:
            raise ValueError("convert applies to a url download")
        return self


def _loopback_http(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _sha_ok(v: Sha) -> Sha:
    if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower())):
        raise ValueError(f"{v!r} is not a sha256 hex digest")
    return v.lower() if v else v


class ModelEntry(_Strict):
    family: str
    phase: Literal["phase1", "phase2", "phase3"]
    source: Source | None               # None: the user supplies the file (style LoRA)
    path: str                           # under the model volume: a folder (diffusers/transformers) or a file
    format: Format
    sha256: Sha = None                  # single-file formats; None where no digest is published
    files: dict[str, Sha] = Field(default_factory=dict)   # folder formats: files that must exist (+ digests)
    variant: str | None = None          # diffusers weight variant ("fp16") to load and pull
    vram_gb: float = Field(ge=0)        # approximate resident size in fp16
    licence: str
    required: bool
    note: str | None = None

    @field_validator("sha256")
    @classmethod
    def _check_sha(cls, v):
        return _sha_ok(v)

    @field_validator("files")
    @classmethod
    def _check_files(cls, v):
        return {k: _sha_ok(s) for k, s in v.items()}

    @field_validator("path")
    @classmethod
    def _relative(cls, v):
        if Path(v).is_absolute() or ".." in Path(v).parts:
            raise ValueError("path must be relative to the model volume, without '..'")
        return v

    @model_validator(mode="after")
    def _shape(self):
        if self.source and self.source.convert and self.format != "safetensors":
            raise ValueError("a converted download is stored as safetensors: set format: safetensors")
        if self.is_folder and self.sha256:
            raise ValueError("folder formats list digests under files, not sha256")
        if not self.is_folder and self.files:
            raise ValueError("single-file formats give sha256, not files")
        return self

    @property
    def is_folder(self) -> bool:
        return self.format in FOLDER_FORMATS


class Manifest(_Strict):
    version: Literal[1]
    models: dict[str, ModelEntry]

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"no model named {name!r} in the manifest", phase=PHASE,
                              fix=f"use one of {', '.join(self.models)}") from None

    def for_phase(self, phase: str, *, required: bool | None = None) -> list[str]:
        return [n for n, e in self.models.items()
                if e.phase == phase and (required is None or e.required == required)]


def load_manifest(path: str | Path | None = None) -> Manifest:
    src = Path(path) if path else default_manifest_path()
    try:
        data = yaml.safe_load(src.read_text())
    except FileNotFoundError as e:
        raise ConfigError("model manifest not found", file=str(src), phase=PHASE,
                          fix="restore configs/models.yaml or set V2V_MODELS_MANIFEST") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=str(src), phase=PHASE, fix="correct the YAML") from e
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e), file=str(src), phase=PHASE,
                          fix="correct the key named above") from e


class Lock:
    """Digests recorded by `pull`, per model and relative file ('.' for a single-file model)."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_NAME
        try:
            self.data: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except ValueError as e:
            raise ConfigError(f"lock file is not valid JSON: {e}", file=str(self.path), phase=PHASE,
                              fix="delete it and run `v2v models pull` again") from e
        self.data.setdefault("models", {})

    def files(self, name: str) -> dict[str, str]:
        return dict(self.data["models"].get(name, {}).get("files", {}))

    def info(self, name: str) -> dict:
        return dict(self.data["models"].get(name, {}))

    def record(self, name: str, files: dict[str, str], **info) -> None:
        self.data["models"][name] = {"files": dict(sorted(files.items())), **info}
        write_json_atomic(self.path, self.data)
