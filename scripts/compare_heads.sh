#!/usr/bin/env bash
# The head comparison on real faces: each head trained from scratch with configs/cpu45.py on
# the same content-hash split and the same short budget, then scored on the held-out test
# split. Usage: scripts/compare_heads.sh DATA_DIR [EPOCHS] [OUT]; prints one line per head.
set -euo pipefail
data_dir=${1:?usage: scripts/compare_heads.sh DATA_DIR [EPOCHS] [OUT]}
epochs=${2:-3}
out=${3:-runs/heads}
python=${PYTHON:-.venv/bin/python}
declare -A heads=(
  [l2_relu]="--config.model.head=relu --config.train.loss=l2"
  [l1]="--config.model.head=affine --config.train.loss=l1"
  [dex]="--config.model.head=dex --config.train.loss=dex --config.train.label_sigma=0"
  [dex_sigma2]="--config.model.head=dex --config.train.loss=dex --config.train.label_sigma=2"
)
for name in dex_sigma2 l1 l2_relu dex; do
  start=$(date +%s)
  # shellcheck disable=SC2086  # the overrides are meant to split into flags
  "$python" train.py --config=configs/cpu45.py --config.data.dir="$data_dir" \
    --config.train.num_epochs="$epochs" ${heads[$name]} --workdir="$out/$name"
  wall=$(( $(date +%s) - start ))
  "$python" scripts/eval.py --workdir="$out/$name" --split=test --output_dir="$out/$name/test"
  echo "$name: train wall ${wall}s; $(grep -o '"mae": [0-9.]*' "$out/$name/test/eval_metrics.json" | head -1)"
done
