#!/usr/bin/env bash
# GPU figures of ageflax in one command, on a lent H100/H200, in under 8 minutes:
#
#   scripts/device_benchmark.sh [flags of scripts/benchmark_device.py]
#
# Prints the ResNet50 224x224 bf16 train step (images/s and MFU), torchvision's resnet50
# beside it (bf16 autocast, channels_last) with `ratio train_step ageflax/torch`, the step
# with device augmentation, the host-fed end to end, and train.py's end to end on synthetic
# faces where TensorFlow is installed (the lent machines have none: a line says it was
# skipped). Data are made in the run. The machine has JAX, flax, optax and torch; ageflax
# comes from this working tree (PYTHONPATH), and wheels of what the machine lacks
# (ml_collections) from .whl/ when it travels with the tree (`carry: [".whl"]`):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp -d .whl ml-collections==1.1.0
#
# PYTHON picks the interpreter (default python3); E2E_STEPS the train.py steps (0: none).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
e2e_steps=${E2E_STEPS:-60}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# JAX would otherwise take 75% of the GPU's memory at start, leaving torch too little.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

if compgen -G ".whl/*.whl" > /dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/ageflax-site \
    .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/ageflax-site"
fi
for module in absl ml_collections jax flax optax; do
  if ! "$python" -c "import $module" 2> /dev/null; then
    echo "error: Python module $module is missing: carry its wheel in .whl/ (see $0)" >&2
    exit 1
  fi
done

timeout 330 "$python" scripts/benchmark_device.py "$@"

if [[ "$e2e_steps" -le 0 ]]; then
  echo "end_to_end train.py: skipped: E2E_STEPS=$e2e_steps"
elif ! "$python" -c "import tensorflow" 2> /dev/null; then
  echo "end_to_end train.py: skipped: tensorflow not installed (train.py reads data with tf.data)"
else
  scratch=$(mktemp -d)
  "$python" scripts/make_synthetic_faces.py "$scratch/faces" --n=2048 --image_size=224
  timeout 120 "$python" train.py --config=configs/resnet50.py --workdir="$scratch/run" \
    --config.data.dir="$scratch/faces" --config.model.dtype=bfloat16 \
    --config.train.batch_size=256 --config.train.num_steps="$e2e_steps" \
    --config.train.log_every_steps=10 --config.eval.every_epochs=1000 2>&1 \
    | grep -E "img/s|^error" | sed 's/^/end_to_end train.py: /' \
    || echo "end_to_end train.py: failed with exit status $?"
fi
