"""The inbox sensor on a real test instance."""
import json
import os
import time

import dagster as dg

from v2v_assets.sensors import RANGE_END, RANGE_START, batch_run_requests

from dagster_helpers import drop, tick


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
    reqs = batch_run_requests(keys, 4)
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in reqs] == [("k0", "k3"), ("k4", "k7"), ("k8", "k9")]
    assert len({r.run_key for r in reqs}) == 3
