"""The GPU path measured through Dagster: the real instance, `dagster-daemon` with the inbox sensor, and the
GPU phases on `v2v host` (or, as the baseline, in each step's own process).

    python bench/dagster_gpu.py --work .bench-work --images 64 --results bench/results/dagster_gpu.jsonl
    python bench/dagster_gpu.py --scale tiny --device cpu --images 3 --size 128x96 --modes host  # smoke test

For each mode (`host`: the gpu_models resource talks to `--hosts` hosts started here, one per GPU;
`inprocess`: the per-step path, engines loaded in every GPU step's process) on a fresh instance
(configs/dagster.yaml) and home:
  burst   N photos dropped into the inbox at once: images per hour from the drop to the last SVG
  single  then one photo dropped on the warm system: seconds from the drop to its SVG, split into the phases'
          own compute (their recorded seconds) and the rest (sensor tick, run queue and launch, steps)
The hosts' cold start (spawn → all /ready) is reported too. With hosts, runs are `--run-batch` images (a host
batches across runs, so small runs cost nothing and let phases of different runs overlap) and the `gpu` pool
admits `--steps-per-host` GPU steps per host. Settings: the seed's quality settings with what
random weights need (bench/gpu_throughput.py `bench_overrides`), written into a configs/ copy that the host,
the daemon, its sensor and every run read ($V2V_CONFIG_DIR). Generated images are flattened after SDXL in
both modes (bench/host_serve.py says why).

As a Dagster code location (`dagster-daemon run -f bench/dagster_gpu.py -a defs`) this file is the project's
definitions with the gpu_models resource pointed at $V2V_BENCH_HOSTS (comma-separated; empty: in-process).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from host_serve import flatten_generated  # noqa: E402
from v2v_assets.definitions import build_definitions  # noqa: E402

flatten_generated()     # the in-process baseline's steps generate here: same flattening as bench/host_serve.py
defs = build_definitions(hosts=[h for h in os.environ.get("V2V_BENCH_HOSTS", "").split(",") if h])


def settings_dir(path: Path, overrides: dict) -> Path:
    import yaml

    from v2v_resources.settings import deep_merge

    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(ROOT / "configs", path)
    default = path / "default.yaml"
    default.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(default.read_text()), overrides)))
    return path


def photo_bytes(i: int, size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    from v2v_resources.samples import draw_sample

    rgb, _, _ = draw_sample(5000 + i, size)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def drop(inbox: Path, names_and_bytes: list[tuple[str, bytes]]) -> float:
    """Write the files as finished arrivals (older than the settle time), then return the drop time."""
    for name, data in names_and_bytes:
        tmp = inbox / f".{name}.part"
        tmp.write_bytes(data)
        old = time.time() - 60
        os.utime(tmp, (old, old))
        tmp.rename(inbox / name)
    return time.time()


def svgs_done(home) -> dict[str, float]:
    """key → when its last phase ended: vector_svg's meta.json (or failure.json: counted, and reported)."""
    root = home.storage / "vector_svg"
    out = {}
    if root.is_dir():
        for d in root.iterdir():
            for name in ("meta.json", "failure.json"):
                if (d / name).is_file():
                    out[d.name] = (d / name).stat().st_mtime
    return out


def failed(home) -> list[str]:
    return sorted(p.parent.parent.name + "/" + p.parent.name for p in home.storage.glob("*/*/failure.json"))


def daemon(dh: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", "-f", str(Path(__file__).resolve()),
                             "-a", "defs"], cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **env, "DAGSTER_HOME": str(dh)})


def stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait(pred, timeout_s: float, what: str, poll_s: float = 0.25):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll_s)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


def instance_yaml(mode: str, args) -> str:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "dagster.yaml").read_text())
    if mode == "host":
        cfg["concurrency"]["pools"]["default_limit"] = args.steps_per_host * args.hosts
        cfg["concurrency"]["runs"]["max_concurrent_runs"] = args.steps_per_host * args.hosts + 1
    return yaml.safe_dump(cfg)


def compute_seconds(home, key: str) -> float:
    from v2v_resources.phases import REGISTRY

    return sum(json.loads(home.path(p.name, key, "meta.json").read_text())["seconds"] for p in REGISTRY)


