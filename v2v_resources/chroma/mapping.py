"""Exact palette mapping by CIEDE2000 with a chroma penalty, through a lazily filled, disk-cached 256³ lookup table.

Every pixel gets the palette colour of least ΔE2000 + `CHROMA_PENALTY` × (how much more chroma the palette
colour has than the pixel, beyond `CHROMA_SLACK`) × (how neutral the pixel is: 1 for grey, falling to 0 at
chroma `NEUTRAL_CHROMA`), computed with scikit-image's `rgb2lab` + `deltaE_ciede2000`
by brute force (ties go to the lowest index). Plain ΔE2000 weighs lightness so that a dark grey paint is
"nearer" a dark purple than black or mid grey; the penalty keeps near-neutral paint on neutral palette
entries and leaves coloured pixels (chroma above `NEUTRAL_CHROMA`) to plain ΔE2000. The brute force is costly (≈3 µs per colour against
15 palette colours, ≈55 s for a whole 4096² image), so it runs once per distinct RGB value ever seen: the
answers fill a 16 MB table (one uint8 per 24-bit colour keyed R | G<<8 | B<<16, `UNKNOWN` where not yet
computed) that is written atomically under `cache_dir/lut/<palette digest>-<METRIC>.npy` and shared by every later
image, process and run.
Filling only the colours an image really has is exact by construction — it runs the reference itself on
them — and costs a fraction of building the whole cube.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from ..errors import EngineError
from ..palette import Palette
from ..storage import atomic_path
from .upscale import check_rgb

PHASE = "III chroma"
CUBE = 1 << 24
UNKNOWN = 255                 # palettes have at most 64 colours, so 255 is never an index
CHROMA_PENALTY = 0.5         # ΔE units per unit of chroma the palette colour adds to the pixel's
CHROMA_SLACK = 8.0           # chroma a palette colour may add for free (a slightly warm grey stays grey-ish)
NEUTRAL_CHROMA = 25.0        # pixels with at least this chroma are coloured paint: no penalty
METRIC = f"de2000-c{CHROMA_PENALTY}-{CHROMA_SLACK}-{NEUTRAL_CHROMA}"   # part of the cache file name: a new metric, a new table
CHUNK = 1 << 18               # colours per brute-force batch: bounds the float64 temporaries to ~100 MB


def pack_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 (..., 3 or 4) → uint32 (...) key R | G << 8 | B << 16 (alpha ignored): the bytes of an RGBA
    pixel read as one little-endian word, so packing is one copy rather than shifts of widened channels."""
    if img.shape[-1] == 4 and img.flags.c_contiguous:
        return img.view("<u4")[..., 0] & 0xFFFFFF
    buf = np.zeros(img.shape[:-1] + (4,), dtype=np.uint8)
    buf[..., :3] = img[..., :3]
    return buf.view("<u4")[..., 0]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(packed, dtype="<u4")[..., None].view(np.uint8)[..., :3]


def chroma(lab: np.ndarray) -> np.ndarray:
    return np.hypot(lab[..., 1], lab[..., 2])


def palette_distance(lab: np.ndarray, palette_lab: np.ndarray) -> np.ndarray:
    """K×N: ΔE2000 of N Lab colours to each of K palette colours, plus the chroma penalty."""
    c = chroma(lab)
    neutral = np.clip(1 - c / NEUTRAL_CHROMA, 0, 1)
    return np.stack([deltaE_ciede2000(lab, palette_lab[k:k + 1])
                     + CHROMA_PENALTY * neutral * np.maximum(chroma(palette_lab[k]) - c - CHROMA_SLACK, 0)
                     for k in range(len(palette_lab))])


def _nearest_exact(colors: np.ndarray, palette_lab: np.ndarray) -> np.ndarray:
    """N×3 uint8 colours → N palette indices of least penalised ΔE2000 (first minimum)."""
    out = np.empty(len(colors), dtype=np.uint8)
    for start in range(0, len(colors), CHUNK):
        out[start:start + CHUNK] = np.argmin(palette_distance(rgb2lab(colors[start:start + CHUNK]), palette_lab), axis=0)
    return out


def _palette_lab(palette: Palette) -> np.ndarray:
    return rgb2lab(palette.rgb)


def brute_force_indices(rgb: np.ndarray, palette: Palette) -> np.ndarray:
    """The reference: penalised ΔE2000 of every pixel against every palette colour, argmin. H×W uint8."""
    rgb = check_rgb(rgb)
    return _nearest_exact(rgb.reshape(-1, 3), _palette_lab(palette)).reshape(rgb.shape[:2])


class PaletteMapper:
    """Maps RGB images to palette indices; keeps its lookup table in memory and (optionally) on disk."""

    def __init__(self, palette: Palette, cache_dir: Path | None = None):
        self.palette = palette
        self._lab = _palette_lab(palette)
        self.path = Path(cache_dir) / "lut" / f"{palette.digest}-{METRIC}.npy" if cache_dir else None
        self.lut = self._load() if self.path and self.path.is_file() else np.full(CUBE, UNKNOWN, np.uint8)
        self.computed_colors = 0      # colours this mapper had to brute-force (0 when the cache knew them all)

    def _load(self) -> np.ndarray:
        try:
            lut = np.load(self.path)
        except (OSError, ValueError) as e:
            raise EngineError(f"palette lookup table is unreadable ({e})", file=str(self.path), phase=PHASE,
                              fix="delete the file; it is rebuilt on the next image") from e
        if lut.shape != (CUBE,) or lut.dtype != np.uint8:
            raise EngineError(f"palette lookup table has shape {lut.shape} {lut.dtype}", file=str(self.path),
                              phase=PHASE, fix="delete the file; it is rebuilt on the next image")
        return lut

    def indices(self, rgb: np.ndarray) -> np.ndarray:
        """H×W uint8 palette indices of least penalised ΔE2000."""
        packed = pack_rgb(check_rgb(rgb))
        out = self.lut[packed]
        missing = out == UNKNOWN
        if missing.any():
            self._fill(packed[missing])
            out[missing] = self.lut[packed[missing]]
        return out

    def _fill(self, packed: np.ndarray) -> None:
        # Distinct values through a bitmap: one scatter instead of sorting millions of pixels.
        seen = np.zeros(CUBE, dtype=bool)
        seen[packed] = True
        todo = np.flatnonzero(seen).astype(np.uint32)
        self.lut[todo] = _nearest_exact(unpack_rgb(todo), self._lab)
        self.computed_colors += len(todo)
        self._persist()

    def _persist(self) -> None:
        if not self.path:
            return
        if self.path.is_file():
            # Another process may have added colours since we loaded: keep theirs too.
            other = self._load()
            gap = (self.lut == UNKNOWN) & (other != UNKNOWN)
            self.lut[gap] = other[gap]
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, self.lut)
