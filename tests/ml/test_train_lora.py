"""Style LoRA training on the tiny random-weight SDXL in the diffusers layout: the loss falls, a resumed run
reaches the same weights, the LoRA loads into the steering engine and changes it, and the Dagster assets
materialise with their lineage to the illustrations."""
import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from v2v_resources.errors import ModelMissingError
from v2v_resources.models.verify import ModelStore
from v2v_resources.settings import CONFIG_DIR, load_settings
from v2v_resources.storage import sha256_file
from v2v_resources.train import trained_lora
from v2v_resources.train.dataset import TrainingSetError, validate_training_set
from v2v_resources.train.lora import LoraTrainer

from test_train_dataset import write_set  # tests/ is on sys.path under pytest

TINY = {"min_image_side": 32, "resolution": 64, "rank": 4, "alpha": 8, "batch_size": 2, "gradient_accumulation": 1,
        "learning_rate": 5e-2, "steps": 20, "checkpoint_every": 100, "sample_steps": 1,
        "sample_prompts": ["a flat vector car <flt_vctr_style>"]}


def training(**over):
    return load_settings(overrides={"hardware": {"device": "cpu"}, "training": {**TINY, **over}}).training


def trainer(store, cfg) -> LoraTrainer:
    return LoraTrainer(store.require("sdxl"), cfg, variant=store.manifest.entry("sdxl").variant)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return validate_training_set(write_set(tmp_path_factory.mktemp("set") / "v1"), min_side=32)


@pytest.fixture(scope="module")
def trained(store, data, tmp_path_factory):
    t = trainer(store, training())
    return t, t.train(data, tmp_path_factory.mktemp("lora"))


def test_loss_falls_and_the_lora_is_written_in_the_diffusers_format(trained):
    t, res = trained
    assert res.finished and res.step == 20 and len(res.losses) == 20 and res.resumed_from is None
    before, after = res.eval_loss
    assert after < 0.97 * before                          # the fixed-noise loss, comparable across the run
    assert np.mean(res.losses[-5:]) < np.mean(res.losses[:5])
    assert res.sha256 == sha256_file(res.lora_path) and res.lora_path.name == "style.safetensors"
    sd = load_file(str(res.lora_path))
    # the diffusers names its SDXL LoRA training script writes (`load_lora_weights` also reads peft's)
    assert sd and all(k.startswith("unet.") and (".lora.down." in k or ".lora.up." in k) for k in sd)
    assert {v.shape[0] for k, v in sd.items() if ".lora.down." in k} == {4}
    grid = np.asarray(Image.open(res.sample_grid))
    assert grid.shape == (64 * 2 + 4, 64, 3)               # without / with the LoRA, one prompt
    assert not (res.lora_path.parent / "checkpoints").exists()
    assert trained_lora(res.lora_path.parent) == res.lora_path


def test_a_lora_that_does_not_match_its_record_is_refused(trained, tmp_path):
    _, res = trained
    copy = tmp_path / "v1"
    shutil.copytree(res.lora_path.parent, copy)
    with open(copy / "style.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\0")
    with pytest.raises(ModelMissingError, match="does not match its training record") as e:
        trained_lora(copy)
    assert e.value.file == str(copy / "style.safetensors") and "style_lora for version v1 again" in e.value.fix
    (copy / "lora.json").unlink()
    with pytest.raises(ModelMissingError, match="no finished style LoRA"):
        trained_lora(copy)


def test_resume_after_a_crash_and_a_time_limit_reaches_the_same_weights(store, data, tmp_path):
    over = {"steps": 6, "checkpoint_every": 2, "batch_size": 1, "gradient_accumulation": 2,
            "lr_scheduler": "cosine", "lr_warmup_steps": 1}
    straight = trainer(store, training(**over)).train(data, tmp_path / "straight")

    def crash(step, loss):
        if step == 3:
            raise RuntimeError("killed")

    out = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="killed"):
        trainer(store, training(**over)).train(data, out, on_step=crash)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002"]
    with pytest.raises(TrainingSetError, match="belong to another run") as e:     # a hybrid is never trained
        trainer(store, training(**over, rank=8)).train(data, out)
    assert "delete that folder" in e.value.fix and e.value.file == str(out / "checkpoints")
    stopped = trainer(store, training(**over, time_limit_s=1e-6)).train(data, out)   # time_limit_s is operational
    assert (stopped.finished, stopped.step, stopped.resumed_from) == (False, 3, 2) and stopped.lora_path is None
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    resumed = trainer(store, training(**over)).train(data, out)
    assert resumed.finished and resumed.resumed_from == 3 and resumed.step == 6
    a, b = load_file(str(straight.lora_path)), load_file(str(resumed.lora_path))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    assert resumed.eval_loss == pytest.approx(straight.eval_loss, rel=1e-5)
    assert not (out / "checkpoints").exists()          # a finished run leaves none to resume


