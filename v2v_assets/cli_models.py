"""`v2v models pull [NAMES] [--from DIR|ARCHIVE]`, `v2v models verify`, `v2v models smoke` and `v2v doctor`."""
from __future__ import annotations

import argparse

from v2v_resources.models.manifest import models_root

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _store(args):
    from v2v_resources.models.verify import ModelStore

    return ModelStore(args.models, args.manifest)


def cmd_pull(args) -> int:
    from v2v_resources.models.pull import pull

    # failures raise a V2VError: `v2v` prints its one line (file, reason, fix) and exits 2
    pull(_store(args), args.names or None, force=args.force, progress=not args.quiet, endpoint=args.endpoint,
         source=args.source)
    return 0


def cmd_smoke(args) -> int:
    from v2v_resources.models.smoke import smoke_test

    results = smoke_test(_store(args), args.names or None, device=args.device, echo=print)
    bad = [r for r in results if not r.ok]
    print(f"{len(bad)} model(s) failed the smoke test" if bad else f"all {len(results)} model(s) ran")
    return 1 if bad else 0


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
    checks = run_checks(_store(args), backends, host_settings=settings.host)
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
    pl.add_argument("--from", dest="source", default=None, metavar="DIR|ARCHIVE",
                    help="install from a model volume folder or a .tar/.tar.gz/.zip of one (no network)")
    pl.add_argument("--endpoint", default=None,
                    help="Hugging Face endpoint, e.g. a mirror (default $HF_ENDPOINT or the Hub)")
    _model_args(pl)
    pl.set_defaults(func=cmd_pull)
    sm = msub.add_parser("smoke", help="run each installed model once on a sample photo: shapes, ranges, timing")
    sm.add_argument("names", nargs="*")
    sm.add_argument("--device", default=None, choices=["auto", "cuda", "cpu"],
                    help="where to run (default: hardware.device of configs/default.yaml)")
    _model_args(sm)
    sm.set_defaults(func=cmd_smoke)
    vf = msub.add_parser("verify", help="report each model present / missing / corrupt / unverified")
    vf.add_argument("names", nargs="*")
    _model_args(vf)
    vf.set_defaults(func=cmd_verify)
    dr = subparsers.add_parser("doctor", help="check Python, torch, GPU, models, disk and the Dagster instance")
    dr.add_argument("--config", default=None, help="settings file (default configs/default.yaml)")
    _model_args(dr)
    dr.set_defaults(func=cmd_doctor)
