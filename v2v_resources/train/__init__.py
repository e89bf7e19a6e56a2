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


def trained_lora(folder: str | Path) -> Path:
    """The finished LoRA of a training output folder (e.g. $V2V_HOME/storage/style_lora/<version>), checked
    against the sha256 its run recorded: what a steering engine should load for `training.use_version`."""
    import json

    from ..errors import ModelMissingError
    from ..storage import sha256_file

    folder = Path(folder)
    record = folder / "lora.json"
    if not record.is_file():
        raise ModelMissingError("no finished style LoRA here", file=str(folder), phase="phase2",
                                fix=f"materialise style_lora for version {folder.name} (or `v2v train "
                                    f"{folder.name}`), or unset training.use_version")
    rec = json.loads(record.read_text())
    path = folder / rec["file"]
    got = sha256_file(path) if path.is_file() else "missing"
    if got != rec["sha256"]:
        raise ModelMissingError(f"style LoRA does not match its training record (sha256 {got[:12]}…, "
                                f"recorded {rec['sha256'][:12]}…)", file=str(path), phase="phase2",
                                fix=f"materialise style_lora for version {folder.name} again")
    return path
