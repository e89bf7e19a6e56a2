"""Test-only code location for tests/test_run_monitoring.py: v2v's own `process_images` job (its name, its
`dagster/max_runtime` tag from the settings, its group selection) and inbox sensor, but with a first phase
that never returns, like a step stuck in a driver call."""
import time

import dagster as dg

from v2v_assets.jobs import batch_job
from v2v_assets.partitions import images_partitions
from v2v_assets.resources import V2VConfig, V2VHome
from v2v_assets.sensors import inbox_sensor
from v2v_resources.settings import load_settings


@dg.asset(name="photo", group_name="v2v", partitions_def=images_partitions, pool="gpu",
          backfill_policy=dg.BackfillPolicy.single_run())
def stuck_photo(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"stuck on {context.partition_keys}")
    while True:  # only a cancel (an interrupt in this step process) ends it
        time.sleep(0.2)


defs = dg.Definitions(assets=[stuck_photo], jobs=[batch_job(load_settings())], sensors=[inbox_sensor],
                      resources={"v2v_home": V2VHome(), "v2v_config": V2VConfig()})
