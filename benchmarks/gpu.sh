#!/bin/bash
# The paper's Table S1 on a lent GPU, in under 8 minutes: seconds per object, peak GPU memory and objects/s
# at batch 8 of the whole method for SD1.5, SD2, SDXL and 8-bit Flux, each with SAM ViT-H and SAM 2.1 L,
# native resolution, 20 steps, float16; full-size architectures with random weights (benchmarks/table_s1.py).
# Once, HERE: bash scripts/gpu_wheels.sh (the packages the GPU image lacks, into .whl/). Then, THERE:
#   device run: command="bash benchmarks/gpu.sh", carry=[".whl"], timeout_s=600
# → $OUT/table_s1.md (the table of docs/speed.md), table_s1.json, table_s1.log, gpu.txt. Arguments go to
# table_s1.py (e.g. --backbones sd15 sdxl); the tests run it with tiny models on a CPU:
#   PYTHON=.venv/bin/python OUT=/tmp/s1 bash benchmarks/gpu.sh --tiny --device cpu --dtype float32
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# whether the packages are there, found without importing them (importing diffusers alone takes seconds)
if ! "$PYTHON" -c "import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ('diffusers', 'hydra', 'segment_anything', 'sam2', 'iopath', 'optimum.quanto')))" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU") \
  | tee "$OUT/gpu.txt"
"$PYTHON" benchmarks/table_s1.py --budget "${SECONDS_FOR_TABLE:-450}" --out "$OUT" "$@" 2>&1 | tee "$OUT/table_s1.log"
