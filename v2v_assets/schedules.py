"""Nightly: re-materialise missing, failed and stale images as contiguous range runs (insertion order)."""
from __future__ import annotations

import dagster as dg

from v2v_resources.phases import ASSETS

from .batch import CODE_VERSION_TAG
from .jobs import process_images
from .partitions import images_partitions
from .sensors import batch_run_requests
from .versions import definition_settings

_settings = definition_settings()


def latest_code_versions(instance: dg.DagsterInstance, asset: str) -> dict[str, str | None]:
    """partition → code version of its latest materialisation."""
    latest: dict[str, str | None] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetKey(asset), limit=1000, cursor=cursor)
        for rec in page.records:
            if rec.partition_key and rec.partition_key not in latest:
                latest[rec.partition_key] = (rec.asset_materialization.tags or {}).get(CODE_VERSION_TAG)
        if not page.has_more:
            return latest
        cursor = page.cursor


def keys_to_redo(instance: dg.DagsterInstance, current_versions: dict[str, str]) -> list[str]:
    """Keys (insertion order) where any phase is missing, failed or built by other code/parameters."""
    keys = list(instance.get_dynamic_partitions(images_partitions.name))
    todo = set()
    for asset in ASSETS:
        versions = latest_code_versions(instance, asset)
        todo |= {k for k in keys if k not in versions or versions[k] != current_versions[asset]}
    return [k for k in keys if k in todo]


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


@dg.schedule(job=process_images, cron_schedule=_settings.orchestration.nightly_cron,
             default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC",
             description="Re-materialises missing, failed and stale images, capped per night.")
def nightly_backfill(context: dg.ScheduleEvaluationContext):
    from .definitions import defs  # the asset graph's current code versions

    graph = defs.resolve_asset_graph()
    current = {a: graph.get(dg.AssetKey(a)).code_version for a in ASSETS}
    keys = list(context.instance.get_dynamic_partitions(images_partitions.name))
    todo = keys_to_redo(context.instance, current)[: _settings.orchestration.nightly_max_images]
    if not todo:
        return dg.SkipReason("every image is materialised and up to date")
    stamp = context.scheduled_execution_time.strftime("%Y%m%d") if context.scheduled_execution_time else "now"
    return [rr for block in contiguous_blocks(keys, todo)
            for rr in batch_run_requests(block, _settings.intake.max_batch, reason=f"nightly-{stamp}")]
