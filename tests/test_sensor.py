"""The inbox sensor on a real test instance."""
import json
import logging
import os
import time

import dagster as dg
# Dagster has no public API to run one sensor-daemon iteration at a frozen time; these are its internals
# (the other sensor tests use the public build_sensor_context).
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import freeze_time
from dagster._daemon.sensor import execute_sensor_iteration

from v2v_assets.sensors import RANGE_END, RANGE_START, batch_run_requests
from v2v_resources.settings import load_settings
from v2v_resources import intake

from dagster_helpers import FAST, LOCATION, drop, in_process_workspace, materialize_range, tick


def _keys(result):
    return [k for r in result.dynamic_partitions_requests for k in r.partition_keys]


def test_new_files_become_partitions_and_one_batch_run(home, instance, sample_dir):
    for i, name in enumerate(["sample-00002.jpg", "sample-00000.jpg", "sample-00001.jpg"]):
        drop(home, sample_dir / name, age_s=100 - i)  # arrival order differs from name order
    result = tick(instance, home)
    keys = _keys(result)
    assert [k.split("-")[1] for k in keys] == ["00002", "00000", "00001"]  # insertion = arrival order
    assert len(result.run_requests) == 1
    rr = result.run_requests[0]
    assert (rr.tags[RANGE_START], rr.tags[RANGE_END]) == (keys[0], keys[-1])
    assert list(instance.get_dynamic_partitions("images")) == keys
    assert not list(home.inbox.iterdir())  # taken out of the inbox, kept under storage
    for k in keys:
        assert home.path("photo", k, "source.jpg").is_file()
    again = tick(instance, home, cursor=result.cursor)
    assert not again.run_requests and "no new images" in again.skip_reason.skip_message


def test_same_content_twice_is_one_partition(home, instance, sample_dir):
    drop(home, sample_dir / "sample-00000.jpg", "first.jpg", age_s=90)
    drop(home, sample_dir / "sample-00000.jpg", "second copy.jpg", age_s=80)
    keys = _keys(tick(instance, home))
    assert len(keys) == 1 and keys[0].startswith("first-")
    assert list(home.path("photo", keys[0], "duplicates").iterdir())[0].name == "second-copy.jpg"
    drop(home, sample_dir / "sample-00000.jpg", "third.jpg")
    assert not tick(instance, home).run_requests  # known content: no new run


