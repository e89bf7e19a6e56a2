"""`v2v host`: serve the GPU phases from one resident model host per GPU (argparse sub-command).

    v2v host --device cuda:0                 # port host.port (8765)
    v2v host --device cuda:1 --port 8766     # one per GPU
"""
from __future__ import annotations

import argparse
import logging
import sys


def cmd_host(args) -> int:
    from v2v_resources.host.server import serve
    from v2v_resources.settings import load_settings

    overrides: dict = {"host": {k: v for k, v in (("port", args.port), ("bind", args.bind),
                                                  ("max_batch", args.max_batch), ("max_wait_ms", args.max_wait_ms))
                                if v is not None}}
    if args.no_warmup:
        overrides["host"]["warmup"] = False
    settings = load_settings(args.config, overrides=overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(settings, device=args.device, models_root=args.models, manifest=args.manifest)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda:N, cuda or cpu (default: hardware.device)")
    p.add_argument("--port", type=int, default=None, help="default host.port")
    p.add_argument("--bind", default=None, help="default host.bind (127.0.0.1)")
    p.add_argument("--config", default=None, help="settings file (default $V2V_CONFIG or configs/default.yaml)")
    p.add_argument("--models", default=None, help="model volume (default $V2V_MODELS)")
    p.add_argument("--manifest", default=None, help="manifest (default configs/models.yaml)")
    p.add_argument("--max-batch", type=int, default=None, help="SDXL images per call (default host.max_batch)")
    p.add_argument("--max-wait-ms", type=float, default=None, help="default host.max_wait_ms")
    p.add_argument("--no-warmup", action="store_true", help="ready as soon as the models are loaded")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("host", help="serve phases I-III from models resident on one GPU")
    _arguments(p)
    p.set_defaults(func=cmd_host)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="v2v host", description=__doc__.split("\n")[0])
    _arguments(ap)
    return cmd_host(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
