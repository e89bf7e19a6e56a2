"""Hex colours: the one parser every module uses (settings, palettes, engines, SVG fills)."""
from __future__ import annotations

import re

import numpy as np

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def normalize_hex(value: str) -> str:
    """'#rrggbb', 'RRGGBB' … → '#RRGGBB'; ValueError for anything else."""
    m = _HEX.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a #RRGGBB colour")
    return "#" + m.group(1).upper()


def is_hex(value: str) -> bool:
    return bool(_HEX.match(str(value).strip()))


def hex_to_rgb(colors: str | list[str] | tuple[str, ...]) -> np.ndarray:
    """uint8 RGB of one colour (shape 3) or of a list of colours (shape K×3)."""
    if isinstance(colors, str):
        return np.frombuffer(bytes.fromhex(normalize_hex(colors)[1:]), np.uint8).copy()
    return np.array([hex_to_rgb(c) for c in colors], dtype=np.uint8).reshape(-1, 3)
