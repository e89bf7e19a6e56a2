"""Getting model files onto the volume: Hugging Face snapshots, plain URLs, local copies; all atomic.

Every transfer goes to a staging name beside its target (`.v2v-partial-<name>`) and is renamed into place only
once complete and checked, so a model's final path never holds half a download. An interrupted transfer leaves
its staging file or folder and the next pull resumes it: a plain URL from its last byte (HTTP range request); a
Hugging Face snapshot keeps its completed files (huggingface_hub resumes a dropped connection by itself within a
call, but deletes a half file when it gives up, so that one file starts again). A digest mismatch or a full disk
deletes the staging. Every failure is one `V2VError` line.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelMissingError, TransientError
from ..storage import TMP_PREFIX
from .checksum import sha256_file

PHASE = "models"
PARTIAL = ".v2v-partial-"
CHUNK = 1 << 20


def partial_path(target: Path) -> Path:
    return target.with_name(PARTIAL + target.name)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def swap_into_place(staging: Path, target: Path) -> None:
    """Rename the complete `staging` file or folder to `target`, replacing what was there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if staging.is_dir() and target.exists():
        old = target.with_name(f"{TMP_PREFIX}{target.name}.old")
        remove(old)
        target.replace(old)
        staging.replace(target)
        remove(old)
    else:
        staging.replace(target)


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full(e: OSError, where: Path) -> TransientError:
    return TransientError(f"disk full while writing ({e.strerror or e}); the partial download was deleted",
                          file=str(where), phase=PHASE, fix=f"free space on {where.parent}, then retry the pull")


def select_repo_files(folder: Path, allow_patterns: list[str] | None) -> list[str]:
    """The files of a local repo folder that a snapshot with `allow_patterns` would fetch (huggingface_hub's filter)."""
    from huggingface_hub.utils import filter_repo_objects

    rels = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(rels, allow_patterns=allow_patterns))


def install_file(src: Path, target: Path, *, link: bool = False, convert: str | None = None) -> None:
    """Put `src` at `target` atomically: hard-linked (when `link` and the file system allows) or copied, or
    converted (`convert="torchscript"`: the archive's tensors written as safetensors)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if convert:
        from .torchscript import torchscript_to_safetensors

        torchscript_to_safetensors(src, target)
        return
    staging = partial_path(target)
    remove(staging)
    if link:
        try:
            os.link(src, staging)
        except OSError:                  # another file system, or links not supported
            shutil.copyfile(src, staging)
    else:
        shutil.copyfile(src, staging)
    staging.replace(target)


# -- plain URLs --------------------------------------------------------------------------------------------

def _stream(resp, out, bar) -> None:
    while block := resp.read(CHUNK):
        out.write(block)
        bar.update(len(block))


def fetch_url(url: str, target: Path, *, expected: str | None = None, progress: bool = True) -> str:
    """Download `url` to `target` atomically, resuming a partial left by an earlier attempt; returns the sha256.

    A digest that differs from `expected` keeps nothing."""
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(target)
    start = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            if getattr(resp, "status", None) != 206:
                start = 0                        # no range support (or file://): start again
            size = int(resp.headers.get("Content-Length") or 0)
            with open(part, "ab" if start else "wb") as out, \
                    tqdm(total=(start + size) or None, initial=start, unit="B", unit_scale=True, desc=target.name,
                         disable=not progress) as bar:
                _stream(resp, out, bar)
            if size and part.stat().st_size != start + size:
                raise http.client.IncompleteRead(b"", start + size - part.stat().st_size)
    except urllib.error.HTTPError as e:
        if e.code == 416:                        # the partial is longer than the file: it is not this file
            remove(part)
        raise TransientError(f"download failed: HTTP {e.code} {e.reason}", file=url, phase=PHASE,
                             fix="check the URL in configs/models.yaml and retry the pull") from e
    except (OSError, http.client.HTTPException) as e:
        if is_disk_full(e):
            remove(part)
            raise disk_full(e, target) from e
        got = part.stat().st_size if part.exists() else 0
        raise TransientError(f"download interrupted after {got} bytes ({type(e).__name__}: {e})", file=url,
                             phase=PHASE, fix="check the network and run the pull again: it resumes") from e
    digest = sha256_file(part)
    if expected and digest != expected:
        remove(part)
        raise ModelMissingError(f"downloaded sha256 {digest[:12]}… but the manifest expects {expected[:12]}…; "
                                "nothing was kept", file=url, phase=PHASE,
                                fix="retry; if it persists the source changed: check configs/models.yaml")
    part.replace(target)
    return digest


# -- Hugging Face --------------------------------------------------------------------------------------------

@contextmanager
def hub_online():
    """huggingface_hub reads HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE once, at import (the Makefile and the test
    suite set both), so clearing the variables later changes nothing: pulling, the one command that must go
    online, switches its module constant for its own duration."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _hub_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub import errors

    return OSError, httpx2.HTTPError, errors.XetDownloadError, errors.HFValidationError


def hf_snapshot(repo: str, target: Path, *, revision: str | None, allow_patterns: list[str] | None,
                endpoint: str | None, expected: dict[str, str | None], progress: bool = True) -> dict[str, str]:
    """Fetch `repo` (the files `allow_patterns` selects) to the folder `target`; returns file -> sha256.

    Each file is checked against the sha256 the Hub lists for it (LFS files) and against `expected` (the
    manifest's digests) before the folder is renamed into place."""
    from huggingface_hub import HfApi, RepoFile, snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    from huggingface_hub import constants

    staging = partial_path(target)
    where = endpoint or constants.ENDPOINT
    (disable_progress_bars if not progress else enable_progress_bars)()
    try:
        with hub_online():
            listed = {f.path: f.lfs.sha256 for f in HfApi(endpoint=endpoint).list_repo_tree(
                repo, recursive=True, revision=revision) if isinstance(f, RepoFile) and f.lfs}
            snapshot_download(repo, revision=revision, allow_patterns=allow_patterns, local_dir=staging,
                              endpoint=endpoint)
    except _hub_errors() as e:
        if is_disk_full(e):
            remove(staging)
            raise disk_full(e, target) from e
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TransientError(f"download of {repo} from {where} failed ({type(e).__name__}: {detail}); files "
                             f"already fetched are kept in {staging.name} for the retry", file=str(target),
                             phase=PHASE, fix="check the network, HF_ENDPOINT and HF_TOKEN (gated repos), then "
                                              "run the pull again: it resumes") from e
    finally:
        enable_progress_bars()
    remove(staging / ".cache")                # huggingface_hub's resume metadata: the download is complete
    got = {p.relative_to(staging).as_posix(): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    for rel, want in [*listed.items(), *expected.items()]:
        if rel in got and want and got[rel] != want:
            remove(staging)
            raise ModelMissingError(f"{rel}: downloaded sha256 {got[rel][:12]}… but {repo} lists {want[:12]}…; "
                                    "nothing was kept", file=str(target / rel), phase=PHASE,
                                    fix="retry; if it persists check the repo and revision in configs/models.yaml")
    missing = [rel for rel in expected if rel not in got]
    if missing:
        remove(staging)
        raise ModelMissingError(f"{repo} has no {', '.join(missing)} (at the manifest's revision and allow "
                                "patterns); nothing was kept", file=str(target), phase=PHASE,
                                fix="correct the model's files or allow_patterns in configs/models.yaml")
    swap_into_place(staging, target)
    return got


def file_digest_copy(src: Path, dst: Path) -> str:
    """Copy `src` to `dst`, returning the sha256 of the bytes written."""
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(CHUNK):
            fout.write(block)
            h.update(block)
    return h.hexdigest()
