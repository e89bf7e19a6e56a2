"""`v2v models smoke` on the tiny models: every installed model runs once on a sample photo and is checked."""
from __future__ import annotations

import shutil

import yaml

from v2v_resources.models.smoke import smoke_test
from v2v_resources.models.verify import ModelStore


def test_every_installed_model_runs_once(store):
    lines: list[str] = []
    results = smoke_test(store, device="cpu", photo_size=(128, 96), echo=lines.append)
    assert [r.name for r in results] == ["grounding-dino", "sam", "lama", "depth", "sdxl", "esrgan"]
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    by = {r.name: r for r in results}
    assert "one 128x64 RGB image" in by["sdxl"].checks and "x4 output shape (128, 128, 3)" in by["esrgan"].checks
    assert "pixels outside the hole unchanged" in by["lama"].checks
    assert all(r.load_s > 0 and r.run_s > 0 for r in results) and len(lines) == 6


def test_smoke_cli_reports_a_broken_model_and_skips_missing_ones(tiny_root, tmp_path, capsys):
    from v2v_assets.cli import main

    src = ModelStore(tiny_root, tiny_root / "models.yaml")
    vol = tmp_path / "vol"
    (vol / "lama").mkdir(parents=True)
    # a valid safetensors file that is not a LaMa, with the right digest: it loads and fails as a model
    shutil.copy(src.path("depth") / "model.safetensors", vol / "lama/big-lama.safetensors")
    data = yaml.safe_load((tiny_root / "models.yaml").read_text())
    data["models"]["lama"]["sha256"] = src.status("depth").files["model.safetensors"]
    (vol / "models.yaml").write_text(yaml.safe_dump(data))
    assert main(["models", "smoke", "lama", "sam", "--device", "cpu", "--models", str(vol),
                 "--manifest", str(vol / "models.yaml")]) == 1
    out = capsys.readouterr().out.splitlines()
    line = {s.split()[0]: s for s in out[:-1]}
    assert "not installed" in line["sam"]
    assert "FAIL" in line["lama"] and "not a loadable LaMa (UnsupportedModelError" in line["lama"]
    assert out[-1] == "1 model(s) failed the smoke test"
