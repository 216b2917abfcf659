#!/usr/bin/env bash
# Multi-GPU, multi-node training under SLURM: one task per GPU, one program everywhere.
#
#   sbatch --nodes=4 --gpus-per-node=8 scripts/slurm_train.sh \
#     --config=configs/resnet50.py --config.data.dir=/datasets/faces --workdir=/runs/r50
#
# jax.distributed.initialize() reads the job layout from SLURM's environment, so each
# task only needs to see its own GPU. train.train_and_evaluate builds one mesh over all
# GPUs of all nodes; process 0 writes logs, summaries and the run's files. Rerunning the
# same command (e.g. after preemption) resumes from the latest checkpoint.
#SBATCH --job-name=ageflax
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
export TF_CPP_MIN_LOG_LEVEL=2
srun --kill-on-bad-exit=1 .venv/bin/python train.py "$@"
