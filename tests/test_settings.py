"""Configuration loads typed and fails with the dotted path of the bad key."""
import pytest

from v2v_resources.errors import ConfigError
from v2v_resources.palette import Palette
from v2v_resources.settings import CONFIG_DIR, load_settings


def test_defaults_hold_the_reference_values():
    s = load_settings()
    assert (s.phase1.detector.box_threshold, s.phase1.detector.text_threshold) == (0.35, 0.25)
    assert (s.phase2.sdxl.steps, s.phase2.sdxl.guidance_scale) == (30, 7.5)
    assert (s.phase2.controlnet.depth_weight, s.phase2.controlnet.canny_weight) == (0.6, 0.4)
    assert s.phase2.controlnet.guidance_end == [1.0, 0.75]
    assert s.phase2.iou_retry.iou_threshold == 0.85 and s.phase1.quality.min_silhouette_iou == 0.97
    assert s.phase3.noise_removal.min_area_percent == 0.1 and s.phase3.output_long_side == 4096
    assert s.phase4.vtracer.hierarchical == "stacked" and s.phase4.vtracer.length_threshold == 4.0
    assert len(Palette.from_choice(s.palette)) == 15


@pytest.mark.parametrize("override, message", [
    ({"phase2": {"sdxl": {"stepz": 3}}}, "phase2.sdxl.stepz: unknown key"),
    ({"phase1": {"detector": {"box_threshold": "high"}}}, "phase1.detector.box_threshold"),
    ({"phase3": {"background": "#12345"}}, "phase3.background"),
    ({"phase2": {"controlnet": {"guidance_end": [1.0]}}}, "phase2.controlnet.guidance_end"),
    ({"phase4": {"vtracer": {"mode": "stacked"}}}, "phase4.vtracer.mode"),  # the reference's CLI bug
])
def test_bad_values_name_their_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_settings(overrides=override)
    assert message in str(e.value) and "[config]" in str(e.value)


def test_missing_key_is_named(tmp_path):
    import yaml

    from v2v_resources.settings import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    del data["phase3"]["noise_removal"]["min_area_percent"]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"phase3\.noise_removal\.min_area_percent: missing key"):
        load_settings(p)


def test_presets_apply_the_seed_values():
    assert load_settings(preset="conservative").phase2.sdxl.steps == 25
    agg = load_settings(preset="aggressive").phase2.controlnet
    assert (agg.depth_weight, agg.canny_weight) == (0.7, 0.3)
    with pytest.raises(ConfigError, match="preset"):
        load_settings(preset="turbo")


def test_palette_value_object():
    p = Palette.from_hex("ff0000, #00FF00,0000ff")
    assert p.colors == ("#FF0000", "#00FF00", "#0000FF") and p.rgb.shape == (3, 3)
    with pytest.raises(ConfigError, match=r"entry 2 \('#GG0000'\)"):
        Palette.from_hex(["#FF0000", "#GG0000"])
    with pytest.raises(ConfigError, match="repeats #FF0000"):
        Palette.from_hex("FF0000,ff0000")
    with pytest.raises(ConfigError, match="2–64"):
        Palette.from_hex("FF0000")
    with pytest.raises(ConfigError, match="unknown palette"):
        Palette.parse("nonexistent")
    assert Palette.parse("default15").digest != Palette.parse("automotive15").digest


def test_v2v_config_env_names_the_settings_file(tmp_path, monkeypatch):
    import yaml

    data = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    data["intake"]["max_batch"] = 7
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("V2V_CONFIG", str(tmp_path / "site.yaml"))
    assert load_settings().intake.max_batch == 7
