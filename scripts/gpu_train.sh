#!/bin/bash
# Trains the synthetic backbone (`backbone=synthetic_sd`) on a lent GPU machine and leaves the exported
# pipeline (float16, with its MODEL_CARD.md) as one archive in $OUT: the device tool brings back at most
# 8 files of at most 16 MiB each. Run from the repository root THERE, after scripts/gpu_wheels.sh HERE:
#   device run: command="bash scripts/gpu_train.sh", carry=[".whl"], timeout_s=600
# Extra arguments are overrides of conf_train/synthetic.yaml (they follow the GPU recipe's, so they win).
# Then, here: tar -xf <files_at>/synthetic_sd.tar -C /tmp && amodal-run experiment=synthetic_ablation \
#   variant=full backbone.pipeline.model=/tmp/synthetic_sd backbone.resolution=128   (docs/synthetic_backbone.md)
set -euo pipefail
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi") | tee "$OUT/gpu.txt"
run=/tmp/train-gpu
# The GPU recipe: the CPU recipe's model at a 128 px view instead of 64 (the autoencoder keeps 75 % of an
# object's texture there, 48 % at 64 px: `python scripts/extractor_ceiling.py --size 128 --autoencoder
# shipped`), 4× the batch and 4× the steps; its speed there was not measured yet. Evaluate it with
# backbone.resolution=128. Past SECONDS_TO_TRAIN (the command limit is 600 s) the run is stopped and ended
# at its last checkpoint: run again with unet.steps = that step, it resumes, finds nothing left and exports.
recipe=(hydra.run.dir=$run export.dir=/tmp/synthetic_sd device=cuda workers=$(( $(nproc) - 2 )) threads=2
        logger.mode=disabled progress=false checkpoint_every=1000 data.view=128
        unet.batch_size=64 unet.steps=20000 "$@")
timeout "${SECONDS_TO_TRAIN:-420}" python3 -m amodal.cli.train_synthetic "${recipe[@]}" 2>&1 | tee "$OUT/train.log" || true
if [ ! -f /tmp/synthetic_sd/MODEL_CARD.md ]; then
  step=$(python3 -c "import torch; print(torch.load('$run/checkpoints/unet.pt', weights_only=True)['step'])")
  echo "stopped early: exporting the checkpoint of step $step" | tee -a "$OUT/train.log"
  python3 -m amodal.cli.train_synthetic "${recipe[@]}" unet.steps="$step" 2>&1 | tee -a "$OUT/train.log"
fi
tar -C /tmp -cf "$OUT/synthetic_sd.tar" synthetic_sd
cp $run/summary.json $run/loss.png "$OUT/"