def test_the_trained_lora_loads_into_the_steering_engine_and_changes_it(trained, ml_settings, tiny_root,
                                                                         tiny_manifest, tmp_path):
    """MlSteerer finds the LoRA through the model manifest, loads and fuses it: its UNet then computes what the
    trained one did, and the generated image differs from the base model's."""
    from v2v_resources.steer.ml import MlSteerer
    from v2v_resources.vram import VramManager

    t, res = trained
    manifest = yaml.safe_load(tiny_manifest.read_text())

    def steerer(lora: Path | None):
        """A model volume of the tiny models with `lora` (or none) as the style LoRA."""
        root = tmp_path / ("styled" if lora else "base")
        for name in ("sdxl", "controlnet-depth", "controlnet-canny", "depth"):
            path = manifest["models"][name]["path"]
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).symlink_to(tiny_root / path)
        entry = manifest["models"]["style-lora"]
        (root / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        if lora:
            shutil.copyfile(lora, root / entry["path"])
        entry["sha256"] = sha256_file(lora) if lora else None
        (root / "models.yaml").write_text(yaml.safe_dump(manifest))
        cfg = ml_settings.phase2.model_copy(update={"lora": ml_settings.phase2.lora.model_copy(update={"scale": 1.0})})
        return MlSteerer(cfg, None, ModelStore(root, root / "models.yaml"), VramManager(ml_settings.hardware))

    base, styled = steerer(None), steerer(res.lora_path)
    assert not base.lora and styled.lora and "style.safetensors at scale 1.0" in styled.lora_note
    g = torch.Generator().manual_seed(0)
    x, tt = torch.randn(1, 4, 8, 8, generator=g), torch.tensor([500])
    emb, pooled = torch.randn(1, 77, 64, generator=g), torch.randn(1, 32, generator=g)
    cond = {"encoder_hidden_states": emb, "added_cond_kwargs": {"text_embeds": pooled,
                                                                 "time_ids": torch.tensor([[64., 64, 0, 0, 64, 64]])}}
    with torch.no_grad():
        want = t.pipe.unet(x, tt, **cond).sample
        got = styled.pipe.unet(x, tt, **cond).sample
        plain = base.pipe.unet(x, tt, **cond).sample
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert (plain - want).abs().max() > 1e-3
    rng = np.random.default_rng(1)
    controls = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)) for _ in range(2)]
    a, b = (s.generate(controls, (64, 64), 7, (0.6, 0.4)) for s in (base, styled))
    assert a.shape == b.shape == (64, 64, 3) and np.abs(a.astype(int) - b).max() > 2


