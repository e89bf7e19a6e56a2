"""One image through one phase: read the upstream files, run the engine, check, write the outputs.

The Dagster assets loop these over a batch; `v2v process` chains them for one file. Files live under
`Home.storage/<asset>/<key>/`; each writer is atomic and `meta.json` is written last, so its presence means
the phase finished for that key.
"""
from __future__ import annotations

import base64
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import imaging, quality
from .errors import BadInputError, QualityError
from .palette import Palette
from .settings import Settings
from .storage import Home, write_text_atomic

ASSETS = ("photo", "clean_plate", "illustration", "palette_raster", "vector_svg")


@dataclass
class PhaseOutcome:
    key: str
    asset: str
    backend: str
    seconds: float
    files: dict[str, str]
    metadata: dict                          # numbers and short strings for the UI / plots
    checks: list[quality.CheckOutcome]
    thumbnail: bytes | None = None          # small PNG for the UI
    extra: dict = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[quality.CheckOutcome]:
        return quality.blocking_failures(self.checks)

    def raise_if_blocked(self):
        bad = self.failed_checks
        if bad:
            raise QualityError("; ".join(f"{c.name}: {c.description}" for c in bad),
                               file=self.key, phase=self.asset,
                               fix="inspect the image; adjust the thresholds in configs/default.yaml "
                                   "or the run config if the bound is too strict")


def _finish(home: Home, outcome: PhaseOutcome) -> PhaseOutcome:
    meta = {"key": outcome.key, "asset": outcome.asset, "backend": outcome.backend,
            "seconds": outcome.seconds, "files": outcome.files, "metadata": outcome.metadata,
            "checks": [c.__dict__ for c in outcome.checks], **outcome.extra}
    home.write_json(outcome.asset, outcome.key, meta)
    home.path(outcome.asset, outcome.key, "failure.json").unlink(missing_ok=True)
    return outcome


def record_failure(home: Home, asset: str, key: str, error: Exception, run_id: str = "") -> dict:
    """Write `failure.json` for a key (and drop a stale meta.json so it reads as not done)."""
    info = {"key": key, "asset": asset, "error": type(error).__name__,
            "reason": getattr(error, "reason", str(error)), "fix": getattr(error, "fix", None),
            "retryable": bool(getattr(error, "retryable", False)), "run_id": run_id,
            "time": time.time()}
    home.path(asset, key, "meta.json").unlink(missing_ok=True)
    home.write_json(asset, key, info, name="failure.json")
    return info


def is_done(home: Home, asset: str, key: str) -> bool:
    return home.path(asset, key, "meta.json").is_file()


def _thumb(img: np.ndarray) -> bytes:
    return imaging.thumbnail_png(img, 128, 6000)


def thumbnail_markdown(png: bytes) -> str:
    return f"![thumbnail](data:image/png;base64,{base64.b64encode(png).decode()})"


# ---------------------------------------------------------------------------------------------- photo
def ingest_source(home: Home, key: str, source: Path) -> Path:
    """Keep the original bytes under storage (the inbox file is moved, never copied and left behind)."""
    dest = home.path("photo", key, "source" + source.suffix.lower())
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        try:
            source.replace(dest)
        except OSError:  # other filesystem: copy then remove
            shutil.copyfile(source, dest)
            source.unlink(missing_ok=True)
    return dest


def source_path(home: Home, key: str) -> Path:
    found = sorted(home.asset_dir("photo", key).glob("source.*"))
    if not found:
        raise BadInputError("no source file stored for this image", file=key, phase="photo",
                            fix="drop the photo into the inbox again")
    return found[0]


def run_photo(home: Home, key: str, settings: Settings) -> PhaseOutcome:
    t0 = time.perf_counter()
    src = source_path(home, key)
    lim = settings.intake
    try:
        photo = imaging.load_photo(src, max_pixels=lim.max_pixels, min_side=lim.min_side,
                                   max_aspect_ratio=lim.max_aspect_ratio)
    except BadInputError as e:
        e.file = f"{key} ({src.name})"
        raise
    rgb = imaging.resize_long_side(photo.rgb, min(lim.working_long_side, max(photo.rgb.shape[:2])))
    files = {"photo": str(imaging.save_png(home.path("photo", key, "photo.png"), rgb)),
             "source": str(src)}
    if photo.alpha is not None:
        alpha = imaging.resize_mask(photo.alpha > 127, (rgb.shape[1], rgb.shape[0]))
        files["alpha"] = str(imaging.save_mask(home.path("photo", key, "alpha.png"), alpha))
    h, w = rgb.shape[:2]
    md = {"width": w, "height": h, "source_width": photo.info["source_size"][0],
          "source_height": photo.info["source_size"][1], "format": photo.info.get("format") or "",
          "mode": photo.info.get("mode") or "", "frames": photo.info.get("frames", 1),
          "has_alpha": photo.alpha is not None, "sha256": photo.info["sha256"][:16]}
    out = PhaseOutcome(key, "photo", "intake", time.perf_counter() - t0, files, md,
                       quality.photo_checks(True), _thumb(rgb))
    return _finish(home, out)


