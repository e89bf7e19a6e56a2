"""The style LoRA as Dagster assets, one partition per version ("v1", "v2", …):

- `style_training_set`: the folder `<training.data_dir or $V2V_HOME/training_sets>/<version>/` validated and
  recorded (every file's sha256 and caption), summarised with thumbnails; its data version is the set's digest;
- `style_lora`: the SDXL LoRA fine-tuned on it (v2v_resources/train), with the loss curve, the sample grid,
  the safetensors path and its sha256 (the data version, so only new weights make dependents stale).

`lineage_deps(settings)` gives the illustration asset its edge to the chosen version (`training.use_version`):
the UI then shows which LoRA shaped which illustration, and a new materialisation of that version marks the
illustrations stale. No torch at import: the training engine is imported inside the step.
"""

import hashlib
import json

import dagster as dg

from v2v_resources.errors import V2VError
from v2v_resources.phases import thumbnail_markdown
from v2v_resources.settings import Settings
from v2v_resources.storage import Home, sha256_file, write_json_atomic
from v2v_resources.train import training_set_folder
from v2v_resources.train.dataset import PHASE, TrainingSet, TrainingSetError, validate_training_set

GROUP = "style_training"
TRAINING_SET, LORA = "style_training_set", "style_lora"
SET_FILE = "training_set.json"
ENGINE_VERSION = "1"
lora_versions = dg.DynamicPartitionsDefinition(name="lora_versions")


def _failure(e: V2VError) -> dg.Failure:
    return dg.Failure(description=e.one_line(), metadata={"file": e.file or "", "fix": e.fix or ""})


def _thumbnails(data: TrainingSet, n: int = 8) -> str:
    """A markdown table of the first images (data-URI thumbnails) and their captions."""
    from v2v_resources.imaging import load_photo, thumbnail_png

    rows = ["| image | caption |", "|---|---|"]
    for ex in data.examples[:n]:
        png = thumbnail_png(load_photo(ex.image, min_side=1, max_aspect_ratio=float("inf")).rgb, 96, 6000)
        rows.append(f"| {thumbnail_markdown(png)} | {ex.caption.replace('|', '/')} |")
    if len(data.examples) > n:
        rows.append(f"| … | {len(data.examples) - n} more |")
    return "\n".join(rows)


@dg.asset(name=TRAINING_SET, group_name=GROUP, partitions_def=lora_versions, kinds={"python"},
          code_version=ENGINE_VERSION, required_resource_keys={"v2v_home", "v2v_config"},
          description="A version of the style training set: reference illustrations with .txt captions, "
                      "validated (formats, sizes, duplicates, captions) and recorded by sha256.")
