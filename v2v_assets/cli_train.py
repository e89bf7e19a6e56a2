"""`v2v train VERSION`: validate a style training set and fine-tune the SDXL LoRA on it, without Dagster.

It writes where the `style_lora` asset writes ($V2V_HOME/storage/style_lora/<version>/), so a run stopped by
its time limit or a crash resumes from the same checkpoints, from either side.
"""
from __future__ import annotations

from pathlib import Path

from .cli_models import _model_args


def cmd_train(args) -> int:
    from v2v_resources.settings import deep_merge, load_settings
    from v2v_resources.storage import Home
    from v2v_resources.train import profile_overrides, training_set_folder
    from v2v_resources.train.dataset import validate_training_set

    overrides: dict = profile_overrides(args.profile) if args.profile else {}
    cli = {"steps": args.steps, "time_limit_s": args.time_limit}
    overrides = deep_merge(overrides, {"training": {k: v for k, v in cli.items() if v is not None}})
    settings = load_settings(args.config, overrides=overrides)
    cfg = settings.training
    home = Home(Path(args.home).resolve() if args.home else Home.from_env().root).ensure()
    folder = Path(args.data) if args.data else training_set_folder(cfg.data_dir, home.root, args.version)
    data = validate_training_set(folder, min_side=cfg.min_image_side)
    s = data.summary()
    print(f"{folder}: {s['images']} images, sides {s['min_side']}–{s['max_side']} px, "
          f"{', '.join(f'{n} {f}' for f, n in s['formats'].items())}, digest {s['digest'][:12]}")
    if args.check:
        return 0
    from v2v_resources.models.verify import ModelStore
    from v2v_resources.train.lora import LoraTrainer
    from v2v_resources.vram import resolve_device

    store = ModelStore(args.models, args.manifest)
    out = Path(args.out) if args.out else home.asset_dir("style_lora", args.version)
    every = max(1, cfg.steps // 20)
    trainer = LoraTrainer(store.require("sdxl"), cfg, variant=store.manifest.entry("sdxl").variant,
                          device=resolve_device(settings.hardware.device))
    result = trainer.train(data, out, on_step=lambda step, loss: print(f"step {step}/{cfg.steps} loss {loss:.4f}")
                           if step % every == 0 or step == cfg.steps else None)
    for note in result.notes:
        print(f"note: {note}")
    if result.resumed_from:
        print(f"resumed from step {result.resumed_from}")
    if not result.finished:
        print(f"stopped at the time limit at step {result.step}/{result.steps}; checkpoint saved under "
              f"{out / 'checkpoints'}: run the same command again to resume")
        return 1
    print(f"{result.lora_path} sha256 {result.sha256}; samples {result.sample_grid}; "
          f"fixed-noise loss {result.eval_loss[0]:.4f} -> {result.eval_loss[1]:.4f}")
    return 0


def add_commands(subparsers) -> None:
    tr = subparsers.add_parser("train", help="fine-tune the style LoRA on a training set version (no Dagster)")
    tr.add_argument("version", help="the training set version, e.g. v1 (its folder: <training.data_dir>/v1)")
    tr.add_argument("--data", help="the training set folder (default: <training.data_dir or "
                                   "$V2V_HOME/training_sets>/VERSION)")
    tr.add_argument("--out", help="output folder (default $V2V_HOME/storage/style_lora/VERSION)")
    tr.add_argument("--home", help="v2v home (default $V2V_HOME or ./.v2v)")
    tr.add_argument("--config", help="a settings YAML (default: configs/default.yaml)")
    tr.add_argument("--profile", help="a training profile from configs/training/, e.g. 24gb")
    tr.add_argument("--steps", type=int, help="override training.steps")
    tr.add_argument("--time-limit", type=float, help="override training.time_limit_s (seconds)")
    tr.add_argument("--check", action="store_true", help="only validate the training set")
    _model_args(tr)
    tr.set_defaults(func=cmd_train)
