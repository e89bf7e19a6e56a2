"""`v2v doctor`: can this machine run the pipeline, and with which backends?

Each check is one line with a level: ok, warn (works, but worth knowing) or fail (something required is
missing; the command exits non-zero).
"""
from __future__ import annotations

import importlib.metadata
import ipaddress
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from .verify import ModelStore, pull_command

MIN_FREE_DISK_GB = 5.0


@dataclass(frozen=True)
class Check:
    level: str          # "ok" | "warn" | "fail"
    topic: str
    detail: str


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_runtime() -> list[Check]:
    out = [Check("ok", "python", f"{platform.python_version()} ({platform.machine()})")]
    try:
        import torch
    except ImportError as e:
        return out + [Check("fail", "torch", f"not importable: {e}")]
    out.append(Check("ok", "torch", f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(Check("ok", f"gpu {i}", f"{torch.cuda.get_device_name(i)}: {free / 1e9:.1f} GB free of "
                                               f"{total / 1e9:.1f} GB"))
    else:
        out.append(Check("warn", "gpu", "no CUDA device: ml backends run on CPU (slow); lite backends are fine"))
    for pkg, required in (("vtracer", True), ("diffusers", True), ("transformers", True), ("spandrel", True),
                          ("segment-anything", True), ("peft", False), ("xformers", False)):
        v = _version(pkg)
        level = "ok" if v else ("fail" if required else "warn")
        note = v or ("missing" + ("" if required else {"peft": ": a style LoRA cannot load",
                                                        "xformers": ": SDPA attention is used"}[pkg]))
        out.append(Check(level, pkg, note))
    return out


def check_models(store: ModelStore, backends: dict[str, str] | None = None) -> list[Check]:
    """A required model is a failure when its phase's backend is `ml` (or unknown), a warning under `auto`
    (that phase falls back to lite) and only informative under `lite`."""
    out = []
    for st in store.verify_all():
        entry = store.manifest.entry(st.name)
        if st.ok:
            out.append(Check("ok", f"model {st.name}", f"present at {st.path}"))
            continue
        if not entry.required:
            hint = f"`{pull_command(st.name)}`" if entry.source else f"yours to supply at {st.path}"
            out.append(Check("ok", f"model {st.name}", f"optional, {st.state.value}: {entry.phase} runs without "
                                                        f"it ({hint})"))
            continue
        backend = (backends or {}).get(entry.phase, "ml")
        level = {"ml": "fail", "lite": "ok"}.get(backend, "warn")
        fallback = {"auto": f"; {entry.phase} uses lite", "lite": f"; not needed, {entry.phase} is lite"}
        out.append(Check(level, f"model {st.name}", f"{st.state.value}: {st.detail}"
                         + fallback.get(backend, "") + f" -> `{pull_command(st.name)}`"))
    return out


def check_disk(path: Path) -> Check:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    return Check("ok" if free >= MIN_FREE_DISK_GB else "warn", f"disk {path}", f"{free:.1f} GB free")


def check_dagster(dagster_home: str | None) -> Check:
    if not dagster_home:
        return Check("warn", "dagster instance", "DAGSTER_HOME not set: runs go to a temporary instance "
                                                 "(`v2v instance` prepares one)")
    home = Path(dagster_home)
    if not (home / "dagster.yaml").is_file():
        return Check("fail", "dagster instance", f"{home}/dagster.yaml missing (`v2v instance` writes it)")
    return Check("ok", "dagster instance", str(home))


def check_ui_host(host: str | None) -> Check:
    """Dagster's UI has no authentication: binding beyond loopback exposes run launching to the network."""
    host = host or "127.0.0.1"
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if local:
        return Check("ok", "ui bind", host)
    return Check("warn", "ui bind", f"V2V_UI_HOST={host}: the Dagster UI (no login) is reachable beyond this "
                                    "machine; put it behind an authenticating proxy or use 127.0.0.1")


def check_hosts(host_settings) -> list[Check]:
    """Each `v2v host` the settings send GPU work to (host.urls): ready, warming, or unreachable."""
    if not host_settings.urls:
        return [Check("ok", "model hosts", "none configured: GPU phases load their engines in each step")]
    from ..host.client import HostClient

    out = []
    for url, st in HostClient.from_settings(host_settings.urls, host_settings).status().items():
        detail = f"{st.get('state')} {st.get('detail') or ''}".strip()
        out.append(Check("ok" if st.get("ready") else "fail", f"model host {url}", detail))
    return out


def run_checks(store: ModelStore, backends: dict[str, str] | None = None, env: dict | None = None,
               host_settings=None) -> list[Check]:
    env = os.environ if env is None else env
    return (check_runtime() + check_models(store, backends) + [check_disk(store.root),
                                                     check_dagster(env.get("DAGSTER_HOME")),
                                                     check_ui_host(env.get("V2V_UI_HOST"))]
            + (check_hosts(host_settings) if host_settings is not None else []))
