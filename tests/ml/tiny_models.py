"""Tiny random-weight models in the real on-disk formats (configs/architectures/tiny.yaml), and a manifest.

`write_tiny_models(root)` writes every model the ml backends load under `root` plus `root/models.yaml` and
returns that manifest's path; the real loaders run on them unchanged, only the sizes differ."""
from __future__ import annotations

from pathlib import Path

from v2v_resources.models.synthetic import architectures, build_sam, write_models


def write_tiny_models(root: str | Path, *, lora: bool | None = None, hub: str | Path | None = None) -> Path:
    return write_models(root, "tiny", lora=lora, hub=hub)


def tiny_sam():
    return build_sam(architectures("tiny")["sam"])
