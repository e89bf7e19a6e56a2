"""Training checkpoints: written whole or not at all, read back without executing anything.

A checkpoint is a folder `step-000250/` with `lora.safetensors` (the trainable LoRA tensors by parameter name)
and `state.pt` (optimizer, LR scheduler, grad scaler and RNG states, the step, the losses so far and the run's
fingerprint: plain tensors, numbers, strings, lists and dicts, loaded with `weights_only=True`). It is written
under a temp name and renamed, so a crash while saving leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .dataset import PHASE, TrainingSetError

STEP_DIR = re.compile(r"^step-(\d{6,})$")


@dataclass
class Checkpoint:
    step: int
    weights: dict[str, torch.Tensor]
    state: dict


def _steps(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found)


def save(folder: Path, step: int, weights: dict[str, torch.Tensor], state: dict, keep: int) -> Path:
    """Write step `step`, then drop all but the newest `keep` checkpoints."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".v2v-tmp-step-", dir=folder))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / "lora.safetensors"))
        torch.save({**state, "step": step}, tmp / "state.pt")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        final = folder / f"step-{step:06d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for _, old in _steps(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(folder: Path, fingerprint: str) -> Checkpoint | None:
    """The newest checkpoint of this run (same config and training set), or None to start fresh.

    A checkpoint of a different run refuses to be mixed in: resuming it would train a hybrid."""
    from safetensors.torch import load_file

    steps = _steps(folder)
    if not steps:
        return None
    step, path = steps[-1]
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise TrainingSetError(
            "the checkpoints there belong to another run (different training settings or training set)",
            file=str(folder), phase=PHASE,
            fix="delete that folder to start over, or restore the settings and set it was made with")
    return Checkpoint(step, load_file(str(path / "lora.safetensors")), state)


def clear(folder: Path) -> None:
    """After a finished run: its checkpoints must not make the next run of the same version a no-op."""
    shutil.rmtree(folder, ignore_errors=True)