# ---------------------------------------------------------------------------------------------- phase I
def run_clean_plate(home: Home, key: str, settings: Settings, sanitizer) -> PhaseOutcome:
    t0 = time.perf_counter()
    rgb = imaging.load_png(home.path("photo", key, "photo.png"))
    alpha_path = home.path("photo", key, "alpha.png")
    alpha = (imaging.load_mask(alpha_path).astype(np.uint8) * 255) if alpha_path.exists() else None
    res = sanitizer.sanitize(rgb, alpha)
    after = res.vehicle_mask if not res.erased_mask.any() else sanitizer.silhouette(res.clean, res.vehicle_mask)
    sil_iou = imaging.iou(res.vehicle_mask, after)
    area = quality.vehicle_share(res.vehicle_mask)
    vehicle_px = max(1, int(res.vehicle_mask.sum()))
    erased = float(np.logical_and(res.erased_mask, res.vehicle_mask).sum() / vehicle_px)
    files = {"clean": str(imaging.save_png(home.path("clean_plate", key, "clean.png"), res.clean)),
             "vehicle_mask": str(imaging.save_mask(home.path("clean_plate", key, "vehicle_mask.png"),
                                                   res.vehicle_mask)),
             "erased_mask": str(imaging.save_mask(home.path("clean_plate", key, "erased_mask.png"),
                                                  res.erased_mask))}
    md = {"vehicle_area": area, "erased_share": erased, "silhouette_iou": sil_iou,
          "detections": len(res.detections), "backend_reason": getattr(sanitizer, "backend_reason", ""),
          **_numbers(res.metrics)}
    checks = quality.clean_plate_checks(settings, area, erased, sil_iou)
    out = PhaseOutcome(key, "clean_plate", res.backend, time.perf_counter() - t0, files, md, checks,
                       _thumb(res.clean), {"detections": res.detections})
    return _finish(home, out)


# ---------------------------------------------------------------------------------------------- phase II
def run_illustration(home: Home, key: str, settings: Settings, steerer) -> PhaseOutcome:
    t0 = time.perf_counter()
    clean = imaging.load_png(home.path("clean_plate", key, "clean.png"))
    mask = imaging.load_mask(home.path("clean_plate", key, "vehicle_mask.png"))
    res = steerer.steer(clean, mask, seed=settings.phase2.sdxl.seed)
    files = {"illustration": str(imaging.save_png(home.path("illustration", key, "illustration.png"),
                                                  res.illustration)),
             "mask": str(imaging.save_mask(home.path("illustration", key, "mask.png"), res.mask))}
    md = {"silhouette_iou": res.silhouette_iou, "attempts": len(res.attempts),
          "width": res.illustration.shape[1], "height": res.illustration.shape[0],
          "backend_reason": getattr(steerer, "backend_reason", ""), **_numbers(res.metrics)}
    out = PhaseOutcome(key, "illustration", res.backend, time.perf_counter() - t0, files, md,
                       quality.illustration_checks(settings, res.silhouette_iou),
                       _thumb(res.illustration), {"attempts": res.attempts})
    return _finish(home, out)


# ---------------------------------------------------------------------------------------------- phase III
def run_palette_raster(home: Home, key: str, settings: Settings, engine, palette: Palette) -> PhaseOutcome:
    t0 = time.perf_counter()
    ill = imaging.load_png(home.path("illustration", key, "illustration.png"))
    mask = imaging.load_mask(home.path("illustration", key, "mask.png"))
    res = engine.run(ill, mask)
    report = {k: res.metrics[k] for k in ("palette_share", "n_colors")}  # measured on the raster by the engine
    files = {"raster": str(imaging.save_png(home.path("palette_raster", key, "raster.png"), res.raster)),
             "preview": str(imaging.save_png(home.path("palette_raster", key, "preview.png"), res.preview))}
    md = {"width": res.raster.shape[1], "height": res.raster.shape[0], "palette": palette.name,
          "colors_used": len(res.colors_used), "palette_share": report["palette_share"],
          "backend_reason": getattr(engine.upscaler, "backend_reason", ""), **_numbers(res.metrics)}
    out = PhaseOutcome(key, "palette_raster", getattr(engine.upscaler, "backend", "lite"), time.perf_counter() - t0,
                       files, md, quality.palette_checks(report, len(palette)),
                       _thumb(res.preview), {"colors_used": list(res.colors_used),
                                             "palette_colors": list(palette.colors)})
    return _finish(home, out)


# ---------------------------------------------------------------------------------------------- phase IV
def run_vector_svg(home: Home, key: str, settings: Settings, vectorizer, palette: Palette) -> PhaseOutcome:
    from .vector.safety import validate_svg

    t0 = time.perf_counter()
    raster = imaging.load_png(home.path("palette_raster", key, "raster.png"))
    res = vectorizer.run(raster)
    problems = validate_svg(res.svg, palette)
    svg_path = write_text_atomic(home.path("vector_svg", key, f"{key}.svg"), res.svg)
    files = {"svg": str(svg_path)}
    if settings.output.png_preview:
        files["preview"] = str(imaging.save_png(home.path("vector_svg", key, f"{key}.png"), res.preview))
    m = res.metrics
    md = {"svg_bytes": len(res.svg.encode()), **_numbers(m)}
    checks = quality.vector_checks(settings, problems, md["svg_bytes"], int(m.get("paths", 0)),
                                   float(m.get("agreement", 0.0)))
    out = PhaseOutcome(key, "vector_svg", "vtracer", time.perf_counter() - t0, files, md, checks,
                       _thumb(res.preview), {"problems": problems})
    return _finish(home, out)


def _numbers(d: dict) -> dict:
    """Keep scalar numbers and short strings (what the UI can plot or show)."""
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v) if isinstance(v, (float, np.floating)) else int(v)
        elif isinstance(v, str) and len(v) <= 200:
            out[k] = v
    return out
