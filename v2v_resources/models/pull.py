"""`v2v models pull [NAMES] [--from DIR|ARCHIVE]`: fetch, check, install and lock each model.

From the network: Hugging Face repos through huggingface_hub (HF_ENDPOINT or `endpoint`), plain URLs through
urllib; a `convert: torchscript` download (big-lama.pt) is turned into safetensors here, once, and only that
file is kept. From a folder or a .tar/.tar.gz/.zip archive (an air-gapped machine): the same volume layout,
as `v2v models pull` wrote it on a connected machine, copied file by file and checked against the manifest's
digests or else the digests in the source's own lock. Digests the manifest does not give are recorded in the
lock file, so every later load is checked against what was installed.
"""
from __future__ import annotations

import tarfile
import tempfile
import time
import zipfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelMissingError
from . import hub
from .checksum import sha256_file
from .manifest import Lock, ModelEntry
from .verify import SINGLE, ModelStore, State

PHASE = "models"


@dataclass(frozen=True)
class PullResult:
    name: str
    action: str            # "already present" | "downloaded" | "copied" | "recorded"
    path: Path
    files: int


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _manifest_digests(entry: ModelEntry) -> dict[str, str | None]:
    return dict(entry.files) if entry.is_folder else {SINGLE: entry.sha256}


def _download(entry: ModelEntry, target: Path, *, endpoint: str | None, progress: bool) -> tuple[dict, dict]:
    """(files -> sha256, extra lock info) of a fresh download of `entry` into `target`."""
    src = entry.source
    if src.repo:
        files = hub.hf_snapshot(src.repo, target, revision=src.revision, allow_patterns=src.allow_patterns,
                                endpoint=endpoint, expected={k: v for k, v in entry.files.items() if v},
                                progress=progress)
        return files, {}
    if not src.convert:
        return {SINGLE: hub.fetch_url(src.url, target, expected=entry.sha256, progress=progress)}, {}
    archive = target.with_name(src.url.rsplit("/", 1)[-1])      # staged as .v2v-partial-<name> while downloading
    archive_digest = hub.fetch_url(src.url, archive, progress=progress)
    try:
        hub.install_file(archive, target, convert=src.convert)
    finally:
        archive.unlink(missing_ok=True)    # only the converted file is kept: nothing executable stays on the volume
    digest = sha256_file(target)
    if entry.sha256 and digest != entry.sha256:
        target.unlink()
        raise ModelMissingError(f"converted sha256 {digest[:12]}… but the manifest expects {entry.sha256[:12]}…",
                                file=str(target), phase=entry.phase, fix="check the url and sha256 in the manifest")
    return {SINGLE: digest}, {"source_sha256": archive_digest, "converted_from": src.convert}


@contextmanager
def opened_source(source: str | Path):
    """A folder holding a model volume: `source` itself, or an archive of it unpacked beside nothing else."""
    source = Path(source)
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise ModelMissingError("no such folder or archive", file=str(source), phase=PHASE,
                                fix="give a model volume folder, or a .tar, .tar.gz or .zip of one")
    with tempfile.TemporaryDirectory(prefix="v2v-models-from-") as tmp:
        try:
            # tar first: an uncompressed tar ending in a .pth (itself a zip) can pass for a zip
            if tarfile.is_tarfile(source):
                with tarfile.open(source) as t:
                    t.extractall(tmp, filter="data")     # no links out, no devices, no absolute paths
            else:
                with zipfile.ZipFile(source) as z:
                    for info in z.infolist():       # zip has no extraction filter: refuse escaping names
                        if Path(info.filename).is_absolute() or ".." in Path(info.filename).parts:
                            raise ValueError(f"unsafe member name {info.filename!r}")
                    z.extractall(tmp)
        except (tarfile.TarError, zipfile.BadZipFile, ValueError, EOFError) as e:
            raise ModelMissingError(f"not a readable .tar/.tar.gz/.zip archive: {e}", file=str(source),
                                    phase=PHASE, fix="pack the volume with `tar czf models.tgz -C $V2V_MODELS .`")
        except OSError as e:
            if hub.is_disk_full(e):
                raise hub.disk_full(e, Path(tmp)) from e
            raise
        yield Path(tmp)


