"""bench/gpu_throughput.py end to end on tiny synthetic models on the CPU: it writes the models, prepares the
inputs, runs two variants in their own processes through the production engines and reports every figure."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_throughput.py"


def test_benchmark_runs_on_cpu_with_tiny_models(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--scale", "tiny", "--device", "cpu", "--images", "2", "--warmup", "1",
         "--size", "128x96", "--steps", "2", "--variants", "seed,default", "--profiles", "all-resident",
         "--cpu-workers", "1", "--work", str(tmp_path), "--results", str(tmp_path / "runs.jsonl")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = {r["variant"]: r for r in final["runs"]}
    assert set(runs) == {"seed", "default"}
    for r in runs.values():
        assert r["images"] == 2 and not r["failures"] and r["svg_ok"] == 2
        assert r["images_per_hour"] > 0 and r["attempts_per_image"] == 1 and r["steps"] == 2
        assert all(v is not None and v > 0 for v in r["s_per_image"].values())
        assert r["sdxl_s_per_attempt"] > 0 and r["denoiser_step_ms"] > 0 and r["agreement_min"] >= 0.98
    assert runs["seed"]["overlap_cpu"] is False and runs["default"]["overlap_cpu"] is True
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "models-tiny" / "models.yaml").is_file()
