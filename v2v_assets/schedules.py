"""Nightly: re-materialise missing, failed and stale images as contiguous range runs (insertion order)."""
from __future__ import annotations

import json

import dagster as dg

from v2v_resources.models.verify import ModelStore
from v2v_resources.phases import Registry
from v2v_resources.phases.plan import stale_keys
from v2v_resources.settings import Settings
from v2v_resources.storage import Home

from .jobs import JOB_NAME
from .partitions import images_partitions
from .resources import V2VConfig, V2VHome
from .sensors import batch_run_requests, group_by_options

RECIPE_PREFIX = "recipe/"


def recorded_recipes(instance: dg.DagsterInstance, asset: str) -> dict[str, dict]:
    """partition → the recipe recorded with its latest materialisation."""
    latest: dict[str, dict] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetKey(asset), limit=1000, cursor=cursor, ascending=False)
        for rec in page.records:
            mat = rec.asset_materialization
            if mat and mat.partition and mat.partition not in latest:
                latest[mat.partition] = {k.removeprefix(RECIPE_PREFIX): v.value for k, v in mat.metadata.items()
                                         if k.startswith(RECIPE_PREFIX)}
        if not page.has_more:
            return latest
        cursor = page.cursor


def contiguous_blocks(keys: list[str], todo: list[str]) -> list[list[str]]:
    """Split `todo` into runs of keys adjacent in `keys` (a range run covers every key between its ends)."""
    want, blocks, cur = set(todo), [], []
    for k in keys:
        if k in want:
            cur.append(k)
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks + ([cur] if cur else [])


def plan(instance: dg.DagsterInstance, registry: Registry, config: V2VConfig, home: Home) -> list[str]:
    """Keys (insertion order) where any phase is missing, failed or produced by other code or parameters than
    `config` (with each image's own options on top) asks for now."""
    keys = list(instance.get_dynamic_partitions(images_partitions.name))
    recorded = {p.name: recorded_recipes(instance, p.name) for p in registry}
    return stale_keys(registry, lambda k: config.settings_for(home, k), ModelStore(), keys, recorded)


def nightly_backfill(definition_settings: Settings, registry: Registry) -> dg.ScheduleDefinition:
    """The cron is fixed when the definitions load; everything else is read from the run settings at each tick."""

    @dg.schedule(job_name=JOB_NAME, cron_schedule=definition_settings.orchestration.nightly_cron,
                 default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
                 description="Re-materialises missing, failed and stale images, capped per night.")
    def nightly_backfill(context: dg.ScheduleEvaluationContext, v2v_home: V2VHome, v2v_config: V2VConfig):
        settings, home = v2v_config.settings, v2v_home.home
        keys = list(context.instance.get_dynamic_partitions(images_partitions.name))
        todo = plan(context.instance, registry, v2v_config, home)[: settings.orchestration.nightly_max_images]
        if not todo:
            return dg.SkipReason("every image is materialised and up to date")
        stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
        # Images handed in with their own options run with them, as the inbox sensor started them.
        return [rr for options, group in group_by_options(home, todo).items()
                for block in contiguous_blocks(keys, group)
                for rr in batch_run_requests(block, settings, reason=f"nightly-{stamp}", options=json.loads(options))]

    return nightly_backfill
