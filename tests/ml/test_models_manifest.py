"""Manifest schema, verify states, sha256 cache, pull (atomic, adopt), and the models/doctor CLI."""
from __future__ import annotations

import argparse
import shutil

import pytest
import yaml

from v2v_resources.errors import ConfigError, ModelMissingError
from v2v_resources.models.hub import fetch_url
from v2v_resources.models.manifest import LOCK_NAME, default_manifest_path, load_manifest
from v2v_resources.models.pull import pull
from v2v_resources.models.verify import ModelStore, State

SAM, ESRGAN = "sam/sam_vit_h_4b8939.pth", "esrgan/RealESRGAN_x4plus_anime_6B.pth"
SAM_SHA = "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"


def test_shipped_manifest_is_valid_and_complete():
    m = load_manifest()
    assert set(m.models) >= {"grounding-dino", "sam", "lama", "depth", "sdxl", "controlnet-depth",
                             "controlnet-canny", "style-lora", "esrgan"}
    assert m.entry("sam").sha256 == SAM_SHA
    assert m.entry("style-lora").source is None and not m.entry("style-lora").required
    assert m.for_phase("phase1", required=True) == ["grounding-dino", "sam", "lama"]
    assert m.entry("sdxl").source.repo == "stabilityai/stable-diffusion-xl-base-1.0"
    lama = m.entry("lama")      # downloaded as TorchScript, kept only as safetensors
    assert (lama.source.convert, lama.format, lama.path) == ("torchscript", "safetensors", "lama/big-lama.safetensors")
    assert lama.sha256 is None and m.entry("esrgan").sha256 is None     # no published digest: locked on pull


@pytest.mark.parametrize("source, error", [
    ({"url": "http://example.com/x.pth"}, "url must be https"),
    ({"url": "https://example.com/x.pt", "convert": "torchscript"}, "set format: safetensors"),
    ({"repo": "a/b", "convert": "torchscript"}, "convert applies to a url"),
])
def test_manifest_source_rules(tmp_path, source, error):
    data = yaml.safe_load(default_manifest_path().read_text())
    data["models"]["sam"]["source"] = source
    bad = tmp_path / "m.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=error):
        load_manifest(bad)
    data["models"]["sam"]["source"] = {"url": "http://127.0.0.1:8080/x.pth"}     # a local mirror is fine
    bad.write_text(yaml.safe_dump(data))
    assert load_manifest(bad).entry("sam").source.url.startswith("http://127.0.0.1")


def test_manifest_rejects_unknown_keys_and_bad_digests(tmp_path):
    data = yaml.safe_load(default_manifest_path().read_text())
    data["models"]["sam"]["colour"] = "red"
    bad = tmp_path / "m.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"models\.sam\.colour: unknown key"):
        load_manifest(bad)
    del data["models"]["sam"]["colour"]
    data["models"]["sam"]["sha256"] = "abc"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="sha256"):
        load_manifest(bad)


@pytest.fixture
def small_volume(tiny_root, tmp_path):
    """A private volume with copies of two single-file models (so corrupting them harms no other test)."""
    src = load_manifest(tiny_root / "models.yaml")
    root = tmp_path / "models"
    for name in ("esrgan", "sam"):
        (root / src.entry(name).path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_root / src.entry(name).path, root / src.entry(name).path)
    data = {"version": 1, "models": {n: src.entry(n).model_dump(mode="json") for n in ("esrgan", "sam")}}
    (root / "models.yaml").write_text(yaml.safe_dump(data))
    return root


def test_verify_reports_present_for_every_tiny_model(store):
    from conftest import HAS_PEFT

    states = {st.name: st.state for st in store.verify_all()}
    assert all(s is State.PRESENT for n, s in states.items() if n != "style-lora"), states
    assert states["style-lora"] is (State.PRESENT if HAS_PEFT else State.MISSING)


def test_corrupt_file_is_refused_with_pull_command(small_volume):
    f = small_volume / ESRGAN
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF                     # one flipped byte, same size
    f.write_bytes(bytes(data))
    store = ModelStore(small_volume, small_volume / "models.yaml")
    assert store.status("esrgan").state is State.CORRUPT
    with pytest.raises(ModelMissingError) as e:
        store.require("esrgan")
    msg = str(e.value)
    assert str(f) in msg and "v2v models pull esrgan" in msg and "[phase3]" in msg
    assert store.status("sam").ok


