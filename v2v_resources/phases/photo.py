"""Intake: decode each dropped photo safely into the working RGB image (+ alpha mask)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import imaging
from ..errors import BadInputError
from ..settings import Settings
from ..storage import Home
from .base import CheckOutcome, Phase, PhaseOutcome, finish, thumb

NAME = "photo"
MIN_CONTRAST = 2.0   # grey levels of luminance std below which a photo is one flat colour: nothing to trace


def source_path(home: Home, key: str) -> Path:
    found = sorted(home.asset_dir(NAME, key).glob("source.*"))
    if not found:
        raise BadInputError("no source file stored for this image", file=key, phase=NAME,
                            fix="drop the photo into the inbox again")
    return found[0]


def checks(decode_error: BadInputError | None, rgb: np.ndarray | None) -> list[CheckOutcome]:
    decodable = CheckOutcome("decodable", decode_error is None, True,
                             decode_error.reason if decode_error else "decoded within the intake limits")
    if rgb is None:
        return [decodable, CheckOutcome("has_content", False, True, "not evaluated: the photo did not decode")]
    contrast = float(rgb.mean(axis=2).std())
    return [decodable, CheckOutcome("has_content", contrast >= MIN_CONTRAST, True,
                                    f"luminance std {contrast:.1f} (min {MIN_CONTRAST}: a one-colour frame "
                                    "holds no vehicle)", {"contrast": round(contrast, 3)})]


def run(home: Home, key: str, settings: Settings, engine=None) -> PhaseOutcome:
    t0 = time.perf_counter()
    src = source_path(home, key)
    lim = settings.intake
    try:
        photo = imaging.load_photo(src, max_pixels=lim.max_pixels, min_side=lim.min_side,
                                   max_aspect_ratio=lim.max_aspect_ratio)
    except BadInputError as e:
        e.file = f"{key} ({src.name})"
        return finish(home, PhaseOutcome(key, NAME, "intake", time.perf_counter() - t0, {}, {},
                                         checks(e, None), error=e), PHASE, settings)
    rgb = imaging.resize_long_side(photo.rgb, min(lim.working_long_side, max(photo.rgb.shape[:2])))
    files = {"photo": str(imaging.save_png(home.path(NAME, key, "photo.png"), rgb)), "source": str(src)}
    if photo.alpha is not None:
        alpha = imaging.resize_mask(photo.alpha > 127, (rgb.shape[1], rgb.shape[0]))
        files["alpha"] = str(imaging.save_mask(home.path(NAME, key, "alpha.png"), alpha))
    h, w = rgb.shape[:2]
    md = {"width": w, "height": h, "source_width": photo.info["source_size"][0],
          "source_height": photo.info["source_size"][1], "format": photo.info.get("format") or "",
          "mode": photo.info.get("mode") or "", "frames": photo.info.get("frames", 1),
          "has_alpha": photo.alpha is not None, "sha256": photo.info["sha256"][:16]}
    out = PhaseOutcome(key, NAME, "intake", time.perf_counter() - t0, files, md, checks(None, rgb), thumb(rgb))
    return finish(home, out, PHASE, settings)


PHASE = Phase(
    name=NAME,
    description="The dropped photo, decoded safely (bomb limit, EXIF, CMYK/16-bit/palette/alpha → RGB).",
    upstream=None, run=run, sections=("intake",),
    checks={"decodable": "The file decodes to an RGB image within the intake limits.",
            "has_content": "The decoded photo is not one flat colour."},
)
