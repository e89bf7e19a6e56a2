"""Wall time of `v2v process` on one 1024-px photo with the lite backends, the way a user runs it.

    .venv/bin/python bench/cli_latency.py [--photo PATH] [--runs 3]

cold: a new process and an empty $V2V_HOME (no palette lookup table cached yet); warm: a new process on the
home the previous run left. Each is the median of `--runs`. Also reports whether the lite path imported torch,
diffusers or transformers (it must not) and the machine's load average, since other work on the machine
inflates every number. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
V2V = [sys.executable, "-m", "v2v_assets.cli"]
HEAVY = ("torch", "diffusers", "transformers")
PROBE = ("import runpy, sys; sys.argv = ['v2v'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('v2v_assets.cli', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         f"print('heavy:', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")


def sample_photo(folder: Path) -> Path:
    from PIL import Image

    from v2v_resources.samples import generate_samples

    src = next(p for p in generate_samples(folder, 1, seed=3) if p.suffix == ".jpg")
    with Image.open(src) as im:
        im.thumbnail((1024, 1024))
        out = folder / "photo-1024.jpg"
        im.save(out, quality=92)
    return out


def run_once(photo: Path, home: Path, out: Path) -> float:
    env = {**os.environ, "V2V_HOME": str(home)}
    t0 = time.perf_counter()
    subprocess.run([*V2V, "process", str(photo), str(out), "--backend", "lite"], env=env, check=True,
                   capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="v2v-cli-latency-") as tmp:
        tmp = Path(tmp)
        photo = args.photo or sample_photo(tmp)
        cold, warm = [], []
        for i in range(args.runs):
            home = tmp / f"home-{i}"
            cold.append(run_once(photo, home, tmp / "out.svg"))
            warm.append(run_once(photo, home, tmp / "out.svg"))
        probe = subprocess.run([sys.executable, "-c", PROBE, "process", str(photo), str(tmp / "p.svg"),
                                "--backend", "lite"], env={**os.environ, "V2V_HOME": str(tmp / "home-0")},
                               capture_output=True, text=True, cwd=ROOT)
        heavy = json.loads(probe.stderr.strip().splitlines()[-1].removeprefix("heavy: ").replace("'", '"'))
    load = os.getloadavg()[0]
    res = {"photo": str(args.photo or "synthetic 1024 px"), "runs": args.runs,
           "cold_median_s": round(statistics.median(cold), 2), "warm_median_s": round(statistics.median(warm), 2),
           "cold_s": [round(t, 2) for t in cold], "warm_s": [round(t, 2) for t in warm],
           "heavy_imports": heavy, "load_average_1min": round(load, 2), "cpus": os.cpu_count()}
    print(f"v2v process, lite, 1024 px: cold median {res['cold_median_s']} s {res['cold_s']}, "
          f"warm median {res['warm_median_s']} s {res['warm_s']}; heavy imports {heavy or 'none'}; "
          f"load average {load:.2f} on {os.cpu_count()} cores")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
