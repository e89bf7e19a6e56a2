"""The production instance, end to end: configs/dagster-postgres.yaml on a real PostgreSQL server, the real
`dagster-daemon`, six photos dropped into the inbox. The inbox sensor turns them into three batch runs of two;
the queued run coordinator launches all three at once; every partition of every asset is materialised exactly
once, none is lost. A run beyond those three may only be the automation sensor carrying on a key that failed
(its reason is recorded as an observation, and printed as a warning here).

`make test-postgres` installs dagster-postgres, starts a server (scripts/start_postgres.sh) and sets V2V_PG_URL;
without it this test skips, so that `make test` needs no server."""
import json
import os
import time
import warnings
from collections import Counter
from contextlib import closing
from urllib.parse import urlsplit

import pytest

PG_URL = os.environ.get("V2V_PG_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="V2V_PG_URL is not set (run `make test-postgres`)")]

import dagster as dg  # noqa: E402

from v2v_assets.sensors import RANGE_END, RANGE_START  # noqa: E402
from dagster_helpers import ASSETS  # noqa: E402
from v2v_resources.samples import generate_samples  # noqa: E402

from daemon_helpers import ROOT, dagster_home, running_daemon, settings_dir  # noqa: E402
from dagster_helpers import FAST, drop  # noqa: E402

IMAGES, BATCH = 6, 2


@pytest.fixture
def pg_env(monkeypatch):
    """A database of its own on the server, dropped afterwards (nothing of an earlier session is counted),
    set in the DAGSTER_PG_* variables that configs/dagster-postgres.yaml reads."""
    import psycopg2

    name = f"v2v_test_{os.getpid()}_{time.time_ns()}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    url = urlsplit(PG_URL)
    env = {"DAGSTER_PG_HOST": url.hostname, "DAGSTER_PG_PORT": str(url.port or 5432),
           "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password or "", "DAGSTER_PG_DB": name}
    for k, v in env.items():  # this process's instance and the daemon's (which inherits the environment)
        monkeypatch.setenv(k, v)
    try:
        yield env
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database {name} with (force)")
        admin.close()


def test_three_concurrent_batches_through_the_daemon(home, tmp_path, pg_env):
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    dh = dagster_home(tmp_path / "dh", "dagster-postgres.yaml")
    config_dir = settings_dir(tmp_path / "configs", json.loads(FAST), {"intake": {"max_batch": BATCH}})
    photos = [p for p in generate_samples(tmp_path / "samples", IMAGES, seed=7) if p.suffix == ".jpg"]
    assert len(photos) == IMAGES
    for i, p in enumerate(photos):  # mtimes in drop order, so the partitions are added in this order
        drop(home, p, age_s=60 - i)
    env = {"V2V_HOME": str(home.root), "V2V_CONFIG_DIR": str(config_dir)}

    # The instance first: it creates Dagster's tables, which the daemon and its code server would otherwise race to do.
    with dg.DagsterInstance.from_config(str(dh)) as instance, \
            running_daemon(dh, tmp_path / "daemon.log", env, "-w", str(ROOT / "workspace.yaml")) as daemon:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        daemon.wait_for(lambda: len(instance.get_runs()) >= IMAGES // BATCH, 120, "three runs from the sensor")
        daemon.wait_for(lambda: len(instance.get_materialized_partitions(dg.AssetKey(ASSETS[-1]))) == IMAGES
                        and all(r.is_finished for r in instance.get_runs()), 420, "every SVG, and the runs to end")
        all_records = instance.get_run_records()
        keys = instance.get_dynamic_partitions("images")
        materialized = {a: Counter(r.partition_key for r in instance.fetch_materializations(
            dg.AssetKey(a), limit=1000).records) for a in ASSETS}
        failures = [(a, o.partition_key, o.asset_observation.metadata["reason"].value)
                    for a in ASSETS for o in instance.fetch_observations(dg.AssetKey(a), limit=1000).records
                    if "reason" in o.asset_observation.metadata]
        claimed = instance.event_log_storage.get_concurrency_info("gpu").claimed_slots

    records = [r for r in all_records if r.dagster_run.tags.get("dagster/sensor_name") == "inbox_sensor"]
    follow_ups = [r for r in all_records if r not in records]
    for f in failures:
        warnings.warn(f"a key failed and was carried on by the automation sensor: {f}")
    assert not follow_ups or failures, ("a run beyond the inbox sensor's, with no failed key to carry on",
                                        [(r.dagster_run.tags, r.dagster_run.asset_selection) for r in follow_ups])
    assert {r.dagster_run.tags.get("dagster/sensor_name") for r in follow_ups} <= {"v2v_automation"}
    assert len(keys) == IMAGES
    assert sorted(r.dagster_run.status.value for r in records) == ["SUCCESS"] * 3, daemon.tail()
    ranges = sorted((keys.index(r.dagster_run.tags[RANGE_START]), keys.index(r.dagster_run.tags[RANGE_END]))
                    for r in records)
    assert ranges == [(0, 1), (2, 3), (4, 5)]  # three batches of two, covering every key once
    assert max(r.start_time for r in records) < min(r.end_time for r in records), "the runs did not overlap"
    for asset in ASSETS:
        assert materialized[asset] == Counter(keys), (asset, materialized[asset])  # each key exactly once
        for key in keys:
            assert home.path(asset, key, "meta.json").is_file(), (asset, key)
    assert not claimed, claimed  # every gpu slot given back

    # Dagster's own tables, read straight from the server: the runs and materialisations are there.
    db_url = urlsplit(PG_URL)._replace(path="/" + pg_env["DAGSTER_PG_DB"]).geturl()
    with closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from runs")
        assert cur.fetchone()[0] == len(all_records)
        cur.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] == IMAGES * len(ASSETS)
    assert not list(dh.rglob("*.db")), "SQLite files next to a Postgres instance"
