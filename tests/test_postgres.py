"""Three batch runs at once on a PostgreSQL instance: every partition materialised exactly once, none lost.

Needs `pip install 'v2v[postgres]'` and a server: `V2V_PG_URL=$(scripts/start_postgres.sh | tail -1)`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get("V2V_PG_URL"), reason="V2V_PG_URL is not set")]

import dagster as dg  # noqa: E402

from v2v_resources.phases import ASSETS  # noqa: E402

from dagster_helpers import FAST, drop, tick  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RUN_RANGE = """
import sys
import dagster as dg
from v2v_assets.definitions import process_images_job
from v2v_assets.sensors import RANGE_END, RANGE_START
with dg.DagsterInstance.get() as instance:
    run = dg.execute_job(dg.reconstructable(process_images_job), instance=instance, raise_on_error=False,
                         tags={RANGE_START: sys.argv[1], RANGE_END: sys.argv[2]},
                         run_config={"resources": {"v2v_config": {"config": {"overrides_json": sys.argv[3]}}}})
    sys.exit(0 if run.success else 1)
"""


def test_three_concurrent_batches(home, tmp_path, sample_dir):
    pytest.importorskip("dagster_postgres")
    from v2v_resources.samples import generate_samples

    dh = tmp_path / "dh"
    dh.mkdir()
    (dh / "dagster.yaml").write_text((CONFIGS / "dagster-postgres.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(dh), "DAGSTER_PG_URL": os.environ["V2V_PG_URL"],
           "V2V_HOME": str(home.root)}
    os.environ["DAGSTER_PG_URL"] = os.environ["V2V_PG_URL"]
    for i, p in enumerate(generate_samples(tmp_path / "s", 6, seed=os.getpid() % 1000)):
        if p.suffix == ".jpg":
            drop(home, p, age_s=60 - i)
    with dg.DagsterInstance.from_config(str(dh)) as instance:
        instance.wipe()  # the database may hold an earlier session's runs
        for k in instance.get_dynamic_partitions("images"):
            instance.delete_dynamic_partition("images", k)
        tick(instance, home)
        keys = list(instance.get_dynamic_partitions("images"))
        assert len(keys) == 6
        procs = [subprocess.Popen([sys.executable, "-c", RUN_RANGE, keys[i], keys[i + 1], FAST], env=env)
                 for i in (0, 2, 4)]
        assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]
        for asset in ASSETS:
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
            per_key = sorted(r.partition_key for r in records)
            assert per_key == sorted(keys), (asset, per_key)  # each exactly once