def test_missing_file_names_expected_path(small_volume):
    (small_volume / SAM).unlink()
    store = ModelStore(small_volume, small_volume / "models.yaml")
    with pytest.raises(ModelMissingError, match=r"missing.*sam_vit_h_4b8939\.pth.*v2v models pull sam"):
        store.require("sam")


def test_sha_cache_skips_unchanged_files_and_rehashes_changed(small_volume):
    ModelStore(small_volume, small_volume / "models.yaml").verify_all()
    again = ModelStore(small_volume, small_volume / "models.yaml")
    assert all(st.ok for st in again.verify_all()) and again.cache.hashed == 0
    f = small_volume / SAM
    f.write_bytes(f.read_bytes() + b"x")
    third = ModelStore(small_volume, small_volume / "models.yaml")
    assert third.status("sam").state is State.CORRUPT and third.cache.hashed == 1


def test_pull_adopts_unverified_file_into_the_lock(small_volume):
    data = yaml.safe_load((small_volume / "models.yaml").read_text())
    data["models"]["esrgan"]["sha256"] = None        # as in the shipped manifest: digest not published
    (small_volume / "models.yaml").write_text(yaml.safe_dump(data))
    store = ModelStore(small_volume, small_volume / "models.yaml")
    assert store.status("esrgan").state is State.UNVERIFIED
    with pytest.raises(ModelMissingError, match="unverified"):
        store.require("esrgan")
    [res] = pull(store, ["esrgan"], echo=lambda *_: None)
    assert res.action == "recorded" and (small_volume / LOCK_NAME).is_file()
    assert ModelStore(small_volume, small_volume / "models.yaml").require("esrgan").is_file()


def test_fetch_url_is_atomic_and_checks_the_digest(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights" * 1000)
    target = tmp_path / "vol" / "model.bin"
    with pytest.raises(ModelMissingError, match="sha256"):
        fetch_url(src.as_uri(), target, expected="0" * 64, progress=False)
    assert not target.exists() and list(target.parent.iterdir()) == []     # no half file left
    digest = fetch_url(src.as_uri(), target, progress=False)
    assert target.read_bytes() == src.read_bytes() and len(digest) == 64


def _cli(argv):
    from v2v_assets.cli_models import add_commands

    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="cmd", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_models_verify_cli_report_and_exit_code(small_volume, capsys):
    args = ["models", "verify", "--models", str(small_volume), "--manifest", str(small_volume / "models.yaml")]
    assert _cli(args) == 0
    assert "present" in capsys.readouterr().out
    (small_volume / SAM).write_bytes(b"broken")
    assert _cli(args) == 1
    out = capsys.readouterr().out
    assert "corrupt" in out and "sam" in out and "1 required model(s)" in out


def test_doctor_fails_only_when_an_ml_phase_lacks_its_models(tmp_path, small_volume, monkeypatch, capsys):
    from v2v_resources.models.doctor import check_dagster, check_models, check_ui_host

    (small_volume / SAM).unlink()
    store = ModelStore(small_volume, small_volume / "models.yaml")
    level = {c.topic: c.level for c in check_models(store, {"phase1": "ml", "phase3": "ml"})}
    assert level == {"model esrgan": "ok", "model sam": "fail"}
    assert {c.level for c in check_models(store, {"phase1": "auto"}) if "sam" in c.topic} == {"warn"}
    assert check_ui_host("0.0.0.0").level == "warn" and check_ui_host("127.0.0.1").level == "ok"
    assert check_ui_host("localhost").level == "ok"
    assert check_dagster(str(tmp_path)).level == "fail"
    (tmp_path / "dagster.yaml").write_text("{}")
    assert check_dagster(str(tmp_path)).level == "ok"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    cfg = tmp_path / "cfg.yaml"
    from v2v_resources.settings import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    data["phase1"]["backend"] = "ml"
    cfg.write_text(yaml.safe_dump(data))
    args = ["doctor", "--config", str(cfg), "--models", str(small_volume), "--manifest",
            str(small_volume / "models.yaml")]
    assert _cli(args) == 1
    assert "[FAIL] model sam" in capsys.readouterr().out
