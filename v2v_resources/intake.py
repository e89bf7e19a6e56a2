"""The inbox: which files are ready, which are still being written, which do not belong.

A file is ready when its size and mtime have not changed since the previous look, or when it is older
than `settle_s` at the first look. Ready images are moved under `storage/photo/<key>/` (so the inbox
only ever holds new work); non-images, links and folders go to `quarantine/` with a `.reason.txt`.
The same content twice is one partition: a content index maps sha256 → key.

An image may carry per-image options (palette, preset, backends) in a sidecar `<image name>.options.json`
beside it; it travels with the image (to `storage/photo/<key>/options.json`, or into quarantine). `submit`
is how a program (the HTTP API) hands in bytes: it claims the content's key first, then writes the sidecar
and the image atomically into the inbox, so the sensor takes both together.
"""
from __future__ import annotations

import glob
import io
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from .errors import BadInputError
from .imaging import content_hash, partition_key, safe_stem
from .settings import Intake as IntakeSettings
from .storage import TMP_PREFIX, Home, sha256_file, write_bytes_atomic, write_json_atomic, write_text_atomic

OPTIONS_SUFFIX = ".options.json"
CLAIM_GRACE_S = 60.0   # a claimed key whose image is nowhere after this long was lost by a crashed writer


@dataclass
class Scan:
    ready: list[Path] = field(default_factory=list)
    waiting: dict[str, list[int]] = field(default_factory=dict)   # name → [size, mtime_ns]
    quarantined: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Admission:
    key: str
    digest: str
    new: bool
    source: Path


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


def quarantine(home: Home, path: Path, reason: str) -> Path:
    home.quarantine.mkdir(parents=True, exist_ok=True)
    dest = home.quarantine / path.name
    n = 1
    while dest.exists() or dest.is_symlink():
        dest = home.quarantine / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, dest)  # moves a symlink itself, never its target
    _move_sidecar(path, sidecar_path(dest))
    write_text_atomic(dest.with_name(dest.name + ".reason.txt"),
                      f"{path.name}: {reason}\nmoved from the inbox at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return dest


# ------------------------------------------------------------------------------------- options sidecar
def sidecar_path(image: Path) -> Path:
    return image.with_name(image.name + OPTIONS_SUFFIX)


def read_sidecar(image: Path) -> dict:
    """What an inbox image was handed in with: {"options": {...}, "name", "received"} ({} without a sidecar);
    raises BadInputError if it is unreadable."""
    side = sidecar_path(image)
    try:
        data = json.loads(side.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise BadInputError(f"options sidecar is not valid JSON ({e})", file=side.name, phase="intake",
                            fix='write {"options": {"palette": ..., "preset": ...}} or drop the image alone')
    if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
        raise BadInputError("options sidecar has no `options` mapping", file=side.name, phase="intake",
                            fix='write {"options": {"palette": ..., "preset": ...}}')
    return data


def _move_sidecar(image: Path, dest: Path) -> None:
    side = sidecar_path(image)
    if side.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(side, dest)


def stored_sidecar(home: Home, key: str) -> dict:
    """What an admitted image was handed in with: {"options", "name", "received"} ({} for a plain drop)."""
    try:
        return json.loads(home.path("photo", key, "options.json").read_text())
    except FileNotFoundError:
        return {}


def stored_options(home: Home, key: str) -> dict:
    """The per-image options an admitted image came with ({} for none)."""
    return stored_sidecar(home, key).get("options", {})


class UnsupportedImage(BadInputError):
    """Not an image, or not a kind of image that is taken."""


def read_header(fp: str | Path | BinaryIO) -> tuple[str, tuple[int, int]]:
    """(Pillow format, size) from the header only; raises UnsupportedImage naming what is wrong. Full decoding
    (and its errors) belongs to the photo asset."""
    try:
        with Image.open(fp) as im:
            return im.format, im.size
    except UnidentifiedImageError:
        reason = "contents are not a recognised image format"
    except Image.DecompressionBombError:
        reason = "decompression bomb: the header claims far more pixels than any photo"
    except Exception as e:
        reason = f"unreadable image header ({type(e).__name__})"
    raise UnsupportedImage(reason, phase="intake", fix="send a JPEG, PNG, WebP, TIFF, BMP or GIF photo")


def _not_image_reason(path: Path, extensions: list[str]) -> str | None:
    if path.is_symlink():
        return "symbolic link: links are not followed out of the inbox; copy the file in instead"
    if path.is_dir():
        return "a folder, not an image file; drop image files directly into the inbox"
    if not path.is_file():
        return "not a regular file"
    if path.suffix.lower() not in extensions:
        return f"extension {path.suffix or '(none)'} is not an image type ({', '.join(extensions)})"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        read_header(path)
    except BadInputError as e:
        return e.reason
    return None


def scan_inbox(home: Home, previous: dict[str, list[int]], *, extensions: list[str],
               settle_s: float = 2.0, limit: int = 1000, now: float | None = None) -> Scan:
    """Look at up to `limit` inbox entries (oldest first). Quarantines what does not belong."""
    now = time.time() if now is None else now
    scan = Scan()
    try:
        entries = list(os.scandir(home.inbox))
    except FileNotFoundError:
        return scan
    listed = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith((".part", OPTIONS_SUFFIX)):
            continue
        try:
            listed.append((entry.stat(follow_symlinks=False), entry))
        except FileNotFoundError:  # deleted between listing and stat: its owner took it back
            continue
    listed.sort(key=lambda se: (se[0].st_mtime_ns, se[1].name))
    for st, entry in listed[:limit]:
        path = Path(entry.path)
        sig = [st.st_size, st.st_mtime_ns]
        stable = previous.get(entry.name) == sig or (now - st.st_mtime) >= settle_s
        if not stable:
            scan.waiting[entry.name] = sig
            continue
        try:
            reason = _not_image_reason(path, extensions)
        except FileNotFoundError:  # deleted while we looked at it
            continue
        if reason:
            try:
                quarantine(home, path, reason)
                scan.quarantined.append((entry.name, reason))
            except FileNotFoundError:
                continue
        else:
            scan.ready.append(path)
    return scan


def _index_path(home: Home, digest: str) -> Path:
    return home.root / "index" / digest[:2] / digest


def _claim(idx: Path, key: str) -> tuple[str, bool]:
    """Claim a content's key: (the key, True) for the first claimant; (the key claimed before, False) after.
    The index entry appears whole (a hard link of a written file), so a reader never sees it empty."""
    idx.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=idx.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key)
        os.link(tmp, idx)
        return key, True
    except FileExistsError:
        claimed = idx.read_text().strip()
        if not claimed:  # written by an older, non-atomic claim that crashed: repair it
            write_text_atomic(idx, key)
        return claimed or key, False
    finally:
        os.unlink(tmp)


def _is_stored(home: Home, key: str) -> bool:
    return any(home.asset_dir("photo", key).glob("source.*"))


def admit(home: Home, path: Path) -> Admission:
    """Hash a ready file and move it under storage. Known content is recorded as an alias."""
    digest = sha256_file(path)
    key, first = _claim(_index_path(home, digest), partition_key(path.name, digest))
    if first or not _is_stored(home, key):  # not stored: claimed by an upload, or a crash before storing
        return _store_new(home, key, digest, path)
    dup = home.path("photo", key, "duplicates") / f"{safe_stem(path.name)}{path.suffix.lower()}"
    dup.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), dup)
    _move_sidecar(path, sidecar_path(dup))
    return Admission(key, digest, False, dup)


