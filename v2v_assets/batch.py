"""The batch loop every phase asset shares.

A run covers a contiguous range of image partitions. Each key is processed on its own (several at once when
the phase runs on a model host, so the host can batch them): transient errors (CUDA out of memory, a host
restarting, I/O hiccups) are retried for that key with backoff, without reloading models or redoing the other
keys; bad input, engine errors and failed blocking checks are recorded for that key only.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import dagster as dg

from v2v_resources.errors import EngineError, TransientError, V2VError
from v2v_resources.phases import Phase, PhaseOutcome, is_done, record_failure, thumbnail_markdown
from v2v_resources.storage import Home, remove_orphan_temps

from .resources import PhaseCall

CODE_VERSION_TAG = "dagster/code_version"
TRANSIENT_RETRIES = 2
TRANSIENT_BACKOFF_S = 2.0


def metadata(outcome: PhaseOutcome) -> dict:
    md: dict = {f"v2v/{k}": v for k, v in outcome.metadata.items()}
    md.update({f"recipe/{k}": str(v) for k, v in outcome.recipe.items()})
    md["seconds"] = dg.MetadataValue.float(round(outcome.seconds, 4))
    md["backend"] = outcome.backend
    for name, path in outcome.files.items():
        md[f"path/{name}"] = dg.MetadataValue.path(path)
    if outcome.thumbnail:
        md["preview"] = dg.MetadataValue.md(thumbnail_markdown(outcome.thumbnail))
    return md


def _check_evaluations(context, outcome: PhaseOutcome) -> Iterator[dg.AssetCheckEvaluation]:
    for c in outcome.checks:
        yield dg.AssetCheckEvaluation(
            asset_key=context.asset_key, check_name=c.name, passed=c.passed, partition=outcome.key,
            severity=dg.AssetCheckSeverity.ERROR if c.blocking else dg.AssetCheckSeverity.WARN,
            description=c.description, metadata={k: v for k, v in c.metadata.items()
                                                  if isinstance(v, (int, float, str, bool))},
        )


def _failed_check_evaluations(context, key: str, check_names, info: dict):
    """A key that failed before its checks ran still gets a FAILED result per check, with the reason."""
    for name in check_names:
        yield dg.AssetCheckEvaluation(
            asset_key=context.asset_key, check_name=name, passed=False, partition=key,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"not evaluated: {info['reason']}", metadata={"error": info["error"]})


def _attempt(call: PhaseCall, phase: Phase, key: str) -> tuple[PhaseOutcome | None, Exception | None, list[str]]:
    """Run one key with transient retries; returns (outcome, error, log notes) and never raises. A failed
    blocking check gives both the outcome (its checks are reported) and the error."""
    notes: list[str] = []
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            outcome = call(phase, key)
            break
        except TransientError as e:
            if attempt == TRANSIENT_RETRIES:
                return None, e, notes
            wait = TRANSIENT_BACKOFF_S * (2 ** attempt)
            notes.append(f"{key}: transient error ({e.reason}); retry {attempt + 1} in {wait:.0f} s")
            time.sleep(wait)
        except V2VError as e:
            return None, e, notes
        except Exception as e:  # an engine bug must not sink the batch
            notes.append(traceback.format_exc())
            return None, EngineError(f"{type(e).__name__}: {e}", file=key, phase=phase.name,
                                     fix="report this with the traceback in the run log"), notes
    try:
        outcome.raise_if_blocked()
    except V2VError as e:
        return outcome, e, notes
    return outcome, None, notes


def _results(call: PhaseCall, phase: Phase, keys: list[str], in_flight: int):
    if in_flight <= 1:
        return (_attempt(call, phase, k) for k in keys)
    pool = ThreadPoolExecutor(max_workers=min(in_flight, len(keys)), thread_name_prefix=f"v2v-{phase.name}")
    futures = [pool.submit(_attempt, call, phase, k) for k in keys]
    pool.shutdown(wait=False)
    return (f.result() for f in futures)


def run_batch(context: dg.AssetExecutionContext, phase: Phase, home: Home, call: PhaseCall, in_flight: int = 1):
    """Run `phase` on every key of the batch; yields the Dagster events described above."""
    keys = context.partition_keys
    code_version = context.assets_def.code_versions_by_key.get(context.asset_key)
    good: list[PhaseOutcome] = []
    failures: dict[str, dict] = {}
    ready: list[str] = []
    t0 = time.perf_counter()

    def fail(key: str, e: V2VError):
        e.file = e.file or key
        failures[key] = record_failure(home, phase.name, key, e, context.run_id)
        context.log.error(e.one_line())

    for key in keys:
        remove_orphan_temps(home.asset_dir(phase.name, key))  # left by a writer of a killed run on this key
        if phase.upstream and not is_done(home, phase.upstream, key):
            fail(key, V2VError(f"upstream `{phase.upstream}` is not materialised for this image", file=key,
                               phase=phase.name, fix=f"materialise {phase.upstream} for {key} first"))
            yield from _failed_check_evaluations(context, key, phase.checks, failures[key])
        else:
            ready.append(key)
    for key, (outcome, error, notes) in zip(ready, _results(call, phase, ready, in_flight)):
        for note in notes:
            context.log.warning(note)
        if outcome is not None:
            yield from _check_evaluations(context, outcome)
        if error is not None:
            fail(key, error)
            if outcome is None:
                yield from _failed_check_evaluations(context, key, phase.checks, failures[key])
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
    context.log.info(f"{phase.name}: {len(good)}/{len(keys)} images done, {len(failures)} failed")
    if failures and not good:
        raise dg.Failure(f"{phase.name}: every image of the batch failed", metadata=summary, allow_retries=False)
    if not failures:
        for o in good:
            context.add_asset_metadata(metadata(o), partition_key=o.key)
        yield dg.Output(None, metadata=summary)
    else:
        tags = {CODE_VERSION_TAG: code_version} if code_version else None
        for o in good:
            yield dg.AssetMaterialization(asset_key=context.asset_key, partition=o.key,
                                          metadata={**metadata(o), **summary}, tags=tags)
    # Inline check specs are outputs of the asset's op; they must be yielded for the step to succeed.
    for out in context.op_execution_context.op_def.output_defs:
        if out.name != "result":
            yield dg.Output(None, output_name=out.name)
