"""The `v2v` command: process one file, draw samples, run the demo batch through Dagster, manage models."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from v2v_resources.errors import V2VError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def _home(args):
    from v2v_resources.storage import Home

    return Home(Path(args.home).resolve() if getattr(args, "home", None) else Home.from_env().root).ensure()


def prepare_instance(home) -> Path:
    """Point DAGSTER_HOME at the home's instance, with configs/dagster.yaml applied."""
    dh = home.dagster_home
    dh.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG_DIR / "dagster.yaml", dh / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dh)
    os.environ["V2V_HOME"] = str(home.root)
    return dh


# ------------------------------------------------------------------------------------------- process
def cmd_process(args) -> int:
    from v2v_resources.imaging import file_hash, partition_key
    from v2v_resources.palette import Palette
    from v2v_resources.phases import REGISTRY, Engines
    from v2v_resources.settings import load_settings
    from v2v_resources.storage import Home

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
    engines = Engines(settings, Home.from_env().ensure().cache)   # built when first needed: bad input fails first
    with tempfile.TemporaryDirectory(prefix="v2v-process-") as tmp:
        home = Home(Path(tmp)).ensure()
        key = partition_key(src.name, file_hash(src))
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
    """Samples → inbox → the inbox sensor → one batch run of the whole chain on the persistent instance."""
    import dagster as dg

    home = _home(args)
    prepare_instance(home)
    from v2v_resources.samples import generate_samples

    from .definitions import build_resources, defs, process_images_job
    from .partitions import images_partitions
    from .sensors import inbox_sensor
    from .summary import summarize

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for p in generate_samples(Path(tmp), args.n, seed=args.seed):
            if p.suffix == ".jpg":
                os.replace(p, home.inbox / p.name)
    old = time.time() - 60  # the files are complete: let the sensor take them on its first look
    for p in home.inbox.iterdir():
        os.utime(p, (old, old))
    with dg.DagsterInstance.get() as instance:
        res = build_resources(str(home.root))
        result = inbox_sensor(dg.build_sensor_context(
            instance=instance, definitions=defs, resources={k: res[k] for k in ("v2v_home", "v2v_config")}))
        for req in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        keys = [k for req in result.dynamic_partitions_requests for k in req.partition_keys]
        if not result.run_requests:
            print("demo: the inbox sensor found nothing new (these samples were processed before):")
            keys = list(instance.get_dynamic_partitions(images_partitions.name))[-args.n:]
        for rr in result.run_requests:
            print(f"demo: batch run over {rr.tags['v2v/batch_size']} images "
                  f"({rr.tags['dagster/asset_partition_range_start']} .. "
                  f"{rr.tags['dagster/asset_partition_range_end']})", flush=True)
            run = dg.execute_job(dg.reconstructable(process_images_job), instance=instance,
                                 tags={**rr.tags, "dagster/sensor_name": "inbox_sensor"},
                                 raise_on_error=False)
            print(f"demo: run {run.run_id[:8]} {'succeeded' if run.success else 'FAILED'}")
    ok = summarize(home, keys, sys.stdout)
    print(f"demo: {ok}/{len(keys)} SVGs in {time.perf_counter() - t0:.1f} s; "
          f"UI: make ui (DAGSTER_HOME={home.dagster_home})")
    return 0 if ok == len(keys) else 1


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
    de.set_defaults(func=cmd_demo)

    ins = sub.add_parser("instance", help="prepare $V2V_HOME/dagster_home and print its path")
    ins.add_argument("--home")
    ins.set_defaults(func=lambda a: print(prepare_instance(_home(a))) or 0)

    from .cli_models import add_commands

    add_commands(sub)
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