def test_the_dagster_assets_materialise_and_a_new_lora_marks_illustrations_stale(
        home, instance, sample_dir, tiny_manifest, monkeypatch, tmp_path):
    from dagster._utils.test.data_versions import get_stale_status_resolver

    from dagster_helpers import drop, tick
    from v2v_assets.definitions import build_definitions, build_resources
    from v2v_assets.training import LORA, TRAINING_SET, lora_versions
    from v2v_resources.phases import REGISTRY

    monkeypatch.setenv("V2V_MODELS", str(tiny_manifest.parent))
    monkeypatch.setenv("V2V_MODELS_MANIFEST", str(tiny_manifest))
    site = yaml.safe_load((CONFIG_DIR / "default.yaml").read_text())
    site["training"]["use_version"] = "v1"          # the illustrations are made with LoRA v1
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    monkeypatch.setenv("V2V_CONFIG", str(tmp_path / "site.yaml"))
    defs = build_definitions()
    graph, ill, lora_key = defs.resolve_asset_graph(), dg.AssetKey("illustration"), dg.AssetKey(LORA)
    assert {lora_key, dg.AssetKey("clean_plate")} == set(graph.get(ill).parent_keys)
    mapping = graph.get_partition_mapping(ill, lora_key)       # every image partition <- style_lora v1
    assert isinstance(mapping, dg.SpecificPartitionsPartitionMapping) and mapping.partition_keys == ["v1"]

    def train(seed: int, *selection: str):
        over = json.dumps({"hardware": {"device": "cpu"}, "training": {**TINY, "steps": 4, "seed": seed}})
        return dg.materialize([a for a in defs.assets if a.key.to_user_string() in (TRAINING_SET, LORA)],
                              instance=instance, partition_key="v1", selection=list(selection),
                              resources=build_resources(str(home.root), overrides_json=over))

    write_set(home.root / "training_sets" / "v1")
    instance.add_dynamic_partitions(lora_versions.name, ["v1"])
    run = train(42, TRAINING_SET, LORA)
    assert run.success
    md = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
          for e in run.get_asset_materialization_events()}
    ts, lora = md[TRAINING_SET], md[LORA]
    assert ts["images"].value == 3 and ts["preview"].value.count("data:image/png;base64,") == 3
    path = Path(lora["path/lora"].value)
    assert path == home.path(LORA, "v1", "style.safetensors") and lora["sha256"].value == sha256_file(path)
    assert len(lora["loss/per_step"].value["loss"]) == 4 and lora["loss/plot"].value.startswith("![")
    assert "data:image/png;base64," in lora["samples"].value and lora["training_set"].value == ts["digest"].value

    # an illustration made while v1 is current is fresh; retraining v1 into other weights makes it stale
    drop(home, sample_dir / "sample-00000.jpg")
    key = list(tick(instance, home).dynamic_partitions_requests[0].partition_keys)[0]
    lite = json.dumps({"phase1": {"backend": "lite"}, "phase2": {"backend": "lite", "generation_long_side": 128},
                       "intake": {"working_long_side": 128}})
    chain = [a for a in defs.assets if a.key.to_user_string() in REGISTRY.names]
    assert dg.materialize(chain, instance=instance, partition_key=key,
                          selection=["photo", "clean_plate", "illustration"],
                          resources=build_resources(str(home.root), overrides_json=lite)).success
    assert get_stale_status_resolver(instance, defs.assets).get_status(ill, key).value == "FRESH"
    assert train(7, LORA).success
    causes = get_stale_status_resolver(instance, defs.assets).get_stale_causes(ill, key)
    assert [(c.dependency.asset_key, c.dependency.partition_key) for c in causes] == [(lora_key, "v1")]
    monkeypatch.delenv("V2V_CONFIG")                 # no version chosen: no edge
    assert lora_key not in build_definitions().resolve_asset_graph().get(ill).parent_keys


def test_training_use_version_makes_the_illustration_engine_load_that_lora(trained, ml_settings, tiny_root,
                                                                          tiny_manifest, tmp_path):
    """With training.use_version, the engines built for a run (Dagster's, the CLI's) load the LoRA the
    style_lora asset wrote under $V2V_HOME/storage/style_lora/<version>, checked against its record."""
    from v2v_resources.errors import ModelMissingError
    from v2v_resources.phases import Engines
    from v2v_resources.storage import Home

    _, res = trained
    home = Home(tmp_path / "home").ensure()
    shutil.copytree(res.lora_path.parent, home.storage / "style_lora" / "v1")
    settings = ml_settings.model_copy(update={"training": ml_settings.training.model_copy(
        update={"use_version": "v1"})})
    steerer = Engines(settings, home.cache, models_root=tiny_root, manifest=tiny_manifest,
                      home=home).get("illustration")
    assert steerer.lora and steerer.lora_note.startswith("v1/style.safetensors (trained here)")
    missing = settings.model_copy(update={"training": settings.training.model_copy(update={"use_version": "v2"})})
    with pytest.raises(ModelMissingError, match="no finished style LoRA"):
        Engines(missing, home.cache, models_root=tiny_root, manifest=tiny_manifest, home=home).get("illustration")
