"""A batch run killed with SIGKILL mid-chain (every process of it), then run again: every image ends
processed, every output file decodes, and no temp file of the killed writers is left behind."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
from defusedxml import ElementTree
from PIL import Image

from dagster_helpers import ASSETS, FAST, drop
from v2v_resources.storage import TMP_PREFIX

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# What a deployment does on each launch: the sensor's tick, then one batch run of the job over every image
# partition, on the persistent instance in $DAGSTER_HOME (multiprocess executor: steps are child processes).
RUN_BATCH = textwrap.dedent("""
    import sys
    import dagster as dg
    from v2v_assets.definitions import build_resources, defs, process_images_job
    from v2v_assets.sensors import RANGE_END, RANGE_START, tick_inbox

    with dg.DagsterInstance.get() as instance:
        tick_inbox(instance, defs, build_resources())
        keys = instance.get_dynamic_partitions("images")
        run = dg.execute_job(dg.reconstructable(process_images_job), instance=instance,
                             tags={RANGE_START: keys[0], RANGE_END: keys[-1]}, raise_on_error=False,
                             run_config={"resources": {"v2v_config": {"config": {"overrides_json": sys.argv[1]}}}})
        print("RUN", run.run_id, run.success, flush=True)
""")


def _launch(home, dagster_home) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "V2V_HOME": str(home.root), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", RUN_BATCH, FAST], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(pred, proc, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not pred():
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()[-3000:]
        assert time.monotonic() < end, "the run never reached the kill point"
        time.sleep(0.05)


def _temps(home) -> list[Path]:
    return [p for p in home.root.rglob(f"{TMP_PREFIX}*")]


def _assert_outputs_intact(home, key: str) -> None:
    for f in home.storage.glob(f"*/{key}/*.png"):
        with Image.open(f) as im:
            im.load()  # a partial PNG raises here
    ElementTree.parse(home.path("vector_svg", key, f"{key}.svg"))


def test_sigkill_mid_batch_then_rerun(home, tmp_path, sample_dir):
    dagster_home = tmp_path / "dh"
    dagster_home.mkdir()
    shutil.copyfile(CONFIGS / "dagster.yaml", dagster_home / "dagster.yaml")
    for i in range(4):
        drop(home, sample_dir / f"sample-{i:05d}.jpg", age_s=60 - i)

    proc = _launch(home, dagster_home)
    try:  # a middle phase has finished some images: kill the run, its step processes and all
        _wait_for(lambda: any(home.storage.glob("illustration/*/meta.json")), proc, 120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_at_kill = {a: len(list(home.storage.glob(f"{a}/*/meta.json"))) for a in ASSETS}
    assert done_at_kill["illustration"] >= 1 and done_at_kill["vector_svg"] < 4, done_at_kill
    # A writer killed mid-file leaves its temp beside the target; make sure there is one to clean up.
    key0 = next(home.storage.glob("illustration/*/meta.json")).parent.name
    (home.path("illustration", key0, TMP_PREFIX + "killed.png")).write_bytes(b"\x89PNG partial")

    rerun = _launch(home, dagster_home)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "RUN" in out, out[-3000:]
    assert out.strip().splitlines()[-1].endswith("True"), out[-3000:]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        keys = instance.get_dynamic_partitions("images")
        assert len(keys) == 4
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"], statuses  # the killed run was reaped, not left STARTED
        assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
        for asset in ASSETS:
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(keys), asset
    for key in keys:
        for asset in ASSETS:
            assert home.path(asset, key, "meta.json").is_file() and not home.path(asset, key, "failure.json").exists()
        _assert_outputs_intact(home, key)
    assert _temps(home) == [], "orphan temp files after the rerun"
    assert not list(home.inbox.iterdir())
