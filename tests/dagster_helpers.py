"""Helpers for the Dagster tests: drop files, tick the inbox sensor, run a batch on a test instance."""
from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from v2v_assets.definitions import build_resources, defs
from v2v_assets.sensors import RANGE_END, RANGE_START, inbox_sensor, tick_inbox
from v2v_resources.phases import REGISTRY

LOCATION = "v2v"  # the code location's name in workspace.yaml
ASSETS = REGISTRY.names
PHASE_ASSETS = [a for a in defs.assets if a.key.to_user_string() in ASSETS]   # the training assets have other partitions


def drop(home, src: Path, name: str | None = None, age_s: float = 60.0) -> Path:
    """Copy a file into the inbox as if it had finished arriving `age_s` seconds ago."""
    dest = home.inbox / (name or src.name)
    shutil.copyfile(src, dest)
    t = time.time() - age_s
    os.utime(dest, (t, t))
    return dest


def sensor_context(instance, home, cursor: str | None = None):
    res = build_resources(str(home.root))
    return dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                   resources={k: res[k] for k in ("v2v_home", "v2v_config")})


def tick(instance, home, cursor: str | None = None):
    """Evaluate the inbox sensor once and apply its partition requests, as the daemon would."""
    return tick_inbox(instance, defs, build_resources(str(home.root)), cursor)


def materialize_range(instance, home, first: str, last: str, selection=None, **config):
    """One batch run over the insertion-order range first..last (in-process executor)."""
    return dg.materialize(
        PHASE_ASSETS, instance=instance, resources=build_resources(str(home.root), **config),
        selection=selection, tags={RANGE_START: first, RANGE_END: last}, raise_on_error=False)


def check_results(result, asset: str) -> dict[tuple[str, str], bool]:
    """{(check name, partition): passed} from a materialize result."""
    out = {}
    for ev in result.get_asset_check_evaluations():
        if ev.asset_key.to_user_string() == asset:
            out[(ev.check_name, ev.partition)] = ev.passed
    return out


# Smaller sizes keep the Dagster tests quick; the engines' tests and the demo cover the full sizes.
FAST = ('{"intake": {"working_long_side": 512}, "phase2": {"generation_long_side": 512},'
        ' "phase3": {"output_long_side": 1024, "preview_long_side": 512},'
        ' "phase4": {"trace_long_side": 1024, "preview_long_side": 512}}')


@contextmanager
def in_process_workspace(instance):
    """The code location loaded in this process, as the daemons and the webserver see it (GraphQL, daemon
    iterations), without starting a gRPC code server. Dagster offers no public API for this; only the tests that
    drive daemon iterations or GraphQL use it."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="v2v_assets.definitions", attribute="defs"), location_name=LOCATION)
    with WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as ctx:
        yield ctx
