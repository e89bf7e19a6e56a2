"""A burst in the inbox (duplicates by content, files still being written): after the sensor's ticks settle
there is exactly one partition per distinct complete image, and a batch of them processes with reasons."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from burst import finish_writes, intake_invariants, make_burst, outcomes, process, settle  # noqa: E402


def test_burst_of_40_with_duplicates_and_growing_files(home, instance):
    burst = make_burst(home.inbox, 40, dups=5, growing=3, size=96, seed=100)
    growing = sorted(p.name for p in burst["rest"])
    seen_waiting = []

    def between_ticks(i):
        if i == 0:  # the writers were mid-file at the first look; they finish now
            seen_waiting.extend(p.name for p in burst["rest"] if p.exists())
            finish_writes(burst["rest"])

    requests, ticks = settle(instance, home, on_tick=between_ticks)
    assert sorted(seen_waiting) == growing  # not taken while being written
    assert intake_invariants(instance, home, burst["digests"]) == []
    keys = list(instance.get_dynamic_partitions("images"))
    assert len(keys) == 35 and len(ticks) >= 3
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
              for r in requests]
    # The batches cover every key once, in insertion order (growing files come in a later batch).
    covered = [k for a, b in ranges for k in keys[keys.index(a): keys.index(b) + 1]]
    assert covered == keys
    dup_dirs = [p for p in home.storage.glob("photo/*/duplicates/*")]
    assert len(dup_dirs) == 5 and all(p.name.startswith("copy-of-burst-") for p in dup_dirs)

    _, n = process(instance, home, requests, limit=4)
    states = outcomes(home, keys[:n])
    assert n == 4 and "unfinished" not in states.values(), states
    assert "processed" in states.values()
    for k, s in states.items():
        if s != "processed":
            info = json.loads(home.path(s.split(":")[1], k, "failure.json").read_text())
            assert info["reason"] and info["fix"], info