def test_half_written_file_waits_for_the_next_tick(home, instance, sample_dir):
    data = (sample_dir / "sample-00000.jpg").read_bytes()
    partial = home.inbox / "uploading.jpg"
    partial.write_bytes(data[: len(data) // 2])  # fresh mtime: still being written
    first = tick(instance, home)
    assert not first.run_requests and partial.exists()
    assert "still being written" in first.skip_reason.skip_message
    with open(partial, "ab") as f:  # the writer finishes; size changed since the last look
        f.write(data[len(data) // 2:])
    second = tick(instance, home, cursor=first.cursor)
    assert not second.run_requests and partial.exists()
    third = tick(instance, home, cursor=second.cursor)  # unchanged since the last look: taken
    assert len(_keys(third)) == 1 and not partial.exists()


def test_non_images_go_to_quarantine_with_a_reason(home, instance, tmp_path, sample_dir):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    fake = tmp_path / "fake.jpg"
    fake.write_text("<html>hello</html>")
    drop(home, notes)
    drop(home, fake)
    drop(home, sample_dir / "sample-00000.jpg")
    result = tick(instance, home)
    assert len(_keys(result)) == 1
    reasons = {p.name: p.read_text() for p in home.quarantine.glob("*.reason.txt")}
    assert "extension .txt" in reasons["notes.txt.reason.txt"]
    assert "not a recognised image" in reasons["fake.jpg.reason.txt"]
    assert (home.quarantine / "fake.jpg").read_text() == "<html>hello</html>"  # nothing is lost


def test_crashed_tick_is_recovered_from_the_journal(home, instance, sample_dir):
    drop(home, sample_dir / "sample-00000.jpg")
    from dagster_helpers import inbox_sensor, sensor_context
    # The tick ran (files moved) but its result was never applied: partitions missing.
    lost = inbox_sensor(sensor_context(instance, home))
    assert not instance.get_dynamic_partitions("images")
    recovered = tick(instance, home, cursor=lost.cursor)
    assert _keys(recovered) == _keys(lost) and len(recovered.run_requests) == 1
    assert not tick(instance, home, cursor=recovered.cursor).run_requests  # confirmed, not re-added


def test_large_bursts_split_into_contiguous_batches():
    keys = [f"k{i}" for i in range(10)]
    reqs = batch_run_requests(keys, load_settings(overrides={"intake": {"max_batch": 4}}))
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in reqs] == [("k0", "k3"), ("k4", "k7"), ("k8", "k9")]
    assert len({r.run_key for r in reqs}) == 3


# ------------------------------------------------------------------------------ files that disappear
def test_file_deleted_while_waiting_to_settle_is_forgotten(home, instance, sample_dir):
    data = (sample_dir / "sample-00000.jpg").read_bytes()
    partial = home.inbox / "uploading.jpg"
    partial.write_bytes(data[: len(data) // 2])  # fresh: seen, not yet settled
    first = tick(instance, home)
    assert "uploading.jpg" in json.loads(first.cursor)["waiting"]
    partial.unlink()  # the uploader gives up
    second = tick(instance, home, cursor=first.cursor)
    assert "no new images" in second.skip_reason.skip_message
    assert json.loads(second.cursor)["waiting"] == {}
    assert not instance.get_dynamic_partitions("images") and not list(home.quarantine.glob("*"))


def test_file_deleted_between_listing_and_stat_does_not_break_the_tick(home, instance, sample_dir, monkeypatch):
    drop(home, sample_dir / "sample-00000.jpg", "gone.jpg")
    drop(home, sample_dir / "sample-00001.jpg", "kept.jpg")
    real_scandir = os.scandir

    def scandir_then_delete(path):  # the listing still names the file; it is gone when we look at it
        entries = list(real_scandir(path))
        (home.inbox / "gone.jpg").unlink()
        return iter(entries)

    monkeypatch.setattr(intake.os, "scandir", scandir_then_delete)
    keys = _keys(tick(instance, home))
    assert [k.split("-")[0] for k in keys] == ["kept"]


def test_file_deleted_while_being_admitted_leaves_no_partition(home, instance, sample_dir, monkeypatch):
    drop(home, sample_dir / "sample-00000.jpg", "gone.jpg")
    real_hash = intake.sha256_file

    def hash_then_delete(path):  # removed by its owner after hashing, before the move into storage
        digest = real_hash(path)
        path.unlink()
        return digest

    monkeypatch.setattr(intake, "sha256_file", hash_then_delete)
    first = tick(instance, home)
    assert not first.run_requests and not instance.get_dynamic_partitions("images")
    monkeypatch.setattr(intake, "sha256_file", real_hash)
    assert not tick(instance, home, cursor=first.cursor).run_requests  # no phantom key from the journal
    # The same photo dropped again later is admitted normally (its content was not left claimed).
    drop(home, sample_dir / "sample-00000.jpg", "again.jpg")
    keys = _keys(tick(instance, home, cursor=first.cursor))
    assert len(keys) == 1 and home.path("photo", keys[0], "source.jpg").is_file()


def test_admitted_image_survives_inbox_deletion_and_a_lost_source_fails_alone(home, instance, sample_dir):
    for i in range(2):
        drop(home, sample_dir / f"sample-{i:05d}.jpg", age_s=100 - i)
    keys = _keys(tick(instance, home))
    # Admission moved the files out of the inbox: deleting "them" there is impossible, the batch is safe.
    assert not list(home.inbox.iterdir())
    lost, kept = keys
    home.path("photo", lost, "source.jpg").unlink()  # someone deletes a stored original before the run
    run = materialize_range(instance, home, lost, kept, selection=["photo"], overrides_json=FAST)
    assert run.success  # the batch step did not crash
    assert instance.get_materialized_partitions(dg.AssetKey("photo")) == {kept}
    failure = json.loads(home.path("photo", lost, "failure.json").read_text())
    assert "no source file stored" in failure["reason"] and failure["fix"]


# ------------------------------------------------------------------------------ the real sensor daemon
def test_cursor_survives_a_daemon_restart_without_re_adding_partitions(home, sample_dir):
    """Two daemon processes in a row (a restart between ticks): the second reads the cursor the first
    stored in the instance, takes the file that was still being written, and re-adds nothing."""
    with dg.instance_for_test() as inst:  # queued run coordinator: runs are only recorded, not executed
        drop(home, sample_dir / "sample-00000.jpg", age_s=100)
        late = home.inbox / "late.jpg"
        late.write_bytes((sample_dir / "sample-00001.jpg").read_bytes())
        ahead = time.time() + 3600  # mtime ahead of our clock: only "unchanged since the last look" admits it
        os.utime(late, (ahead, ahead))
        now = float(int(time.time()))  # whole seconds: tick timestamps are stored rounded
        assert _daemon_tick(inst, now) == TickStatus.SUCCESS
        first = list(inst.get_dynamic_partitions("images"))
        assert len(first) == 1 and late.exists()
        assert _daemon_tick(inst, now + 60) == TickStatus.SUCCESS  # a new daemon process
        keys = list(inst.get_dynamic_partitions("images"))
        assert keys[:1] == first and len(keys) == 2 and not late.exists()  # the late file, once
        ranges = sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in inst.get_runs())
        assert ranges == sorted([(keys[0], keys[0]), (keys[1], keys[1])])
        assert _daemon_tick(inst, now + 120) == TickStatus.SKIPPED
        assert list(inst.get_dynamic_partitions("images")) == keys and len(inst.get_runs()) == 2


def _daemon_tick(instance, now: float) -> TickStatus:
    """One sensor daemon iteration at time `now` in a freshly loaded workspace; the new tick's status."""
    with freeze_time(now), in_process_workspace(instance) as ws:
        errors = [e for e in execute_sensor_iteration(ws, logging.getLogger("sensor-daemon"), None, None)
                  if e is not None]
        assert not errors, errors
        sensor = (ws.create_request_context().get_code_location(LOCATION)
                  .get_repository("__repository__").get_sensor("inbox_sensor"))
        ticks = instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id)
    assert ticks and ticks[0].timestamp == now, "the sensor was not evaluated"
    return ticks[0].status
