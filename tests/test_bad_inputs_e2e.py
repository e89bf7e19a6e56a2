"""Every bad or awkward input, dropped into the inbox beside good photos, ends processed or with a recorded
reason (quarantine `.reason.txt` or `failure.json`); none crashes its batch, the good photos reach the SVG.
The same files through `v2v process` fail with one line on stderr and a non-zero exit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from v2v_resources.imaging import content_hash, partition_key
from v2v_resources.palette import Palette
from dagster_helpers import ASSETS
from v2v_resources.vector.safety import validate_svg

from bad_inputs import awkward_images, corpus
from dagster_helpers import FAST, drop, materialize_range, tick

GOOD = ["sample-00000.jpg", "sample-00001.jpg"]
LINK, FOLDER = "outside-link.jpg", "x.jpg"


def outcome(home, name: str, data: bytes | None) -> str:
    """Where one dropped entry ended: 'quarantined: …', 'failed at <asset>: …' or 'processed'."""
    reason = home.quarantine / f"{name}.reason.txt"
    if reason.is_file():
        return "quarantined: " + reason.read_text().splitlines()[0].split(": ", 1)[1]
    assert data is not None, f"{name} was neither quarantined nor admitted"
    key = partition_key(name, content_hash(data))
    for asset in ASSETS:
        failure = home.path(asset, key, "failure.json")
        if failure.is_file():
            info = json.loads(failure.read_text())
            assert info["reason"] and info["fix"], info
            return f"failed at {asset}: {info['reason']}"
        if not home.path(asset, key, "meta.json").is_file():
            return f"unfinished at {asset}"
    return "processed"


def continue_downstream(instance, home, keys: list[str]) -> int:
    """What the automation sensor does after a partial batch: each asset's ready keys (upstream done, own not
    tried), in contiguous insertion-order ranges, one run per range over that asset and its downstream.
    Returns the number of runs."""
    runs = 0
    for i, asset in enumerate(ASSETS[1:], start=1):
        ready = [k for k in keys if home.path(ASSETS[i - 1], k, "meta.json").is_file()
                 and not home.path(asset, k, "meta.json").is_file()
                 and not home.path(asset, k, "failure.json").is_file()]
        ranges, start = [], None
        for a, b in zip(ready, ready[1:] + [None]):
            start = start or a
            if b is None or keys.index(b) != keys.index(a) + 1:
                ranges.append((start, a))
                start = None
        for first, last in ranges:
            run = materialize_range(instance, home, first, last, selection=ASSETS[i:], overrides_json=FAST)
            assert not _step_failures(run), f"{asset} {first}..{last}: a step crashed"
            runs += 1
    return runs


def _step_failures(run) -> list:
    return [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]


@pytest.fixture
def dropped(home, tmp_path, sample_dir):
    """The whole corpus in the inbox, good photos last so the admitted keys end in a contiguous good range."""
    files: dict[str, bytes | None] = {}
    age = 200
    for name, data, _ in corpus() + awkward_images():
        src = tmp_path / "src" / name
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(data)
        drop(home, src, age_s=age)
        files[name] = data
        age -= 1
    outside = tmp_path / "secret.jpg"  # a real image outside the inbox: the link must not pull it in
    outside.write_bytes((sample_dir / GOOD[0]).read_bytes()[::-1])
    (home.inbox / LINK).symlink_to(outside)
    (home.inbox / FOLDER).mkdir()
    (home.inbox / FOLDER / "inner.jpg").write_bytes((sample_dir / GOOD[1]).read_bytes())
    for p in (home.inbox / LINK, home.inbox / FOLDER):
        os.utime(p, (0, 100), follow_symlinks=False)
    files[LINK] = files[FOLDER] = None
    for name in GOOD:
        drop(home, sample_dir / name, age_s=10)
        files[name] = (sample_dir / name).read_bytes()
    return files


def test_corpus_through_the_sensor_and_one_batch(home, instance, dropped, sample_dir, capsys):
    assert len(dropped) - len(GOOD) >= 20
    result = tick(instance, home)
    keys = [k for r in result.dynamic_partitions_requests for k in r.partition_keys]
    assert len(result.run_requests) == 1 and not list(home.inbox.iterdir())
    run = materialize_range(instance, home, keys[0], keys[-1], overrides_json=FAST)
    # No crashed step: the photo step finished (partial success), downstream skipped as designed.
    assert not _step_failures(run)
    continue_downstream(instance, home, keys)
    table = {name: outcome(home, name, data) for name, data in dropped.items()}
    with capsys.disabled():
        print("\nkind → outcome")
        for name, out in table.items():
            print(f"  {name!r:45} {out}")
    assert not [n for n, o in table.items() if o.startswith("unfinished")], table
    expected = {name: exp for name, _, exp in corpus() + awkward_images()}
    for name, exp in expected.items():
        if exp == "ok":
            assert not table[name].startswith(("quarantined", "failed at photo")), (name, table[name])
        else:
            assert exp in table[name], (name, table[name])
    assert table[LINK].startswith("quarantined: symbolic link")
    assert table[FOLDER].startswith("quarantined: a folder")
    assert (home.quarantine / LINK).is_symlink() and (home.quarantine / FOLDER / "inner.jpg").is_file()

    palette = Palette.from_name("default15")
    for name in GOOD:
        assert table[name] == "processed"
        key = partition_key(name, content_hash(dropped[name]))
        assert validate_svg(home.path("vector_svg", key, f"{key}.svg").read_text(), palette) == []
    assert instance.get_materialized_partitions(dg.AssetKey("vector_svg")) == {
        partition_key(n, content_hash(d)) for n, d in dropped.items() if d is not None and table[n] == "processed"}
    # The weird file name became a safe key; its original bytes are kept.
    weird = next(n for n in dropped if n.startswith("my car"))
    wkey = partition_key(weird, content_hash(dropped[weird]))
    assert wkey.startswith("my-car-u-e-rm-rf-x-q-")
    assert Image.open(home.path("photo", wkey, "source.jpg")).size == (256, 192)


def test_corpus_through_v2v_process(tmp_path, sample_dir):
    """Every input that fails at intake fails the CLI the same way: one line, file + phase + fix, exit != 0."""
    from test_cli import fast_config

    cfg = fast_config(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / FOLDER).mkdir()
    (src / LINK).symlink_to(tmp_path / "missing-target.jpg")
    bad = [(name, data) for name, data, exp in corpus() if exp != "ok"]
    for name, data in bad:
        (src / name).write_bytes(data)
    env = {**os.environ, "V2V_HOME": str(tmp_path / "home")}
    # One interpreter for all files (a process per file would cost ~3 s of imports each): main() per file
    # in a subprocess, stderr captured per file.
    script = (
        "import contextlib, io, json, sys\n"
        "from v2v_assets.cli import main\n"
        "out = {}\n"
        "for p in sys.argv[2:]:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(['process', p, p + '.svg', *json.loads(sys.argv[1])])\n"
        "    out[p] = [rc, err.getvalue()]\n"
        "print(json.dumps(out))\n")
    paths = [str(src / n) for n, _ in bad] + [str(src / FOLDER), str(src / LINK)]
    r = subprocess.run([sys.executable, "-c", script, json.dumps(cfg), *paths], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for path, (rc, err) in results.items():
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (path, rc, err)
        assert path in lines[0] and "fix:" in lines[0], (path, lines)
        assert not Path(path + ".svg").exists()
    for name, data in bad:
        exp = next(e for n, _, e in corpus() if n == name)
        assert exp in results[str(src / name)][1], (name, results[str(src / name)][1])
    # And the shell as a user calls it, for one of them.
    r = subprocess.run([sys.executable, "-m", "v2v_assets.cli", "process", str(src / "truncated.png"),
                        str(tmp_path / "t.svg"), *cfg], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "[intake]" in r.stderr
