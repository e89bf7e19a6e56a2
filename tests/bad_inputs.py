"""A corpus of bad and awkward inputs, generated on the fly: (name, bytes, expected) with expected either
"ok" (decodes to RGB) or a fragment of the refusal reason."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(w=256, h=192) -> Image.Image:
    rng = np.random.default_rng(0)
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (200, 30, 30)
    return Image.fromarray(np.clip(arr + rng.integers(0, 8, arr.shape), 0, 255).astype(np.uint8))


def _bomb_png(w=30000, h=30000) -> bytes:
    """A valid PNG header claiming 900 M pixels with almost no data."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def corpus() -> list[tuple[str, bytes, str]]:
    photo = _photo()
    jpeg = _save(photo, "JPEG", quality=90)
    png = _save(photo, "PNG")
    rgba = photo.convert("RGBA")
    a = np.zeros((192, 256), np.uint8)
    a[40:150, 50:200] = 255
    rgba.putalpha(Image.fromarray(a))
    empty_alpha = photo.convert("RGBA")
    empty_alpha.putalpha(0)
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    gif_frames = [photo.convert("P"), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    gif = io.BytesIO()
    gif_frames[0].save(gif, format="GIF", save_all=True, append_images=gif_frames[1:], duration=100)
    i16 = Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257).astype(np.uint16))
    return [
        ("zero-byte.jpg", b"", "empty"),
        ("truncated.jpg", jpeg[: len(jpeg) // 3], "truncated"),
        ("truncated.png", png[: len(png) // 2], "truncated"),
        ("text.jpg", b"just some text, not a photo\n" * 10, "not a recognised image"),
        ("page.png", b"<!doctype html><html><body>hi</body></html>", "not a recognised image"),
        ("bomb.png", _bomb_png(), "decompression bomb"),
        ("one-pixel.png", _save(Image.new("RGB", (1, 1), "red"), "PNG"), "shorter side"),
        ("sliver.png", _save(Image.new("RGB", (2000, 40), "red"), "PNG"), "aspect ratio"),
        ("sixteen-bit.png", _save(i16, "PNG"), "ok"),
        ("cmyk.jpg", _save(photo.convert("CMYK"), "JPEG"), "ok"),
        ("palette-transparent.png", _save(pal, "PNG"), "ok"),
        ("rgba-cutout.png", _save(rgba, "PNG"), "ok"),
        ("rgba-empty-alpha.png", _save(empty_alpha, "PNG"), "ok"),
        ("animated.gif", gif.getvalue(), "ok"),
        ("exif-rotated.jpg", _save(photo, "JPEG", exif=exif), "ok"),
        ("grayscale.jpg", _save(photo.convert("L"), "JPEG"), "ok"),
        ("photo.webp", _save(photo, "WEBP"), "ok"),
        ("bmp.bmp", _save(photo, "BMP"), "ok"),
    ]


def awkward_images() -> list[tuple[str, bytes, str]]:
    """Image files that decode but are awkward downstream or by name (distinct content from `corpus()`)."""
    rng = np.random.default_rng(1)
    h, w = 192, 256
    sky = np.zeros((h, w, 3), np.uint8)  # a flat sky gradient: no vehicle anywhere
    sky[..., 0] = np.linspace(90, 200, h, dtype=np.uint8)[:, None]
    sky[..., 1] = np.linspace(140, 220, h, dtype=np.uint8)[:, None]
    sky[..., 2] = 250
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    wide = np.asarray(_photo(1500, 200))  # 7.5:1, just inside the aspect-ratio limit
    named = np.asarray(_photo()).copy()
    named[:8] = 0  # differs from corpus()'s photo so it is not deduplicated against it
    return [
        ("my car ü é; $(rm -rf x) & 'q'.jpg", _save(Image.fromarray(named), "JPEG", quality=90), "ok"),
        ("sky-gradient.png", _save(Image.fromarray(sky), "PNG"), "ok"),
        ("noise.png", _save(Image.fromarray(noise), "PNG"), "ok"),
        ("extreme-aspect.jpg", _save(Image.fromarray(wide), "JPEG", quality=90), "ok"),
    ]
