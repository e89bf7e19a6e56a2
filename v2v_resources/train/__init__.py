"""Style LoRA training: validate a training set (`dataset`, no torch), fine-tune SDXL with a LoRA (`lora`),
checkpoint and resume (`checkpoint`), and picture the run (`report`). Engines only; v2v_assets/training.py
is the Dagster face and v2v_assets/cli_train.py the CLI."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..settings import CONFIG_DIR

PROFILE_DIR = CONFIG_DIR / "training"


def profile_overrides(name: str) -> dict:
    """A training profile (configs/training/<name>.yaml) as settings overrides."""
    from ..errors import ConfigError

    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown training profile {name!r}", file=str(path), phase="config",
                          fix=f"use one of: {have}")
    return yaml.safe_load(path.read_text()) or {}


def training_set_folder(data_dir: str | None, home_root: Path, version: str) -> Path:
    """Where version `version` of the training set lives."""
    return (Path(data_dir) if data_dir else Path(home_root) / "training_sets") / version
