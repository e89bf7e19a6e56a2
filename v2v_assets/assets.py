"""The phase assets, derived from the phase registry: one partitioned, batch-run asset per phase, its upstream
as its dep, its checks as per-partition check specs, its code version from its engine version and the
output-affecting settings."""

import warnings
from typing import Sequence

import dagster as dg

from v2v_resources.phases import Phase, Registry
from v2v_resources.settings import Settings

from .batch import run_batch
from .partitions import images_partitions

GROUP = "v2v"
# Steps crash for reasons the per-key loop cannot catch (a killed worker, a full disk): retry the step.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def code_version(phase: Phase, settings: Settings) -> str:
    """Engine version + digest of the output-affecting settings the definitions were loaded with: editing those
    in the config file marks the phase stale in the UI. What each run really used is recorded per
    materialisation (`recipe/*` metadata), and the nightly plan compares that."""
    return f"{phase.version}-{phase.params_digest(settings)}"


def phase_asset(phase: Phase, settings: Settings, extra_deps: Sequence[dg.AssetDep] = ()) -> dg.AssetsDefinition:
    """`extra_deps`: lineage from outside the chain (e.g. the style LoRA an illustration was made with); they
    mark the phase stale when they change but do not trigger or hold back its automation."""
    runner_key = "gpu_models" if phase.gpu else "engines"
    automation = dg.AutomationCondition.eager() if phase.upstream else None
    if automation is not None and extra_deps:
        automation = automation.ignore(dg.AssetSelection.assets(*(d.asset_key for d in extra_deps)))

    # Partitioned check specs are Preview and the backfill policy Beta in Dagster 1.13: both are our deliberate
    # choices (notes/dagster.md §2, §5), so their warnings are silenced here and nowhere else.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.simplefilter("ignore", dg.BetaWarning)
        check_specs = [dg.AssetCheckSpec(n, asset=phase.name, description=d, partitions_def=images_partitions)
                       for n, d in phase.checks.items()]

        @dg.asset(
            name=phase.name, description=phase.description, group_name=GROUP,
            partitions_def=images_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
            deps=[*([phase.upstream] if phase.upstream else []), *extra_deps], output_required=False,
            dagster_type=dg.Nothing,
            check_specs=check_specs, code_version=code_version(phase, settings), retry_policy=STEP_RETRY,
            pool="gpu" if phase.gpu else None, kinds={"python"} | ({"gpu"} if phase.gpu else set()),
            required_resource_keys={"v2v_home", "v2v_config", runner_key},
            # Keys left over by a partial batch continue downstream without a person acting (a key that fails
            # a blocking check is never materialised, so eager() cannot pass it on).
            automation_condition=automation,
        )
        def _asset(context: dg.AssetExecutionContext):
            res = context.resources
            call, in_flight = getattr(res, runner_key).caller(res.v2v_config)
            yield from run_batch(context, phase, res.v2v_home.home, call, in_flight)

    return _asset


def phase_assets(registry: Registry, settings: Settings,
                 extra_deps: dict[str, Sequence[dg.AssetDep]] | None = None) -> list[dg.AssetsDefinition]:
    return [phase_asset(p, settings, (extra_deps or {}).get(p.name, ())) for p in registry]
