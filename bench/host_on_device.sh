#!/usr/bin/env bash
# The v2v host benchmarks on a lent GPU machine whose Python lacks some of our packages (wheels carried in
# $WHL, see /work/.library/device/README.md). Results (JSON lines), logs and the GPU's name go to $OUT.
#   WHL=../whl bench/host_on_device.sh host    --images 64          # bench/host_throughput.py
#   WHL=../whl bench/host_on_device.sh dagster --images 16 --modes host,inprocess   # bench/dagster_gpu.py
set -uo pipefail
OUT=${OUT:-/tmp/v2v-host-out}
WHL=${WHL:-.whl}
mkdir -p "$OUT"
if [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error \
  DIFFUSERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1 PATH=/tmp/site/bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/gpu.txt"
python3 -c "import torch, diffusers, transformers, fastapi, uvicorn, dagster; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'dagster', dagster.__version__, 'fastapi', fastapi.__version__)" >> "$OUT/gpu.txt" 2>&1
what=$1; shift
case "$what" in
  host) python3 bench/host_throughput.py --work /tmp/bench-work --results "$OUT/host_throughput.jsonl" "$@" 2>&1 | grep -vE "Token indices|truncated because|LoRA keys" | tee -a "$OUT/host_bench.log"
        cp /tmp/bench-work/host.log "$OUT/host_server.log" 2>/dev/null ;;
  dagster) python3 bench/dagster_gpu.py --work /tmp/bench-work --results "$OUT/dagster_gpu.jsonl" "$@" 2>&1 | grep -vE "Token indices|truncated because|LoRA keys" | tee -a "$OUT/dagster_bench.log"
        tail -c 400000 /tmp/bench-work/dagster-host/daemon.log > "$OUT/daemon_host.log" 2>/dev/null
        tail -c 400000 /tmp/bench-work/dagster-inprocess/daemon.log > "$OUT/daemon_inprocess.log" 2>/dev/null ;;
  *) echo "usage: $0 host|dagster [bench args]"; exit 2 ;;
esac
