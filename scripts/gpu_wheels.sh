#!/bin/bash
# Fetches, HERE (PyPI is reachable), the Python packages that `amodal-train-synthetic` and the GPU speed
# benchmark (benchmarks/gpu.sh: SAM, SAM 2, 8-bit Flux) need and the GPU machine's image lacks, into .whl/
# (git-ignored), for scripts/gpu_train.sh and benchmarks/gpu.sh to install THERE. Once per checkout.
#   bash scripts/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  diffusers==0.42.1 hydra-core==1.3.8 omegaconf==2.3.1 importlib_metadata==10.2.0 \
  segment-anything==1.0 optimum-quanto==0.2.7
# published as source archives only (all pure Python)
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3 iopath==0.1.10
# sam2 compiles an optional CUDA extension unless told not to; its build needs torch: the project's venv
SAM2_BUILD_CUDA=0 "${VENV:-.venv}/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w .whl sam2==1.1.0
ls -la .whl
