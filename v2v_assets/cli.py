"""The `v2v` command: process one file, draw samples, run the demo batch through Dagster, manage models."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from v2v_resources.errors import V2VError



def _home(args):
    from v2v_resources.storage import Home

    return Home(Path(args.home).resolve() if getattr(args, "home", None) else Home.from_env().root).ensure()


def prepare_instance(home) -> Path:
    """Point DAGSTER_HOME at the home's instance, with configs/dagster.yaml applied."""
    from v2v_resources.settings import CONFIG_DIR

    dh = home.dagster_home
    dh.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_DIR / "dagster.yaml", dh / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dh)
    os.environ["V2V_HOME"] = str(home.root)
    return dh


# ------------------------------------------------------------------------------------------- process
def cmd_process(args) -> int:
    from v2v_resources.imaging import partition_key
    from v2v_resources.palette import Palette
    from v2v_resources.phases import REGISTRY, Engines
    from v2v_resources.settings import load_settings
    from v2v_resources.storage import Home, sha256_file

    src = Path(args.input)
    overrides: dict = {}
    if args.backend:
        overrides.update({p.backend_section: {"backend": args.backend} for p in REGISTRY if p.backend_section})
    if args.palette:
        pal = Palette.parse(args.palette)
        overrides["palette"] = {"name": pal.name, "colors": list(pal.colors)}
    settings = load_settings(args.config, preset=args.preset, overrides=overrides)
    if not src.is_file():
        raise V2VError("no such file" if not src.exists() else "not a regular file", file=str(src),
                       phase="intake", fix="give the path of an image file")
    user_home = Home.from_env().ensure()
    engines = Engines(settings, user_home.cache, home=user_home)   # built when first needed: bad input fails first
    with tempfile.TemporaryDirectory(prefix="v2v-process-") as tmp:
        home = Home(Path(tmp)).ensure()
        key = partition_key(src.name, sha256_file(src))
        staged = home.path("photo", key, "source" + src.suffix.lower())
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, staged)
        for phase in REGISTRY:
            try:
                outcome = phase.run(home, key, settings, engines.get(phase.name))
                outcome.raise_if_blocked()
            except V2VError as e:
                e.file = str(src)  # the user's path, not the internal key
                raise
            for c in outcome.checks:
                if not c.passed:
                    print(f"warning: {src} [{outcome.asset}] {c.name}: {c.description}", file=sys.stderr)
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(outcome.files["svg"], out)
        if args.preview and "preview" in outcome.files:
            Path(args.preview).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(outcome.files["preview"], args.preview)
    engines.close()
    m = outcome.metadata
    print(f"{out}: {int(m.get('paths', 0))} paths, {m.get('svg_bytes', 0)} bytes, "
          f"agreement {float(m.get('agreement', 0)):.2%}, palette {engines.palette.name} "
          f"({len(engines.palette)} colours)")
    return 0


# ------------------------------------------------------------------------------------------- samples
def cmd_samples(args) -> int:
    from v2v_resources.samples import generate_samples

    paths = generate_samples(Path(args.out), args.n, seed=args.seed)
    for p in paths:
        print(p)
    return 0


# ------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from .demo import run_demo

    home = _home(args)
    prepare_instance(home)
    return run_demo(home, args.n, args.seed, args.verbose)


def cmd_ui(args) -> int:
    from .ui import run_ui

    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    return run_ui(prepare_instance(_home(args)), args.host, args.port, workspace)


# ------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2v", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("process", help="one photo → SVG (+ preview) with the same engines, no Dagster")
    pr.add_argument("input")
    pr.add_argument("output", help="the SVG to write")
    pr.add_argument("--preview", help="also write the PNG preview here")
    pr.add_argument("--palette", help="a palette name (configs/palettes) or RRGGBB,RRGGBB,…")
    pr.add_argument("--backend", choices=["auto", "lite", "ml"], help="backend for phases I–III")
    pr.add_argument("--config", help="a settings YAML (default: configs/default.yaml)")
    pr.add_argument("--preset", choices=["conservative", "balanced", "aggressive"])
    pr.set_defaults(func=cmd_process)

    sa = sub.add_parser("samples", help="draw synthetic vehicle photos with ground truth")
    sa.add_argument("--out", required=True)
    sa.add_argument("-n", type=int, default=4)
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(func=cmd_samples)

    de = sub.add_parser("demo", help="samples → inbox → one Dagster batch run of the whole chain")
    de.add_argument("-n", type=int, default=4)
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--home", help="v2v home (default $V2V_HOME or ./.v2v)")
    de.add_argument("--verbose", action="store_true", help="show the run's whole log instead of writing it to a file")
    de.set_defaults(func=cmd_demo)

    ui = sub.add_parser("ui", help="the Dagster UI (dagster dev) over this home's instance; Ctrl-C stops all of it")
    ui.add_argument("--home")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    ins = sub.add_parser("instance", help="prepare $V2V_HOME/dagster_home and print its path")
    ins.add_argument("--home")
    ins.set_defaults(func=lambda a: print(prepare_instance(_home(a))) or 0)

    from . import cli_api, cli_host, cli_models, cli_train

    for commands in (cli_models, cli_train, cli_host, cli_api):
        commands.add_commands(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except V2VError as e:
        print(f"v2v: error: {e.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line for users; V2V_DEBUG=1 shows the traceback
        if os.environ.get("V2V_DEBUG"):
            raise
        print(f"v2v: internal error: {type(e).__name__}: {e} (rerun with V2V_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
