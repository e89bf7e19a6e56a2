"""The batch loop every phase asset shares.

A run covers a contiguous range of image partitions. Each key is processed on its own: transient errors
(CUDA out of memory, I/O hiccups) are retried in place with backoff, without reloading models or redoing
the other keys; bad input, engine errors and failed blocking checks are recorded for that key only.

How results reach Dagster (notes/dagster.md §2, §5):
- every key gets its check evaluations, per partition (`AssetCheckEvaluation(partition=k)`);
- all keys good: one `Output` materialises the whole range in this run, so downstream phases continue in the
  same run, with per-partition metadata attached through `add_asset_metadata(partition_key=k)`;
- some keys failed: the good keys are materialised one by one and the step ends without its output, so
  this run's downstream steps skip; the automation sensor carries the good keys on in a follow-up run;
- failed keys stay unmaterialised, with the reason in `failure.json` and an observation on the partition.
"""
from __future__ import annotations

import time
import traceback
from typing import Callable, Iterator

import dagster as dg

from v2v_resources.errors import EngineError, TransientError, V2VError
from v2v_resources.quality import CHECKS
from v2v_resources.phases import PhaseOutcome, is_done, record_failure, thumbnail_markdown
from v2v_resources.storage import Home, remove_orphan_temps

CODE_VERSION_TAG = "dagster/code_version"
TRANSIENT_RETRIES = 2
TRANSIENT_BACKOFF_S = 2.0


def _metadata(outcome: PhaseOutcome) -> dict:
    md: dict = {f"v2v/{k}": v for k, v in outcome.metadata.items()}
    md["seconds"] = dg.MetadataValue.float(round(outcome.seconds, 4))
    md["backend"] = outcome.backend
    for name, path in outcome.files.items():
        md[f"path/{name}"] = dg.MetadataValue.path(path)
    if outcome.thumbnail:
        md["preview"] = dg.MetadataValue.md(thumbnail_markdown(outcome.thumbnail))
    return md


def _check_evaluations(context, outcome_checks, key: str) -> Iterator[dg.AssetCheckEvaluation]:
    for c in outcome_checks:
        yield dg.AssetCheckEvaluation(
            asset_key=context.asset_key, check_name=c.name, passed=c.passed, partition=key,
            severity=dg.AssetCheckSeverity.ERROR if c.blocking else dg.AssetCheckSeverity.WARN,
            description=c.description, metadata={k: v for k, v in c.metadata.items()
                                                  if isinstance(v, (int, float, str, bool))},
        )


def _run_one(context, key: str, run: Callable[[str], PhaseOutcome]) -> PhaseOutcome:
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            return run(key)
        except TransientError as e:
            if attempt == TRANSIENT_RETRIES:
                raise
            wait = TRANSIENT_BACKOFF_S * (2 ** attempt)
            context.log.warning(f"{key}: transient error ({e.reason}); retry {attempt + 1} in {wait:.0f} s")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _failed_check_evaluations(context, key: str, check_names: list[str], info: dict):
    """A key that failed before its checks ran still gets a FAILED result per check, with the reason."""
    for name in check_names:
        yield dg.AssetCheckEvaluation(
            asset_key=context.asset_key, check_name=name, passed=False, partition=key,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"not evaluated: {info['reason']}", metadata={"error": info["error"]})


def _check_outputs(context) -> Iterator[dg.Output]:
    """Inline check specs are outputs of the asset's op; they must be yielded for the step to succeed."""
    for out in context.op_execution_context.op_def.output_defs:
        if out.name != "result":
            yield dg.Output(None, output_name=out.name)


def run_batch(context: dg.AssetExecutionContext, home: Home, upstream: str | None,
              run: Callable[[str], PhaseOutcome]):
    """Run `run(key)` for every key of the batch; yields the Dagster events described above."""
    asset = context.asset_key.to_user_string()
    check_names = list(CHECKS[asset])
    code_version = context.assets_def.code_versions_by_key.get(context.asset_key)
    keys = context.partition_keys
    good: list[PhaseOutcome] = []
    failures: dict[str, dict] = {}
    t0 = time.perf_counter()
    for key in keys:
        remove_orphan_temps(home.asset_dir(asset, key))  # left by a writer of a killed run on this key
        try:
            if upstream and not is_done(home, upstream, key):
                raise V2VError(f"upstream `{upstream}` is not materialised for this image",
                               file=key, phase=asset, fix=f"materialise {upstream} for {key} first")
            outcome = _run_one(context, key, run)
        except Exception as e:
            if not isinstance(e, V2VError):  # an engine bug must not sink the batch
                context.log.error(traceback.format_exc())
                e = EngineError(f"{type(e).__name__}: {e}", file=key, phase=asset,
                                fix="report this with the traceback in the run log")
            e.file = e.file or key
            failures[key] = info = record_failure(home, asset, key, e, context.run_id)
            context.log.error(e.one_line())
            yield from _failed_check_evaluations(context, key, check_names, info)
            continue
        yield from _check_evaluations(context, outcome.checks, key)
        try:
            outcome.raise_if_blocked()
        except V2VError as e:
            failures[key] = record_failure(home, asset, key, e, context.run_id)
            context.log.error(e.one_line())
            continue
        good.append(outcome)

    for key, info in failures.items():
        context.log_event(dg.AssetObservation(
            asset_key=context.asset_key, partition=key,
            metadata={"status": "failed", "reason": info["reason"] or "", "fix": info["fix"] or "",
                      "error": info["error"]}))
    summary = {"images": len(keys), "materialized": len(good), "failed": len(failures),
               "batch_seconds": round(time.perf_counter() - t0, 3)}
    if failures:
        summary["failed_keys"] = dg.MetadataValue.json(sorted(failures))
    context.log.info(f"{asset}: {len(good)}/{len(keys)} images done, {len(failures)} failed")
    if failures and not good:
        raise dg.Failure(f"{asset}: every image of the batch failed", metadata=summary, allow_retries=False)
    if not failures:
        for o in good:
            context.add_asset_metadata(_metadata(o), partition_key=o.key)
        yield dg.Output(None, metadata=summary)
    else:
        tags = {CODE_VERSION_TAG: code_version} if code_version else None
        for o in good:
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=o.key,
                                          metadata={**_metadata(o), **summary}, tags=tags)
    yield from _check_outputs(context)
