"""`v2v api` (serve the HTTP API with uvicorn) and `v2v api hash-token` (argparse sub-commands)."""
from __future__ import annotations

import os
import sys


def cmd_serve(args) -> int:
    import dagster as dg
    import uvicorn

    from v2v_resources.errors import ConfigError
    from v2v_resources.settings import load_settings

    from .api import create_app
    from .cli import _home, prepare_instance

    settings = load_settings()
    if not settings.api.token_hashes:
        raise ConfigError("api.token_hashes is empty: every request would get 401", phase="api",
                          fix="run `v2v api hash-token` and add the hash it prints to api.token_hashes")
    home = _home(args)
    if not os.environ.get("DAGSTER_HOME"):   # else the operator's instance (e.g. PostgreSQL)
        prepare_instance(home)
    os.environ["V2V_HOME"] = str(home.root)
    with dg.DagsterInstance.get() as instance:
        app = create_app(home, settings, instance)
        uvicorn.run(app, host=args.host or settings.api.bind, port=args.port or settings.api.port,
                    log_level=args.log_level)
    return 0


def cmd_hash_token(args) -> int:
    from .api.auth import hash_token, new_token

    if args.stdin:
        token = sys.stdin.readline().strip()
        if not token:
            print("v2v: error: no token on stdin", file=sys.stderr)
            return 2
        print(hash_token(token))
        return 0
    token = new_token()
    print(f"token (give it to the client; it is stored nowhere): {token}")
    print(f"hash (add it to api.token_hashes):                 {hash_token(token)}")
    return 0


def add_commands(subparsers) -> None:
    api = subparsers.add_parser(
        "api", help="the HTTP API: upload photos, follow them, fetch SVGs (needs dagster-daemon on the same home)",
        description="Serve the HTTP API (default) or make a token. The daemon and this server must share "
                    "$V2V_HOME; the instance is $DAGSTER_HOME if set, else the home's own.")
    api.add_argument("--home", help="v2v home (default $V2V_HOME or ./.v2v)")
    api.add_argument("--host", help="bind address (default api.bind: 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default api.port)")
    api.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    api.set_defaults(func=cmd_serve)
    sub = api.add_subparsers(dest="api_command")
    ht = sub.add_parser("hash-token", help="make a new bearer token and print it with its hash for api.token_hashes")
    ht.add_argument("--stdin", action="store_true", help="hash the token read from stdin instead of making one")
    ht.set_defaults(func=cmd_hash_token)
