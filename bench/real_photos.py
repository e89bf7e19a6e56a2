"""The lite backends on real photos and on the synthetic samples, through the product's own phase functions.

    .venv/bin/python bench/real_photos.py [--photos DIR] [--samples 12] [--variants all] [--out bench/out]

Each photo of DIR (default `../shared/eval/real-dev/` next to the repository, or $V2V_REAL_DEV) goes through
the registered phases (photo → clean_plate → illustration → palette_raster → vector_svg) with
every phase on its lite backend, as `v2v process --backend lite` runs them. Per photo it reports:
- whether every on-vehicle point of `points.tsv` is opaque and every off-vehicle point transparent in the
  final preview (a point counts as opaque when most of a ±1 %-of-the-long-side window round it is);
- whether the listed text is still readable by tesseract (when installed) in the original photo, in phase
  I's clean plate and in the final preview; the photo passes when none is readable in the preview;
- blocking check failures of any phase, and the seconds of phases I and II.
With `--variants`, each photo is also run altered as a camera or a user would alter it (mirrored, saved
again as a JPEG, under- or over-exposed, cropped, smaller), its points moved with it: the same judgement on
photos not tuned for, a measure of how stable the lite backends are; the count of variants passed is printed.
The synthetic samples (`samples.draw_sample`) report phase I's vehicle mask IoU against their ground truth.
A contact sheet (photo | preview on a coloured background, the points drawn green when right, red when
wrong) is written to OUT/real_photos.png, and the table to OUT/real_photos.md. Photos are read in place,
never copied into the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from v2v_resources import imaging  # noqa: E402
from v2v_resources.errors import V2VError  # noqa: E402
from v2v_resources.phases import REGISTRY, Engines  # noqa: E402
from v2v_resources.samples import draw_sample  # noqa: E402
from v2v_resources.settings import load_settings  # noqa: E402
from v2v_resources.storage import Home  # noqa: E402

BACKDROP = (40, 170, 110)     # the preview is shown on this green: a white or a black body must stay visible
SHEET_ROW_HEIGHT = 360
POINT_WINDOW = 0.01           # share of the long side round a point that decides opaque / transparent


CROP = 0.04                   # share of each side the crop variant cuts off

# variant name -> (the photo altered, a point (x, y) in shares of the frame moved with it)
VARIANTS = {
    "mirror": (lambda im: im[:, ::-1], lambda x, y: (1 - x, y)),
    "jpeg90": (lambda im: im, lambda x, y: (x, y)),      # every variant is saved as a quality-90 JPEG
    "dim": (lambda im: (im * 0.8).astype(np.uint8), lambda x, y: (x, y)),
    "bright": (lambda im: (255 * (im / 255) ** 0.8).astype(np.uint8), lambda x, y: (x, y)),
    "crop": (lambda im: im[round(CROP * im.shape[0]):round((1 - CROP) * im.shape[0]),
                           round(CROP * im.shape[1]):round((1 - CROP) * im.shape[1])],
             lambda x, y: ((x - CROP) / (1 - 2 * CROP), (y - CROP) / (1 - 2 * CROP))),
    "768px": (lambda im: imaging.resize_long_side(im, 768), lambda x, y: (x, y)),
    "512px": (lambda im: imaging.resize_long_side(im, 512), lambda x, y: (x, y)),
}


def write_variant(src: Path, name: str, folder: Path) -> Path:
    """The photo `src` altered by variant `name`, saved under `folder` as a quality-90 JPEG."""
    alter = VARIANTS[name][0]
    out = folder / f"{src.stem}.{name}.jpg"
    rgb = np.ascontiguousarray(alter(imaging.load_photo(src).rgb))
    cv2.imwrite(str(out), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def moved_points(pts: dict, name: str) -> dict:
    move = VARIANTS[name][1]
    return {**pts, "on": [move(x, y) for x, y in pts["on"]], "off": [move(x, y) for x, y in pts["off"]]}


def default_photos() -> Path:
    return Path(os.environ.get("V2V_REAL_DEV") or ROOT.parent / "shared" / "eval" / "real-dev")


def read_points(tsv: Path) -> dict[str, dict]:
    def pts(field: str) -> list[tuple[float, float]]:
        return [tuple(float(v) for v in p.split(",")) for p in field.split(";") if p.strip()]

    out = {}
    for line in tsv.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t") + ["", "", ""]
        out[cols[0]] = {"on": pts(cols[1]), "off": pts(cols[2]),
                        "text": [t.strip() for t in cols[3].split(",") if t.strip()]}
    return out


def run_chain(src: Path, engines: Engines) -> dict:
    """The registered phases on one file, as `v2v process` chains them; blocking failures are recorded, not
    raised, so that later phases still show what they make of it."""
    with tempfile.TemporaryDirectory(prefix="v2v-bench-") as tmp:
        home = Home(Path(tmp)).ensure()
        key = imaging.partition_key(src.name, imaging.content_hash(src.read_bytes()))
        staged = home.path("photo", key, "source" + src.suffix.lower())
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, staged)
        res: dict = {"failed": [], "seconds": {}, "metadata": {}}
        t0 = time.perf_counter()
        for phase in REGISTRY:
            try:
                outcome = phase.run(home, key, engines.settings, engines.get(phase.name))
            except V2VError as e:
                res["failed"].append(f"{phase.name}: {e}")
                break
            res["seconds"][phase.name] = outcome.seconds
            res["metadata"][phase.name] = outcome.metadata
            res["failed"] += [f"{phase.name}: {c.name}: {c.description}" for c in outcome.failed_checks]
        res["total_s"] = time.perf_counter() - t0
        for asset, name, field in (("photo", "photo.png", "photo"), ("clean_plate", "clean.png", "clean"),
                                   ("clean_plate", "vehicle_mask.png", "mask")):
            p = home.path(asset, key, name)
            if p.exists():
                res[field] = imaging.load_mask(p) if field == "mask" else imaging.load_png(p)
        pv = home.path("vector_svg", key, f"{key}.png")
        res["preview"] = np.asarray(imaging.Image.open(pv).convert("RGBA")) if pv.exists() else None
        return res


def opaque_at(alpha: np.ndarray, x: float, y: float) -> bool:
    h, w = alpha.shape
    r = max(1, round(POINT_WINDOW * max(h, w)))
    cx, cy = min(w - 1, round(x * w)), min(h - 1, round(y * h))
    return bool((alpha[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1] > 127).mean() > 0.5)


def on_backdrop(rgba: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4].astype(np.float32) / 255
    return (rgba[..., :3] * a + np.array(BACKDROP, np.float32) * (1 - a)).astype(np.uint8)


def tesseract_words(rgb: np.ndarray) -> str | None:
    """Everything tesseract reads in the image (sparse-text and page modes), upper case, letters and digits
    only; None when tesseract is not installed."""
    if not shutil.which("tesseract"):
        return None
    text = []
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "ocr.png"
        cv2.imwrite(str(p), cv2.cvtColor(imaging.resize_long_side(rgb, 2048), cv2.COLOR_RGB2BGR))
        for psm in ("11", "3"):
            out = subprocess.run(["tesseract", str(p), "stdout", "--psm", psm], capture_output=True, text=True)
            text.append(out.stdout)
    return re.sub(r"[^A-Z0-9]", "", " ".join(text).upper())


def readable(words: str | None, wanted: list[str]) -> list[str] | None:
    if words is None:
        return None
    return [t for t in wanted if re.sub(r"[^A-Z0-9]", "", t.upper()) in words]


def draw_points(img: np.ndarray, points: list, want_opaque: bool, alpha: np.ndarray | None) -> np.ndarray:
    img = img.copy()
    h, w = img.shape[:2]
    for x, y in points:
        ok = alpha is not None and opaque_at(alpha, x, y) == want_opaque
        c = (0, 230, 0) if ok else (255, 0, 0)
        centre, r = (round(x * w), round(y * h)), max(4, round(0.012 * max(h, w)))
        if want_opaque:
            cv2.circle(img, centre, r, c, -1)
        else:
            cv2.drawMarker(img, centre, c, cv2.MARKER_TILTED_CROSS, 2 * r, max(2, r // 2))
        cv2.circle(img, centre, r + 2, (0, 0, 0), 1)
    return img


def sheet_row(photo: np.ndarray, preview_rgba: np.ndarray | None, label: str, pts: dict | None) -> np.ndarray:
    h = SHEET_ROW_HEIGHT
    left = cv2.resize(photo, (round(photo.shape[1] * h / photo.shape[0]), h), interpolation=cv2.INTER_AREA)
    if preview_rgba is None:
        right = np.full_like(left, 80)
    else:
        right = cv2.resize(on_backdrop(preview_rgba), left.shape[1::-1], interpolation=cv2.INTER_AREA)
    if pts:
        alpha = preview_rgba[..., 3] if preview_rgba is not None else None
        right = draw_points(draw_points(right, pts["on"], True, alpha), pts["off"], False, alpha)
    row = np.concatenate([left, np.full((h, 8, 3), 255, np.uint8), right], axis=1)
    cv2.putText(row, label, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(row, label, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return row


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)


def judge(src: Path, pts: dict, engines: Engines, have_ocr: bool) -> tuple[dict, str, dict]:
    """One photo through the chain, judged by its points and text: the chain's result, the table line and
    the record for the JSON summary."""
    r = run_chain(src, engines)
    alpha = r["preview"][..., 3] if r["preview"] is not None else None
    on_ok = sum(opaque_at(alpha, x, y) for x, y in pts["on"]) if alpha is not None else 0
    off_ok = sum(not opaque_at(alpha, x, y) for x, y in pts["off"]) if alpha is not None else 0
    read = {k: readable(tesseract_words(r[k]), pts["text"]) if k in r and r[k] is not None else None
            for k in ("photo", "clean")}
    read["preview"] = readable(tesseract_words(on_backdrop(r["preview"])), pts["text"]) \
        if r["preview"] is not None else None
    text_ok = not read["preview"] if have_ocr else True
    passed = (alpha is not None and on_ok == len(pts["on"]) and off_ok == len(pts["off"]) and text_ok
              and not r["failed"])
    fmt = lambda v: "n/a" if v is None else (",".join(v) or "-")  # noqa: E731
    s = r["seconds"]
    line = (f"| {src.name} | {on_ok}/{len(pts['on'])} | {off_ok}/{len(pts['off'])} | "
            f"{fmt(read['photo'])} / {fmt(read['clean'])} / {fmt(read['preview'])} | "
            f"{'; '.join(r['failed']) or '-'} | {s.get('clean_plate', 0):.2f} | "
            f"{s.get('illustration', 0):.2f} | {r['total_s']:.2f} | {'yes' if passed else 'NO'} |")
    result = {"photo": src.name, "on": on_ok, "on_total": len(pts["on"]), "off": off_ok,
              "off_total": len(pts["off"]), "read": read, "failed": r["failed"], "passed": passed,
              "seconds": {k: round(v, 3) for k, v in s.items()}, "total_s": round(r["total_s"], 3)}
    return r, line, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=default_photos())
    ap.add_argument("--samples", type=int, default=12, help="synthetic samples (seeds 0..N-1)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--config", default=None)
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated alterations of each photo to judge too ({', '.join(VARIANTS)}), or all")
    args = ap.parse_args(argv)

    settings = load_settings(args.config, overrides={p.backend_section: {"backend": "lite"} for p in REGISTRY if p.backend_section})
    engines = Engines(settings, Home.from_env().ensure().cache)
    args.out.mkdir(parents=True, exist_ok=True)
    have_ocr = shutil.which("tesseract") is not None
    points = read_points(args.photos / "points.tsv") if (args.photos / "points.tsv").is_file() else {}
    photos = sorted(p for p in args.photos.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not photos:
        print(f"no photos under {args.photos} (give --photos DIR or set V2V_REAL_DEV)", file=sys.stderr)

    lines = ["| photo | on opaque | off transparent | text read: photo / clean / preview | failed checks "
             "| I s | II s | all s | pass |", "|---|---|---|---|---|---|---|---|---|"]
    rows, results, variant_results = [], [], []
    variants = list(VARIANTS) if args.variants == "all" else [v for v in (args.variants or "").split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)} or all")
    with tempfile.TemporaryDirectory(prefix="v2v-variants-") as altered:
        for src in photos:
            pts = points.get(src.name, {"on": [], "off": [], "text": []})
            for variant in [None, *variants]:
                path = src if variant is None else write_variant(src, variant, Path(altered))
                vpts = pts if variant is None else moved_points(pts, variant)
                r, line, result = judge(path, vpts, engines, have_ocr)
                lines.append(line)
                (results if variant is None else variant_results).append({**result, "variant": variant})
                if "photo" in r and (variant is None or not result["passed"]):
                    rows.append(sheet_row(r["photo"], r["preview"],
                                          f"{path.name}  {'PASS' if result['passed'] else 'FAIL'}", vpts))
                print(line, flush=True)

    ious = []
    for seed in range(args.samples):
        rgb, truth, _ = draw_sample(seed)
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / f"sample_{seed:03d}.png"
            imaging.save_png(p, rgb)
            r = run_chain(p, engines)
        mask = r.get("mask")
        ious.append(imaging.iou(mask, truth) if mask is not None else 0.0)
        print(f"sample {seed}: phase I IoU {ious[-1]:.4f}, I {r['seconds'].get('clean_plate', 0):.2f} s, "
              f"II {r['seconds'].get('illustration', 0):.2f} s, failed: {'; '.join(r['failed']) or '-'}", flush=True)
        if seed < 3:
            rows.append(sheet_row(rgb, r["preview"], f"synthetic {seed}  IoU {ious[-1]:.3f}", None))

    n_pass = sum(r["passed"] for r in results)
    summary = (f"\n{n_pass}/{len(results)} photos pass; tesseract {'used' if have_ocr else 'not installed'}; "
               f"synthetic phase-I IoU median {np.median(ious):.4f}, mean {np.mean(ious):.4f}, min {min(ious):.4f}, "
               f"{sum(v < 0.95 for v in ious)} below 0.95, over {len(ious)} samples"
               if ious else f"\n{n_pass}/{len(results)} photos pass")
    if variant_results:
        per = {v: sum(r["passed"] for r in variant_results if r["variant"] == v) for v in variants}
        summary += (f"\nvariants: {sum(per.values())}/{len(variant_results)} pass ("
                    + ", ".join(f"{v} {n}/{len(photos)}" for v, n in per.items()) + ")")
    (args.out / "real_photos.md").write_text("\n".join(lines) + "\n" + summary + "\n")
    if rows:
        sheet = args.out / "real_photos.png"
        imaging.save_png(sheet, stack_rows(rows))
        print(f"contact sheet: {sheet}")
    print("\n".join(lines) + summary)
    print(json.dumps({"photos": results, "variants": variant_results, "synthetic_iou": [round(v, 4) for v in ious],
                      "synthetic_iou_median": round(float(np.median(ious)), 4) if ious else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