def _copy(entry: ModelEntry, name: str, src_root: Path, target: Path) -> tuple[dict, dict]:
    """Copy `name` from the volume at `src_root`, each file checked, into `target` atomically."""
    src, src_lock = src_root / entry.path, Lock(src_root)
    if not src.exists():
        raise ModelMissingError(f"{name} is not in the source (expected {entry.path})", file=str(src), phase=PHASE,
                                fix="pull it on a connected machine, then copy that volume")
    rels = [SINGLE] if src.is_file() else sorted(p.relative_to(src).as_posix() for p in src.rglob("*")
                                                 if p.is_file())
    want = {**src_lock.files(name), **{r: d for r, d in _manifest_digests(entry).items() if d}}
    unknown = [r for r in rels if not want.get(r)]
    if unknown:
        raise ModelMissingError(f"no digest for {', '.join(unknown)} in the manifest or the source's "
                                "manifest.lock.json", file=str(src), phase=PHASE,
                                fix="copy a volume written by `v2v models pull` (it carries its lock file)")
    missing = [r for r in want if r not in rels]
    if missing:
        raise ModelMissingError(f"the source's copy of {name} lacks {', '.join(missing)}", file=str(src),
                                phase=PHASE, fix="pull it again on the connected machine, then copy it")
    staging = hub.partial_path(target)
    hub.remove(staging)
    files = {}
    try:
        for rel in rels:
            dst = staging if rel == SINGLE else staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            files[rel] = hub.file_digest_copy(src if rel == SINGLE else src / rel, dst)
            if files[rel] != want[rel]:
                raise ModelMissingError(f"{rel}: sha256 {files[rel][:12]}… but expected {want[rel][:12]}…; nothing "
                                        "was kept", file=str(src if rel == SINGLE else src / rel), phase=PHASE,
                                        fix="copy the volume again; if it persists pull it again at the source")
    except OSError as e:
        hub.remove(staging)
        if hub.is_disk_full(e):
            raise hub.disk_full(e, target) from e
        raise
    except ModelMissingError:
        hub.remove(staging)
        raise
    hub.swap_into_place(staging, target)
    info = {k: v for k, v in src_lock.info(name).items() if k in ("source", "source_sha256", "converted_from")}
    return files, info


def pull(store: ModelStore, names: list[str] | None = None, *, force: bool = False, progress: bool = True,
         echo=print, endpoint: str | None = None, source: str | Path | None = None) -> list[PullResult]:
    """Fetch each named model (default: all with a source, or all the `source` volume holds) that is not
    present and verified.

    `endpoint`: a Hugging Face endpoint (default HF_ENDPOINT, else the Hub); `source`: a folder or archive
    holding a model volume, for machines without network."""
    with opened_source(source) if source else nullcontext() as src_root:
        default = [n for n, e in store.manifest.models.items()
                   if ((src_root / e.path).exists() if src_root else e.source)]
        return [_pull_one(store, name, force=force, progress=progress, echo=echo, endpoint=endpoint,
                          src_root=src_root) for name in (names or default)]


def _pull_one(store: ModelStore, name: str, *, force: bool, progress: bool, echo, endpoint: str | None,
              src_root: Path | None) -> PullResult:
    entry, target = store.manifest.entry(name), store.path(name)
    st = store.status(name, refresh=True)
    if st.ok and not force:
        echo(f"{name}: already present ({st.detail})")
        return PullResult(name, "already present", target, len(st.files))
    info: dict = {}
    if st.state is State.UNVERIFIED and not force and src_root is None:
        action = "recorded"        # there already (user-supplied, or placed by hand): adopt what is there
        files = {SINGLE: sha256_file(target)} if target.is_file() else \
            {p.relative_to(target).as_posix(): sha256_file(p) for p in sorted(target.rglob("*")) if p.is_file()}
    else:
        if st.state in (State.MISSING, State.CORRUPT) and target.exists():
            echo(f"{name}: {st.state.value} at {target} ({st.detail}); installing it again")
        if src_root is not None:
            action = "copied"
            echo(f"{name}: copying from {src_root / entry.path} …")
            files, info = _copy(entry, name, src_root, target)
        elif entry.source is None:
            raise ModelMissingError(f"{name} has no download source; you supply it", file=str(target),
                                    phase=entry.phase, fix=f"put the file at {target}, then run "
                                                           f"`v2v models pull {name}` to record its sha256")
        else:
            action = "downloaded"
            echo(f"{name}: downloading from {entry.source.repo or entry.source.url} …")
            files, info = _download(entry, target, endpoint=endpoint, progress=progress)
    source_info = info.pop("source", None) or (entry.source.model_dump(exclude_none=True) if entry.source else None)
    store.lock.record(name, files, source=source_info, at=_now(), **info)
    st = store.status(name, refresh=True)
    if not st.ok:
        raise ModelMissingError(f"{name} is {st.state.value} after pull: {st.detail}", file=str(st.bad_file),
                                phase=entry.phase, fix="check the manifest's files and digests for it")
    echo(f"{name}: {action}, {len(files)} file(s) verified at {target}")
    return PullResult(name, action, target, len(files))
