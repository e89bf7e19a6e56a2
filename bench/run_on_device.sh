#!/usr/bin/env bash
# bench/gpu_throughput.py on a lent GPU machine whose Python lacks some of our packages (their wheels are
# carried in .whl/, see ../.library/device/README.md). Logs and one JSON line per run go to $OUT.
#   bench/run_on_device.sh --variants default --images 16
set -euo pipefail
OUT=${OUT:-/tmp/v2v-bench-out}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/gpu.txt"
python3 bench/gpu_throughput.py --work .bench-work --results "$OUT/results.jsonl" "$@" 2>&1 | tee -a "$OUT/bench.log"
