"""Style training sets: what is accepted, and the errors that name the file and the fix (no torch)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from v2v_resources.errors import BadInputError
from v2v_resources.settings import CONFIG_DIR
from v2v_resources.train.dataset import TrainingSet, TrainingSetError, validate_training_set


def write_set(folder, n=3, size=(96, 80)):
    """`n` distinct flat 'illustrations' with captions."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((size[1], size[0], 3), 255, np.uint8)
        img[size[1] // 4:size[1] * 3 // 4, 8 + 4 * i:size[0] - 8] = [(200, 30, 30), (30, 30, 200), (30, 160, 30),
                                                                     (240, 200, 0)][i % 4]
        Image.fromarray(img).save(folder / f"car{i}.png")
        (folder / f"car{i}.txt").write_text(f"a flat vector car number {i} <flt_vctr_style>\n")
    return folder


def test_a_good_set_is_recorded_with_hashes_sizes_and_captions(tmp_path):
    folder = write_set(tmp_path / "v1")
    (folder / "notes.md").write_text("not part of the set")
    data = validate_training_set(folder, min_side=32)
    assert [e.caption for e in data.examples] == [f"a flat vector car number {i} <flt_vctr_style>" for i in range(3)]
    assert {(e.width, e.height, e.format) for e in data.examples} == {(96, 80, "PNG")}
    assert data.ignored == ("notes.md",) and len({e.sha256 for e in data.examples}) == 3
    s = data.summary()
    assert (s["images"], s["min_side"], s["max_side"], s["formats"]) == (3, 80, 96, {"PNG": 3})
    assert TrainingSet.from_dict(data.to_dict()) == data
    again = validate_training_set(write_set(tmp_path / "copy"), min_side=32)
    assert again.digest == data.digest          # the content decides, not the folder
    (folder / "car0.txt").write_text("another caption")
    assert validate_training_set(folder, min_side=32).digest != data.digest


def test_empty_folder(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "README.txt").write_text("captions only, no images")
    with pytest.raises(TrainingSetError) as e:
        validate_training_set(tmp_path / "v1", min_side=32)
    assert "no images" in e.value.reason and e.value.file == str(tmp_path / "v1")
    assert "[training_set]" in str(e.value) and ".txt caption" in e.value.fix
    with pytest.raises(TrainingSetError, match="does not exist"):
        validate_training_set(tmp_path / "v2", min_side=32)


def test_unreadable_image(tmp_path):
    folder = write_set(tmp_path / "v1")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    (folder / "broken.txt").write_text("a broken one")
    with pytest.raises(TrainingSetError) as e:
        validate_training_set(folder, min_side=32)
    assert e.value.file == str(folder / "broken.png") and "remove it from the training set" in e.value.fix
    assert isinstance(e.value, BadInputError)
    (folder / "scan.tiff").write_bytes(b"II*\0")
    with pytest.raises(TrainingSetError, match=".tiff is not a training format") as e:
        validate_training_set(folder, min_side=32)
    assert e.value.fix == "convert it to PNG" and "broken.png: not a recognised image format" in e.value.reason


def test_missing_and_empty_captions_are_all_reported(tmp_path):
    folder = write_set(tmp_path / "v1")
    (folder / "car1.txt").unlink()
    (folder / "car2.txt").write_text("  \n")
    with pytest.raises(TrainingSetError) as e:
        validate_training_set(folder, min_side=32)
    assert e.value.file == str(folder / "car1.png") and "no caption: car1.txt does not exist" in e.value.reason
    assert str(folder / "car1.txt") in e.value.fix
    assert "1 other problem(s): car2.txt: caption is empty" in e.value.reason


def test_duplicates_and_small_images(tmp_path):
    folder = write_set(tmp_path / "v1")
    (folder / "copy.png").write_bytes((folder / "car0.png").read_bytes())
    (folder / "copy.txt").write_text("the same picture again")
    with pytest.raises(TrainingSetError, match="same content as car0.png") as e:
        validate_training_set(folder, min_side=32)
    assert e.value.file == str(folder / "copy.png") and e.value.fix == "remove one of the two"
    (folder / "copy.png").unlink()
    with pytest.raises(TrainingSetError, match="96x80: the shorter side must be at least 512") as e:
        validate_training_set(folder, min_side=512)
    assert "training.min_image_side" in e.value.fix
    write_set(folder, n=1, size=(200, 64))
    with pytest.raises(TrainingSetError, match="200x64: more than 2.0:1") as e:
        validate_training_set(folder, min_side=32)
    assert e.value.file == str(folder / "car0.png") and e.value.fix == "crop it closer to square"


def test_v2v_train_check_validates_without_the_ml_stack(tmp_path):
    """`v2v train VERSION --check` finds the set under $V2V_HOME/training_sets, validates it and imports no torch;
    a bad set exits 2 with the file and the fix."""
    folder = write_set(tmp_path / "home" / "training_sets" / "v1")
    probe = ("import runpy, sys\nsys.argv = ['v2v'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('v2v_assets.cli', run_name='__main__')\nexcept SystemExit as e:\n"
             "    print('exit', e.code)\n"
             "print(sorted(m for m in ('torch', 'diffusers', 'dagster') if m in sys.modules))")
    env = {**os.environ, "V2V_HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).parents[1])}
    data = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    data["training"]["min_image_side"] = 32
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-c", probe, "train", "v1", "--check", "--config", str(tmp_path / "c.yaml")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.splitlines()[-2:] == ["exit 0", "[]"], r.stderr
    assert f"{folder}: 3 images, sides 80–96 px, 3 PNG" in r.stdout
    (folder / "car2.txt").unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.splitlines()[-2:] == ["exit 2", "[]"]
    assert f"v2v: error: {folder / 'car2.png'} [training_set] no caption" in r.stderr and "(fix: write" in r.stderr
