"""The `training:` settings, the 24 GB profile, and which keys make a trained LoRA stale (no torch)."""
import pytest

from v2v_assets.training import lora_code_version
from v2v_resources.errors import ConfigError
from v2v_resources.settings import load_settings
from v2v_resources.train import profile_overrides


def test_defaults_and_the_24gb_profile():
    t = load_settings().training
    assert (t.rank, t.alpha, t.resolution, t.mixed_precision, t.use_version) == (16, 16.0, 1024, "bf16", None)
    p = load_settings(overrides=profile_overrides("24gb")).training
    assert (p.batch_size, p.gradient_checkpointing, p.use_8bit_adam, p.mixed_precision) == (1, True, True, "fp16")
    assert p.batch_size * p.gradient_accumulation == t.batch_size * t.gradient_accumulation
    with pytest.raises(ConfigError, match="unknown training profile 'h100'") as e:
        profile_overrides("h100")
    assert "24gb" in e.value.fix


@pytest.mark.parametrize("override, message", [
    ({"rank": 0}, "training.rank"),
    ({"mixed_precision": "fp8"}, "training.mixed_precision"),
    ({"lr_scheduler": "step"}, "training.lr_scheduler"),
    ({"resolution": 1001}, "training.resolution"),
    ({"epochs": 3}, "training.epochs: unknown key"),
])
def test_bad_training_values_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides={"training": override})


def test_only_output_affecting_keys_change_the_lora_code_version():
    base = lora_code_version(load_settings())
    for operational in ({"time_limit_s": 60}, {"checkpoint_every": 7}, {"gradient_checkpointing": True},
                        {"use_version": "v3"}, {"sample_steps": 3}):
        assert lora_code_version(load_settings(overrides={"training": operational})) == base, operational
    for output in ({"rank": 32}, {"learning_rate": 2e-4}, {"seed": 1}, {"mixed_precision": "fp16"}):
        assert lora_code_version(load_settings(overrides={"training": output})) != base, output