def run_mode(mode: str, args, work: Path, models: Path, overrides: dict, photos: list[bytes], emit) -> None:
    import dagster as dg

    from host_throughput import start_host
    from v2v_resources.host.client import HostClient
    from v2v_resources.settings import deep_merge
    from v2v_resources.storage import Home

    base = work / f"dagster-{mode}"
    if base.exists():
        shutil.rmtree(base)
    home = Home(base / "home").ensure()
    if mode == "host":
        overrides = deep_merge(overrides, {"intake": {"max_batch": args.run_batch}})
    cfg_dir = settings_dir(base / "configs", overrides)
    dh = base / "dagster_home"
    dh.mkdir(parents=True)
    (dh / "dagster.yaml").write_text(instance_yaml(mode, args))
    env = {"V2V_HOME": str(home.root), "V2V_CONFIG_DIR": str(cfg_dir), "V2V_MODELS": str(models),
           "V2V_MODELS_MANIFEST": str(models / "models.yaml"), "V2V_BENCH_HOSTS": "",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    hosts = []
    try:
        if mode == "host":
            urls = [f"http://127.0.0.1:{args.port + i}" for i in range(args.hosts)]
            env["V2V_BENCH_HOSTS"] = ",".join(urls)
            t = time.time()
            for i in range(args.hosts):
                one = argparse.Namespace(**{**vars(args), "port": args.port + i,
                                            "device": f"cuda:{i}" if args.device.startswith("cuda") else args.device})
                hosts.append(start_host(one, cfg_dir / "default.yaml", models, base / f"host{i}.log"))
            ready = {}
            for url in urls:                      # started together; waited for one by one
                with HostClient(url) as c:
                    ready[url] = c.wait_ready(1200, poll_s=0.5)[url]
            emit({"mode": mode, "measure": "host_cold_start", "hosts": len(urls),
                  "seconds": round(time.time() - t, 2), "host_timings": [r["timings"] for r in ready.values()]})
        with dg.DagsterInstance.from_config(str(dh)):
            pass                       # create the storage before the daemon and its code server race to
        d = daemon(dh, env, base / "daemon.log")
        try:
            names = [(f"car{i:03d}.jpg", b) for i, b in enumerate(photos[: args.images])]
            t0 = drop(home.inbox, names)
            done = wait(lambda: (lambda s: s if len(s) >= len(names) else None)(svgs_done(home)),
                        args.timeout_s, f"{len(names)} SVGs")
            last = max(done.values())
            emit({"mode": mode, "measure": "burst", "images": len(done), "wall_s": round(last - t0, 2),
                  "images_per_hour": round(len(done) / (last - t0) * 3600, 1), "failed": failed(home)})
            if mode in args.single_modes.split(","):
                before = set(done)
                t1 = drop(home.inbox, [("single.jpg", photos[-1])])
                new = wait(lambda: {k: v for k, v in svgs_done(home).items() if k not in before},
                           args.timeout_s, "the single photo's SVG")
                total, compute = max(new.values()) - t1, compute_seconds(home, next(iter(new)))
                emit({"mode": mode, "measure": "single_warm", "seconds": round(total, 2),
                      "compute_s": round(compute, 2), "orchestration_s": round(total - compute, 2)})
        finally:
            with dg.DagsterInstance.from_config(str(dh)) as inst:    # runs end their teardown before the stop
                try:
                    wait(lambda: all(r.is_finished for r in inst.get_runs()), 120, "the runs to end", poll_s=1)
                except TimeoutError:
                    pass
            stop_group(d)
            with dg.DagsterInstance.from_config(str(dh)) as inst:
                runs = inst.get_runs()
                emit({"mode": mode, "measure": "runs", "runs": len(runs),
                      "statuses": sorted(str(r.status.value) for r in runs)})
    finally:
        for host in hosts:
            host.terminate()
        for host in hosts:
            try:
                host.wait(30)
            except subprocess.TimeoutExpired:
                host.kill()


def main() -> int:
    from gpu_throughput import bench_inputs, bench_overrides, bench_parser

    ap = bench_parser(__doc__)
    ap.add_argument("--modes", default="host,inprocess")
    ap.add_argument("--single-modes", default="host,inprocess", help="modes that also time one photo after")
    ap.add_argument("--port", type=int, default=8775, help="the first host's; host i listens on port + i")
    ap.add_argument("--hosts", type=int, default=1, help="host mode: one host per GPU, cuda:0 … cuda:N-1")
    ap.add_argument("--run-batch", type=int, default=16, help="host mode: images per run (intake.max_batch)")
    ap.add_argument("--steps-per-host", type=int, default=3, help="host mode: gpu pool slots per host")
    ap.add_argument("--budget-gb", type=float, default=None, help="hardware.max_vram_gb (e.g. 22 for 24gb)")
    ap.add_argument("--timeout-s", type=float, default=1800)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # a killed bench still stops what it started

    import torch

    from v2v_resources.settings import load_settings

    cuda, work, models, size = bench_inputs(args, "v2v-dagster-gpu-")
    overrides = bench_overrides("auto" if cuda else "cpu", args.budget_gb, size, args.steps)
    overrides["host"] = {"port": args.port}
    # random weights' rasters are noise that a 15-colour trace cannot render back to 98 %: the bound is opened
    # so every image reaches its SVG (the phase still traces, validates and renders it)
    overrides["phase4"] = {"quality": {"min_agreement": 0.0}}
    # and a random SAM cannot redraw the silhouette it drew before inpainting (phase I's blocking IoU check)
    overrides["phase1"]["quality"]["min_silhouette_iou"] = 0.0
    settings = load_settings(overrides=overrides)
    photos = [photo_bytes(i, size) for i in range(args.images + 1)]

    def emit(rec: dict) -> None:
        rec = {"bench": "dagster_gpu", "scale": args.scale, "size": args.size, "steps": settings.phase2.sdxl.steps,
               "device": torch.cuda.get_device_name(0) if cuda else "cpu", "date": time.strftime("%Y-%m-%d"),
               "max_batch": settings.host.max_batch, **rec}
        print(json.dumps(rec), flush=True)
        if args.results:
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(rec) + "\n")

    ok = True
    for mode in args.modes.split(","):
        try:
            run_mode(mode, args, work, models, overrides, photos, emit)
        except Exception as e:      # the next mode still runs; the failure is a result line
            ok = False
            emit({"mode": mode, "measure": "error", "error": f"{type(e).__name__}: {e}"[:500]})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
