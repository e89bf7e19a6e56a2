"""Safe image decoding, partition keys, PNG I/O and mask helpers.

Decoding never trusts the file: the pixel count is checked from the header before any pixel is decoded
(decompression bombs), EXIF orientation is applied, and every mode Pillow knows (CMYK, 16-bit, palette,
alpha, grayscale, animated) is brought to 8-bit RGB with the alpha kept as a separate mask.
"""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadInputError
from .storage import atomic_path

PHASE = "intake"
HASH_CHARS = 10


@dataclass
class Photo:
    rgb: np.ndarray                  # H×W×3 uint8
    alpha: np.ndarray | None         # H×W uint8 or None when the source had no usable alpha
    info: dict = field(default_factory=dict)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_stem(name: str, max_len: int = 40) -> str:
    """A file stem reduced to [a-z0-9_-], safe in paths, URLs, shells and Dagster keys."""
    stem = Path(name).stem
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem)
    stem = re.sub(r"[-_]{2,}", "-", stem).strip("-_").lower()
    return (stem[:max_len].rstrip("-_") or "image")


def partition_key(name: str, digest: str) -> str:
    """Readable stem + short content hash: the same bytes under two names is one key per name stem,
    and the sensor dedups by digest so the same content twice is one partition."""
    return f"{safe_stem(name)}-{digest[:HASH_CHARS]}"


def _reject(path, reason: str, fix: str) -> BadInputError:
    return BadInputError(reason, file=str(path), phase=PHASE, fix=fix)


def decode_photo(data: bytes, *, name: str = "<bytes>", max_pixels: int = 60_000_000,
                 min_side: int = 32, max_aspect_ratio: float = 8.0) -> Photo:
    """Decode image bytes to RGB (+ optional alpha mask), or raise BadInputError naming the problem."""
    if not data:
        raise _reject(name, "file is empty (0 bytes)", "re-copy the file; it may still be uploading")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise _reject(name, "not a recognised image format",
                      "supply a JPEG, PNG, WebP, TIFF, BMP or GIF") from None
    except Exception as e:  # Pillow raises many types on garbage headers
        raise _reject(name, f"unreadable image header ({type(e).__name__}: {e})",
                      "re-export the image") from None
    w, h = im.size
    if w * h > max_pixels:
        raise _reject(name, f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}"
                      " (possible decompression bomb)",
                      "downscale the image or raise intake.max_pixels")
    info = {"format": im.format, "mode": im.mode, "source_size": [w, h],
            "frames": getattr(im, "n_frames", 1)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im.seek(0)  # animated images: the first frame is used (recorded in info)
            im.load()
    except Exception as e:
        raise _reject(name, f"image data is truncated or corrupt ({type(e).__name__}: {e})",
                      "re-copy or re-export the file") from None
    im = ImageOps.exif_transpose(im)
    if im.size != (w, h):
        info["exif_transposed"] = True
    w, h = im.size
    if min(w, h) < min_side:
        raise _reject(name, f"image is {w}x{h}; the shorter side must be at least {min_side} px",
                      "supply a larger photo")
    if max(w, h) / min(w, h) > max_aspect_ratio:
        raise _reject(name, f"aspect ratio {max(w, h) / min(w, h):.1f} exceeds {max_aspect_ratio}",
                      "crop the photo around the vehicle")
    rgb, alpha = _to_rgb_alpha(im)
    if alpha is not None:
        if alpha.max() == 0:
            info["alpha"] = "empty (ignored)"
            alpha = None
        elif alpha.min() == 255:
            alpha = None
        else:
            info["alpha"] = "kept as mask"
    return Photo(rgb=rgb, alpha=alpha, info=info)


def _to_rgb_alpha(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        im = Image.fromarray(((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8))
    elif mode == "CMYK":
        im = im.convert("RGB")  # Pillow's JPEG decoder already undoes Adobe's inverted CMYK
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.ascontiguousarray(np.asarray(im.convert("RGB"))), None


def load_photo(path: str | Path, **limits) -> Photo:
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise _reject(path, "is a directory, not an image file", "remove it from the inbox") from None
    except OSError as e:
        raise _reject(path, f"cannot read file ({e.strerror})", "check permissions") from None
    photo = decode_photo(data, name=str(path), **limits)
    photo.info["sha256"] = content_hash(data)
    return photo


def resize_long_side(img: np.ndarray, long_side: int, resample=Image.Resampling.LANCZOS) -> np.ndarray:
    h, w = img.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return img
    return np.asarray(Image.fromarray(img).resize(size, resample))


def fit_size(w: int, h: int, long_side: int, multiple: int = 1) -> tuple[int, int]:
    """(w, h) scaled so the long side is `long_side`, each rounded to `multiple`."""
    s = long_side / max(w, h)
    return (max(multiple, round(w * s / multiple) * multiple),
            max(multiple, round(h * s / multiple) * multiple))


def save_png(path: str | Path, arr: np.ndarray, compress_level: int = 1) -> Path:
    """Atomic PNG write. Level 1 compresses large flat rasters well at a fraction of level 6's time."""
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG", compress_level=compress_level)
    return Path(path)


def load_png(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


def load_mask(path: str | Path) -> np.ndarray:
    """Boolean mask from an 8-bit PNG."""
    return load_png(path) > 127


def save_mask(path: str | Path, mask: np.ndarray) -> Path:
    return save_png(path, (mask.astype(np.uint8) * 255))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 when both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def resize_mask(mask: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    if mask.shape[::-1] == tuple(size_wh):
        return mask.astype(bool)
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize(size_wh, Image.Resampling.BILINEAR)
    return np.asarray(im) > 127


def thumbnail_png(img: np.ndarray, long_side: int = 128, max_bytes: int = 8000) -> bytes:
    """Small PNG (for a markdown data-URI in the UI), shrunk until it fits `max_bytes`."""
    side = long_side
    while True:
        small = resize_long_side(img, side, Image.Resampling.BOX if img.ndim == 3 else Image.Resampling.NEAREST)
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, format="PNG", optimize=True)
        if buf.tell() <= max_bytes or side <= 32:
            return buf.getvalue()
        side = int(side * 0.8)