def _store_new(home: Home, key: str, digest: str, path: Path) -> Admission:
    # Journal first: if the process dies before the partition exists, the next tick re-adds it.
    _journal(home).mkdir(parents=True, exist_ok=True)
    (_journal(home) / key).touch()
    _move_sidecar(path, home.path("photo", key, "options.json"))  # before the image: it marks the key stored
    return Admission(key, digest, True, ingest_source(home, key, path))


def _journal(home: Home) -> Path:
    return home.root / "journal"


def pending_keys(home: Home) -> list[str]:
    """Keys admitted whose partition is not yet confirmed, oldest first (survives a crashed tick)."""
    j = _journal(home)
    if not j.is_dir():
        return []
    return [p.name for p in sorted(j.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))]


def confirm_pending(home: Home, keys: list[str]) -> None:
    for k in keys:
        (_journal(home) / k).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------- submit
@dataclass(frozen=True)
class Submission:
    key: str
    new: bool             # False: this content was handed in before (its first options stand)


def inbox_image(home: Home, key: str) -> Path | None:
    """The inbox file a submission wrote for `key`, while the sensor has not taken it yet."""
    for p in home.inbox.glob(f"{glob.escape(key)}.*"):
        if not p.name.endswith(OPTIONS_SUFFIX) and p.name[len(key) + 1:].isalnum():
            return p
    return None


def submit(home: Home, data: bytes, name: str, options: dict, limits: IntakeSettings,
           formats: set[str] | None = None) -> Submission:
    """Hand in an image's bytes with its options: the same key for the same content, however often and under
    whatever name. Raises UnsupportedImage (not an image, a format not in `formats` or in no inbox extension)
    or BadInputError (an image the intake limits refuse), both naming the fix."""
    try:
        fmt, (w, h) = read_header(io.BytesIO(data))
    except UnsupportedImage as e:
        e.file = name
        raise
    if formats is not None and fmt not in formats:
        raise UnsupportedImage(f"{fmt} images are not accepted", file=name, phase="intake",
                               fix=f"send one of: {', '.join(sorted(formats))}")
    ext = next((e for e in limits.extensions if Image.registered_extensions().get(e) == fmt), None)
    if ext is None:
        raise UnsupportedImage(f"{fmt} is not among the inbox extensions", file=name, phase="intake",
                               fix="add its extension to intake.extensions or convert the image")
    if w * h > limits.max_pixels or min(w, h) < limits.min_side or max(w, h) / min(w, h) > limits.max_aspect_ratio:
        raise BadInputError(f"{w}x{h} is outside the intake limits (at most {limits.max_pixels:,} pixels, "
                            f"sides at least {limits.min_side} px, aspect ratio at most {limits.max_aspect_ratio})",
                            file=name, phase="intake", fix="resize or crop the photo")
    digest = content_hash(data)
    idx = _index_path(home, digest)
    key, first = _claim(idx, partition_key(name, digest))
    # Inbox first, then storage: the sensor moves it from one to the other atomically.
    lost = not first and inbox_image(home, key) is None and not _is_stored(home, key) \
        and time.time() - idx.stat().st_mtime > CLAIM_GRACE_S
    if not (first or lost):
        return Submission(key, False)
    image = home.inbox / f"{key}{ext}"
    # The sidecar first: the image is only listed once whole, and then its options are there.
    write_json_atomic(sidecar_path(image), {"options": options, "name": name, "received": time.time()})
    write_bytes_atomic(image, data)
    return Submission(key, True)
