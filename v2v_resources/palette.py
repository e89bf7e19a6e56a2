"""The palette value object: 2–64 distinct colours, validated, hashable, loadable by name."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .color import hex_to_rgb, is_hex, normalize_hex
from .errors import ConfigError
from .settings import CONFIG_DIR, PaletteChoice

MIN_COLORS, MAX_COLORS = 2, 64


@dataclass(frozen=True)
class Palette:
    name: str
    colors: tuple[str, ...]          # "#RRGGBB", upper case, in the given order

    def __post_init__(self):
        if not (MIN_COLORS <= len(self.colors) <= MAX_COLORS):
            raise ConfigError(f"palette {self.name!r} has {len(self.colors)} colours; "
                              f"it needs {MIN_COLORS}–{MAX_COLORS}", phase="palette",
                              fix="list between 2 and 64 colours")
        if len(set(self.colors)) != len(self.colors):
            dupes = sorted({c for c in self.colors if self.colors.count(c) > 1})
            raise ConfigError(f"palette {self.name!r} repeats {', '.join(dupes)}", phase="palette",
                              fix="list each colour once")

    @classmethod
    def from_hex(cls, colors, name: str = "custom") -> "Palette":
        if isinstance(colors, str):
            colors = [c for c in re.split(r"[,\s]+", colors) if c]
        norm = []
        for i, c in enumerate(colors):
            try:
                norm.append(normalize_hex(c))
            except ValueError:
                raise ConfigError(f"palette entry {i + 1} ({c!r}) is not a colour", phase="palette",
                                  fix="write colours as #RRGGBB or RRGGBB") from None
        return cls(name=name, colors=tuple(norm))

    @classmethod
    def from_name(cls, name: str, palette_dir: Path | None = None) -> "Palette":
        folder = Path(palette_dir or CONFIG_DIR / "palettes")
        path = folder / f"{name}.yaml"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml"))
            raise ConfigError(f"unknown palette {name!r}", phase="palette",
                              fix=f"use one of {', '.join(known)} or a list of hex colours")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data.get("colors"), list):
            raise ConfigError("palette file needs a `colors:` list", file=str(path), phase="palette",
                              fix="add colors: [\"#RRGGBB\", ...]")
        return cls.from_hex(data["colors"], name=data.get("name", name))

    @classmethod
    def parse(cls, spec: str) -> "Palette":
        """A palette name, or a comma-separated list of hex colours (as on the command line)."""
        return cls.from_hex(spec) if ("," in spec or is_hex(spec)) else cls.from_name(spec)

    @classmethod
    def from_choice(cls, choice: PaletteChoice) -> "Palette":
        return cls.from_hex(choice.colors) if choice.colors else cls.from_name(choice.name)

    @property
    def rgb(self) -> np.ndarray:
        """K×3 uint8."""
        return hex_to_rgb(self.colors)

    @property
    def digest(self) -> str:
        """Stable id of the colours (order matters: indices are stored in lookup tables)."""
        return hashlib.sha256(",".join(self.colors).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.colors)

    def index_of(self, hex_color: str) -> int:
        return self.colors.index(normalize_hex(hex_color))

    def contains(self, hex_color: str) -> bool:
        return is_hex(hex_color) and normalize_hex(hex_color) in self.colors
