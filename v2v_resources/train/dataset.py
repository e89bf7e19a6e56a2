"""A style training set: a folder of reference illustrations, each with a same-stem `.txt` caption.

`validate_training_set` refuses what would silently spoil a fine-tune (an empty folder, an unreadable or
too-small image, a missing or empty caption, the same image twice) with errors that name the file and the
fix; it reports every problem of the folder at once, so one pass fixes the set. No torch here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import BadInputError
from ..imaging import load_photo

PHASE = "training_set"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
MAX_ASPECT = 2.0                 # training centre-crops a square: wider sets lose most of each image
OTHER_IMAGES = (".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif")   # refused, not silently skipped


class TrainingSetError(BadInputError):
    """The training set cannot be used as it is."""


@dataclass(frozen=True)
class Example:
    image: str               # absolute path
    caption: str
    sha256: str              # of the file's bytes
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class TrainingSet:
    folder: str
    examples: tuple[Example, ...]
    ignored: tuple[str, ...]           # files that are neither images nor captions

    @property
    def digest(self) -> str:
        """Identifies the set's content (images and captions), whatever the folder is called."""
        payload = json.dumps(sorted((e.sha256, e.caption) for e in self.examples))
        return hashlib.sha256(payload.encode()).hexdigest()

    def summary(self) -> dict:
        sizes = [(e.width, e.height) for e in self.examples]
        formats: dict[str, int] = {}
        for e in self.examples:
            formats[e.format] = formats.get(e.format, 0) + 1
        return {"images": len(self.examples), "digest": self.digest, "formats": formats,
                "min_side": min(min(s) for s in sizes), "max_side": max(max(s) for s in sizes),
                "ignored": list(self.ignored)}

    def to_dict(self) -> dict:
        return {"folder": self.folder, "digest": self.digest, "examples": [asdict(e) for e in self.examples],
                "ignored": list(self.ignored)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingSet":
        return cls(d["folder"], tuple(Example(**e) for e in d["examples"]), tuple(d["ignored"]))


def _problem(path: Path, reason: str, fix: str) -> TrainingSetError:
    return TrainingSetError(reason, file=str(path), phase=PHASE, fix=fix)


def _raise_all(problems: list[TrainingSetError]) -> None:
    if not problems:
        return
    first = problems[0]
    if len(problems) > 1:
        rest = "; ".join(f"{Path(p.file).name}: {p.reason}" for p in problems[1:6])
        more = f" and {len(problems) - 6} more" if len(problems) > 6 else ""
        first = TrainingSetError(f"{first.reason} (also {len(problems) - 1} other problem(s): {rest}{more})",
                                 file=first.file, phase=PHASE, fix=first.fix)
    raise first


def _caption(image: Path) -> tuple[str | None, TrainingSetError | None]:
    txt = image.with_suffix(".txt")
    if not txt.is_file():
        return None, _problem(image, f"no caption: {txt.name} does not exist",
                              f"write the image's caption (one line, with the style's trigger word) in {txt}")
    try:
        text = " ".join(txt.read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError) as e:
        return None, _problem(txt, f"caption unreadable ({e})", "save it as UTF-8 text")
    if not text:
        return None, _problem(txt, "caption is empty", f"describe {image.name} in it, with the trigger word")
    return text, None


def validate_training_set(folder: str | Path, *, min_side: int) -> TrainingSet:
    """Every image of `folder` with its caption, or a TrainingSetError naming the first problem (and counting
    the others)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _problem(folder, "training set folder does not exist",
                       "create it and put the reference images in it, each with a same-named .txt caption")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    problems = [_problem(p, f"{p.suffix.lower()} is not a training format", "convert it to PNG")
                for p in files if p.suffix.lower() in OTHER_IMAGES]
    if not images:
        _raise_all(problems)
        raise _problem(folder, f"no images in the training set folder (looked for {', '.join(IMAGE_EXTENSIONS)})",
                       "add the reference illustrations, each with a same-named .txt caption")
    examples: list[Example] = []
    seen: dict[str, Path] = {}
    for img in images:
        caption, err = _caption(img)
        if err:
            problems.append(err)
        try:
            photo = load_photo(img, min_side=1, max_aspect_ratio=float("inf"))
        except BadInputError as e:
            problems.append(_problem(img, e.reason, f"{e.fix}; or remove it from the training set"))
            continue
        h, w = photo.rgb.shape[:2]
        if min(w, h) < min_side:
            problems.append(_problem(img, f"{w}x{h}: the shorter side must be at least {min_side} px",
                                     "use a larger image, remove it, or lower training.min_image_side"))
            continue
        if max(w, h) > MAX_ASPECT * min(w, h):
            problems.append(_problem(img, f"{w}x{h}: more than {MAX_ASPECT}:1, the square centre crop would lose "
                                          "most of it", "crop it closer to square"))
            continue
        digest = photo.info["sha256"]
        if digest in seen:
            problems.append(_problem(img, f"same content as {seen[digest].name}", "remove one of the two"))
            continue
        seen[digest] = img
        if caption is not None:
            examples.append(Example(str(img.resolve()), caption, digest, w, h, photo.info["format"] or "?"))
    _raise_all(problems)
    captions = {p.with_suffix(".txt") for p in images}
    ignored = tuple(p.name for p in files if p not in images and p not in captions)
    return TrainingSet(str(folder.resolve()), tuple(examples), ignored)
