"""`v2v models pull [NAMES]`, `v2v models verify` and `v2v doctor` (argparse sub-commands)."""
from __future__ import annotations

import argparse
import os

from v2v_resources.models.manifest import models_root

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _store(args):
    from v2v_resources.models.verify import ModelStore

    return ModelStore(args.models, args.manifest)


def cmd_pull(args) -> int:
    from v2v_resources.models.hub import pull

    os.environ.pop("HF_HUB_OFFLINE", None)      # pulling is the one command that goes online
    pull(_store(args), args.names or None, force=args.force, progress=not args.quiet)
    return 0


def cmd_verify(args) -> int:
    store = _store(args)
    bad = 0
    for st in store.verify_all(args.names or None):
        required = store.manifest.entry(st.name).required
        bad += not st.ok and required
        print(f"{st.state.value:<10} {st.name:<18} {st.path}" + ("" if st.ok else f"  ({st.detail})"))
    print(f"{bad} required model(s) not present and verified under {store.root}" if bad else
          f"all required models verified under {store.root}")
    return 1 if bad else 0


def cmd_doctor(args) -> int:
    from v2v_resources.models.doctor import run_checks
    from v2v_resources.settings import load_settings

    settings = load_settings(args.config) if args.config else load_settings()
    backends = {p: settings.backend(p) for p in ("phase1", "phase2", "phase3")}
    checks = run_checks(_store(args), backends)
    for c in checks:
        print(f"[{_MARK[c.level]}] {c.topic}: {c.detail}")
    fails = sum(c.level == "fail" for c in checks)
    print(f"{fails} problem(s) to fix" if fails else "ready")
    return 1 if fails else 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None, help=f"model volume (default $V2V_MODELS or {models_root()})")
    p.add_argument("--manifest", default=None, help="manifest (default configs/models.yaml)")


def add_commands(subparsers) -> None:
    models = subparsers.add_parser("models", help="pull and verify model weights")
    msub = models.add_subparsers(dest="models_command", required=True)
    pl = msub.add_parser("pull", help="download models (default: all with a source), verify, record sha256")
    pl.add_argument("names", nargs="*")
    pl.add_argument("--force", action="store_true", help="download again even if present")
    pl.add_argument("--quiet", action="store_true", help="no progress bars")
    _model_args(pl)
    pl.set_defaults(func=cmd_pull)
    vf = msub.add_parser("verify", help="report each model present / missing / corrupt / unverified")
    vf.add_argument("names", nargs="*")
    _model_args(vf)
    vf.set_defaults(func=cmd_verify)
    dr = subparsers.add_parser("doctor", help="check Python, torch, GPU, models, disk and the Dagster instance")
    dr.add_argument("--config", default=None, help="settings file (default configs/default.yaml)")
    _model_args(dr)
    dr.set_defaults(func=cmd_doctor)
