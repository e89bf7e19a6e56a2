"""`v2v models pull`: download into a temp file or folder beside the target, check sha256, rename into place.

A download that fails or mismatches leaves nothing under the final name. Hugging Face sources go through
huggingface_hub (progress bars, resumable); URLs through urllib. Digests not given by the manifest are
recorded in the lock file, so every later load is checked against what was downloaded.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelMissingError, TransientError
from ..storage import TMP_PREFIX
from .checksum import sha256_file
from .manifest import ModelEntry
from .verify import SINGLE, ModelStore, State

PHASE = "models"


@dataclass(frozen=True)
class PullResult:
    name: str
    action: str            # "already present" | "downloaded" | "recorded"
    path: Path
    files: int


def fetch_url(url: str, target: Path, *, expected: str | None = None, progress: bool = True) -> str:
    """Stream `url` to `target` atomically; returns its sha256. A mismatch with `expected` keeps nothing."""
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=TMP_PREFIX, delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp_path, "wb") as out, \
                tqdm(total=int(resp.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                     desc=target.name, disable=not progress) as bar:
            while block := resp.read(1 << 20):
                out.write(block)
                h.update(block)
                bar.update(len(block))
        digest = h.hexdigest()
        if expected and digest != expected:
            raise ModelMissingError(f"downloaded sha256 {digest} but the manifest expects {expected}",
                                    file=url, phase=PHASE, fix="retry; if it persists the source changed: "
                                                               "check configs/models.yaml")
        tmp_path.replace(target)
        return digest
    except OSError as e:
        raise TransientError(f"download failed: {e}", file=url, phase=PHASE,
                             fix="check the network and retry `v2v models pull`") from e
    finally:
        tmp_path.unlink(missing_ok=True)


def _hf_fetch(entry: ModelEntry, target: Path) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    src = entry.source
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=TMP_PREFIX))
    try:
        if src.filename:
            got = Path(hf_hub_download(src.repo, src.filename, revision=src.revision, local_dir=staging))
            got.replace(target)
            return
        snapshot_download(src.repo, revision=src.revision, allow_patterns=src.allow_patterns, local_dir=staging)
        shutil.rmtree(staging / ".cache", ignore_errors=True)      # huggingface_hub's download metadata
        old = target.with_name(target.name + ".old") if target.exists() else None
        if old:
            target.replace(old)
        staging.replace(target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise TransientError(f"download of {src.repo} failed: {e}", file=str(target), phase=PHASE,
                             fix="check the network (and HF_TOKEN for gated repos), then retry") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _digests(store: ModelStore, name: str) -> dict[str, str]:
    base = store.path(name)
    if base.is_file():
        return {SINGLE: sha256_file(base)}
    return {p.relative_to(base).as_posix(): sha256_file(p) for p in sorted(base.rglob("*")) if p.is_file()}


def pull(store: ModelStore, names: list[str] | None = None, *, force: bool = False, progress: bool = True,
         echo=print) -> list[PullResult]:
    """Fetch each named model (default: all with a source) that is not present and verified."""
    results = []
    for name in names or [n for n, e in store.manifest.models.items() if e.source]:
        entry, target = store.manifest.entry(name), store.path(name)
        st = store.status(name, refresh=True)
        if st.ok and not force:
            results.append(PullResult(name, "already present", target, len(st.files)))
            echo(f"{name}: already present ({st.detail})")
            continue
        if st.state is State.UNVERIFIED and not force:
            action = "recorded"        # there already (copied in, or user-supplied): adopt it
        elif entry.source is None:
            raise ModelMissingError(f"{name} has no download source; you supply it", file=str(target),
                                    phase=entry.phase, fix=f"put the file at {target}, then run "
                                                           f"`v2v models pull {name}` to record its sha256")
        else:
            action = "downloaded"
            echo(f"{name}: downloading from {entry.source.repo or entry.source.url} …")
            if entry.source.url:
                fetch_url(entry.source.url, target, expected=entry.sha256, progress=progress)
            else:
                _hf_fetch(entry, target)
        files = _digests(store, name)
        store.lock.record(name, files, source=(entry.source.model_dump(exclude_none=True) if entry.source
                                               else None), at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        st = store.status(name, refresh=True)
        if not st.ok:
            raise ModelMissingError(f"{name} is {st.state.value} after pull: {st.detail}", file=str(st.bad_file),
                                    phase=entry.phase, fix="check the manifest's files and digests for it")
        echo(f"{name}: {action}, {len(files)} file(s) verified at {target}")
        results.append(PullResult(name, action, target, len(files)))
    return results
