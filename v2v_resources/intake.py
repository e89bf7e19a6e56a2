"""The inbox: which files are ready, which are still being written, which do not belong.

A file is ready when its size and mtime have not changed since the previous look, or when it is older
than `settle_s` at the first look. Ready images are moved under `storage/photo/<key>/` (so the inbox
only ever holds new work); non-images, links and folders go to `quarantine/` with a `.reason.txt`.
The same content twice is one partition: a content index maps sha256 → key.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .imaging import file_hash, partition_key, safe_stem
from .storage import Home, write_text_atomic


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
    write_text_atomic(dest.with_name(dest.name + ".reason.txt"),
                      f"{path.name}: {reason}\nmoved from the inbox at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return dest


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
        with Image.open(path) as im:
            im.size  # header only: full decoding (and its errors) belongs to the photo asset
    except UnidentifiedImageError:
        return "contents are not a recognised image format"
    except Image.DecompressionBombError:
        return "decompression bomb: the header claims far more pixels than any photo"
    except Exception as e:
        return f"unreadable image header ({type(e).__name__})"
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
        if entry.name.startswith(".") or entry.name.endswith(".part"):
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


def admit(home: Home, path: Path) -> Admission:
    """Hash a ready file and move it under storage. Known content is recorded as an alias."""
    digest = file_hash(path)
    idx = _index_path(home, digest)
    idx.parent.mkdir(parents=True, exist_ok=True)
    key = partition_key(path.name, digest)
    try:
        fd = os.open(idx, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # atomic claim of this content
    except FileExistsError:
        key = idx.read_text().strip() or key
        if not any(home.asset_dir("photo", key).glob("source.*")):
            # A crash between claiming the content and storing it: this copy becomes the source.
            write_text_atomic(idx, key)
            return _store_new(home, key, digest, path)
        dup = home.path("photo", key, "duplicates") / f"{safe_stem(path.name)}{path.suffix.lower()}"
        dup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dup)
        return Admission(key, digest, False, dup)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return _store_new(home, key, digest, path)


def _store_new(home: Home, key: str, digest: str, path: Path) -> Admission:
    # Journal first: if the process dies before the partition exists, the next tick re-adds it.
    _journal(home).mkdir(parents=True, exist_ok=True)
    (_journal(home) / key).touch()
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