def style_training_set(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    version, home = context.partition_key, context.resources.v2v_home.home
    cfg = context.resources.v2v_config.settings.training
    folder = training_set_folder(cfg.data_dir, home.root, version)
    try:
        data = validate_training_set(folder, min_side=cfg.min_image_side)
    except V2VError as e:
        raise _failure(e) from e
    record = write_json_atomic(home.path(TRAINING_SET, version, SET_FILE), data.to_dict())
    s = data.summary()
    md = {"images": s["images"], "digest": s["digest"], "min_side": s["min_side"], "max_side": s["max_side"],
          "formats": dg.MetadataValue.json(s["formats"]), "folder": dg.MetadataValue.path(data.folder),
          "path/record": dg.MetadataValue.path(str(record)),
          "preview": dg.MetadataValue.md(_thumbnails(data))}
    if s["ignored"]:
        md["ignored"] = ", ".join(s["ignored"])
        context.log.warning(f"{folder}: ignored files that are neither images nor captions: {md['ignored']}")
    return dg.MaterializeResult(metadata=md, data_version=dg.DataVersion(data.digest[:16]))


def recorded_set(home: Home, version: str) -> TrainingSet:
    """The set as validated, checked unchanged since (training on silently edited files would lie about
    lineage)."""
    path = home.path(TRAINING_SET, version, SET_FILE)
    if not path.is_file():
        raise TrainingSetError(f"training set version {version!r} is not materialised", file=str(path),
                               phase=PHASE, fix=f"materialise {TRAINING_SET} for {version} first")
    data = TrainingSet.from_dict(json.loads(path.read_text()))
    for ex in data.examples:
        try:
            same = sha256_file(ex.image) == ex.sha256
        except OSError:
            same = False
        if not same:
            raise TrainingSetError("changed or removed since the training set was validated", file=ex.image,
                                   phase=PHASE, fix=f"materialise {TRAINING_SET} for {version} again")
    return data


def lora_code_version(settings: Settings) -> str:
    digest = hashlib.sha256(json.dumps(settings.fingerprint("training"), sort_keys=True).encode()).hexdigest()
    return f"{ENGINE_VERSION}-{digest[:12]}"


def _loss_metadata(losses: list[float], eval_loss: tuple[float, float | None]) -> dict:
    from v2v_resources.train.report import loss_plot_png, smooth

    tail = smooth(losses, max(1, len(losses) // 20))[-1]
    md = {"loss/final_smoothed": dg.MetadataValue.float(round(tail, 6)),
          "loss/eval_before": dg.MetadataValue.float(round(eval_loss[0], 6)),
          "loss/per_step": dg.MetadataValue.json({"step": list(range(1, len(losses) + 1)),
                                                  "loss": [round(v, 6) for v in losses]}),
          "loss/plot": dg.MetadataValue.md(thumbnail_markdown(loss_plot_png(losses)))}
    if eval_loss[1] is not None:
        md["loss/eval_after"] = dg.MetadataValue.float(round(eval_loss[1], 6))
    return md


def lora_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(name=LORA, group_name=GROUP, partitions_def=lora_versions, deps=[TRAINING_SET],
              kinds={"python", "gpu"}, pool="gpu", code_version=lora_code_version(settings),
              required_resource_keys={"v2v_home", "v2v_config", "engines"},
              description="The SDXL style LoRA fine-tuned (diffusers + peft) on this version of the training "
                          "set; resumes from its last checkpoint after a crash or a time limit.")
    def style_lora(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from v2v_resources.train.lora import LoraTrainer
        from v2v_resources.vram import resolve_device

        res, version = context.resources, context.partition_key
        home, run_settings = res.v2v_home.home, res.v2v_config.settings
        cfg, every = run_settings.training, max(1, run_settings.training.steps // 50)
        store = res.engines.engines(run_settings).store

        def progress(step: int, loss: float) -> None:
            if step % every == 0 or step == cfg.steps:     # a bounded number of log lines per run
                context.log.info(f"style LoRA {version}: step {step}/{cfg.steps}, loss {loss:.4f}")

        try:
            data = recorded_set(home, version)
            trainer = LoraTrainer(store.require("sdxl"), cfg, variant=store.manifest.entry("sdxl").variant,
                                  device=resolve_device(run_settings.hardware.device))
            result = trainer.train(data, home.asset_dir(LORA, version), on_step=progress)
        except V2VError as e:
            raise _failure(e) from e
        for note in result.notes:
            context.log.warning(note)
        if not result.finished:
            raise dg.Failure(description=f"stopped at the time limit ({cfg.time_limit_s} s) at step "
                                         f"{result.step} of {result.steps}; a checkpoint is saved: materialise "
                                         f"{LORA} {version} again to resume", metadata=_loss_metadata(
                                             result.losses, result.eval_loss))
        from v2v_resources.imaging import load_png, thumbnail_png

        md = {"path/lora": dg.MetadataValue.path(str(result.lora_path)), "sha256": result.sha256,
              "steps": result.step, "seconds": dg.MetadataValue.float(round(result.seconds, 2)),
              "resumed_from": result.resumed_from or 0, "training_set": data.digest,
              "samples": dg.MetadataValue.md(
                  "without LoRA (top) / with it (bottom)\n\n" + thumbnail_markdown(
                      thumbnail_png(load_png(result.sample_grid), 768, 200_000))),
              "path/samples": dg.MetadataValue.path(str(result.sample_grid)),
              **_loss_metadata(result.losses, result.eval_loss)}
        return dg.MaterializeResult(metadata=md, data_version=dg.DataVersion(result.sha256[:16]))

    return style_lora


def training_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    return [style_training_set, lora_asset(settings)]


def lineage_deps(settings: Settings) -> dict[str, list[dg.AssetDep]]:
    """Extra deps of the phase assets: illustration ← the chosen style_lora version (none when unset)."""
    version = settings.training.use_version
    if not version:
        return {}
    return {"illustration": [dg.AssetDep(LORA, partition_mapping=dg.SpecificPartitionsPartitionMapping([version]))]}
