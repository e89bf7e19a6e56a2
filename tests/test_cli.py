"""`v2v process` and `v2v samples` as a user runs them: a real subprocess, exit codes, one-line errors."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from v2v_resources.palette import Palette
from v2v_resources.vector.safety import validate_svg

V2V = [sys.executable, "-m", "v2v_assets.cli"]
ISSUE_PALETTE = "FF0000,00FF00,0000FF,FFFF00,FF00FF,00FFFF,000000,FFFFFF,808080,404040,C0C0C0,FFA500,800080,008080,FFB6C1"


def fast_config(tmp_path) -> list[str]:
    """configs/default.yaml with the smaller sizes of the Dagster tests."""
    import json

    import yaml

    from dagster_helpers import FAST
    from v2v_resources.settings import CONFIG_DIR, deep_merge

    data = deep_merge(yaml.safe_load((CONFIG_DIR / "default.yaml").read_text()), json.loads(FAST))
    p = tmp_path / "fast.yaml"
    p.write_text(yaml.safe_dump(data))
    return ["--config", str(p)]


def run(args, home):
    env = {**os.environ, "V2V_HOME": str(home)}
    return subprocess.run(V2V + args, capture_output=True, text=True, env=env, timeout=300)


def test_process_a_jpeg_with_a_custom_palette(tmp_path, sample_dir):
    out, preview = tmp_path / "out" / "car.svg", tmp_path / "out" / "car.png"
    r = run(["process", str(sample_dir / "sample-00001.jpg"), str(out), "--preview", str(preview),
             "--palette", ISSUE_PALETTE, *fast_config(tmp_path)], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    palette = Palette.from_hex(ISSUE_PALETTE)
    assert validate_svg(out.read_text(), palette) == []
    px = np.asarray(Image.open(preview).convert("RGBA")).reshape(-1, 4)
    opaque = {"#%02X%02X%02X" % tuple(p[:3]) for p in np.unique(px[px[:, 3] == 255], axis=0)}
    assert opaque and opaque <= set(palette.colors)


def test_bad_input_is_one_line_naming_file_and_phase(tmp_path):
    bad = tmp_path / "holiday photo.jpg"
    bad.write_text("this is not a jpeg")
    r = run(["process", str(bad), str(tmp_path / "x.svg")], tmp_path / "home")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(bad) in lines[0] and "[intake]" in lines[0] and "fix:" in lines[0]
    assert not (tmp_path / "x.svg").exists()


def test_bad_palette_and_missing_file(tmp_path, sample_dir):
    r = run(["process", str(sample_dir / "sample-00000.jpg"), str(tmp_path / "x.svg"), "--palette", "FF0000,nothex"],
            tmp_path / "home")
    assert r.returncode != 0 and "'nothex'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run(["process", str(tmp_path / "nope.jpg"), str(tmp_path / "x.svg")], tmp_path / "home")
    assert r.returncode != 0 and "no such file" in r.stderr


def test_samples_command(tmp_path):
    r = run(["samples", "--out", str(tmp_path / "s"), "-n", "2", "--seed", "5"], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "s").glob("*.jpg")) == ["sample-00005.jpg", "sample-00006.jpg"]


def test_the_lite_path_never_imports_torch_diffusers_or_transformers(tmp_path, sample_dir):
    """A laptop without weights must not pay for (or need) the ml stack: `v2v process --backend lite` runs the
    whole chain with none of them imported."""
    probe = ("import runpy, sys\nsys.argv = ['v2v'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('v2v_assets.cli', run_name='__main__')\nexcept SystemExit as e:\n"
             "    assert not e.code, e.code\n"
             "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'dagster') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe, "process", str(sample_dir / "sample-00002.jpg"),
                        str(tmp_path / "o.svg"), "--backend", "lite", *fast_config(tmp_path)],
                       capture_output=True, text=True, env={**os.environ, "V2V_HOME": str(tmp_path / "h")},
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "o.svg").is_file()
