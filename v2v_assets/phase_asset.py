"""The decorator shared by the five phase assets: batch policy, partitions, checks, retries, versions."""
from __future__ import annotations

import dagster as dg

from v2v_resources.quality import CHECKS

from .partitions import images_partitions
from .versions import code_version

# Steps crash for reasons the per-key loop cannot catch (a killed worker, a full disk): retry the step.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def phase_asset(name: str, *, deps: list | None = None, pool: str | None = None, description: str = "",
                automation: bool = True):
    return dg.asset(
        name=name,
        description=description,
        partitions_def=images_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps or [],
        output_required=False,
        dagster_type=dg.Nothing,
        check_specs=[dg.AssetCheckSpec(n, asset=name, description=d, partitions_def=images_partitions)
                     for n, d in CHECKS[name].items()],
        code_version=code_version(name),
        retry_policy=STEP_RETRY,
        pool=pool,
        group_name="v2v",
        kinds={"python"} | ({"gpu"} if pool == "gpu" else set()),
        # Keys left over by a partial batch continue downstream without a person acting.
        # (a key that fails a blocking check is never materialised, so eager() cannot pass it on).
        automation_condition=dg.AutomationCondition.eager() if automation else None,
    )
