"""The v2v code location. Importing it touches no GPU and loads no model (the code server, the daemon and
every sensor tick import it)."""
from __future__ import annotations

import dagster as dg

from v2v_resources.phases import REGISTRY, Registry
from v2v_resources.settings import Settings, load_settings

from .assets import GROUP, phase_assets
from .jobs import batch_job
from .resources import GpuModels, ModelEngines, V2VConfig, V2VHome
from .schedules import nightly_backfill
from .sensors import inbox_sensor
from .training import lineage_deps, training_assets


def build_resources(home_root: str = "", *, hosts: list[str] | None = None, **config) -> dict:
    home = V2VHome(root=home_root)
    return {"v2v_home": home, "v2v_config": V2VConfig(**config), "engines": ModelEngines(v2v_home=home),
            "gpu_models": GpuModels(v2v_home=home, hosts=hosts or [])}


def executor_for(settings: Settings, hosts: list[str] | None = None) -> dg.ExecutorDefinition:
    """`orchestration.executor`; auto: in_process when GPU steps go to model hosts (each step is then a thin
    client, and a process per step only adds its launch: seconds per step, bench/dagster_gpu.py), else
    multiprocess (each step's own process loads its models and frees the VRAM when it exits)."""
    choice = settings.orchestration.executor
    if choice == "auto":
        choice = "in_process" if hosts or settings.host.urls else "multiprocess"
    return dg.in_process_executor if choice == "in_process" else dg.multi_or_in_process_executor


def build_definitions(registry: Registry = REGISTRY, **resource_args) -> dg.Definitions:
    """Everything the registry's phases need: assets, checks, the batch job, sensors, schedule, resources."""
    settings = load_settings()      # the definition-time config: code versions, the job's default tags
    return dg.Definitions(
        assets=[*phase_assets(registry, settings, lineage_deps(settings)), *training_assets(settings)],
        jobs=[batch_job(settings)],
        schedules=[nightly_backfill(settings, registry)],
        sensors=[
            inbox_sensor,
            # Dagster's automation sensor starts stopped by default; ours runs, so partial batches continue.
            dg.AutomationConditionSensorDefinition(
                "v2v_automation", target=dg.AssetSelection.groups(GROUP),
                default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30),
        ],
        resources=build_resources(**resource_args),
        executor=executor_for(settings, resource_args.get("hosts")),
    )


defs = build_definitions()


def process_images_job():
    """The resolved batch job, for `dg.reconstructable` (the demo and tests launch it on an instance)."""
    return defs.resolve_job_def("process_images")
