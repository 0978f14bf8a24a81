#!/usr/bin/env bash
# Trains on one node with one rank per GPU: mpirun -np NGPUS dist_train ARGS...
# dist_train maps each rank to the GPU of its node-local rank (MPI's shared-memory split), so
# nothing here pins GPUs; CUDA_VISIBLE_DEVICES restricts which ones it sees.
#
# Usage: launch/recipes/run_node.sh [dist_train args...]
#   NP=N           ranks (default: the GPUs CUDA_VISIBLE_DEVICES names, else `nvidia-smi -L` lists)
#   DIST_TRAIN=... the binary (default: build/launch/dist_train)
#   MPIRUN_ARGS    extra mpirun arguments, e.g. "--oversubscribe" for more CPU ranks than cores
# NCCL_* variables, CIFAR10_DIR, OMP_NUM_THREADS and CUDA_VISIBLE_DEVICES are passed to every
# rank (-x).
# Example without a GPU (as root, which Open MPI refuses unless OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are set):
#   NP=2 MPIRUN_ARGS=--oversubscribe launch/recipes/run_node.sh --device cpu --synthetic 500 --epochs 1
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${DIST_TRAIN:-${BUILD_DIR:-$here/build}/launch/dist_train}
[ -x "$bin" ] || { echo "run_node: no dist_train binary at $bin (run launch/scripts/build.sh)" >&2; exit 2; }

np=${NP:-}
if [ -z "$np" ]; then
  # shellcheck source=launch/recipes/visible_gpus.sh
  . "$here/launch/recipes/visible_gpus.sh"
  np=$(visible_gpu_count)
  if [ "$np" -eq 0 ]; then
    echo "run_node: no GPU found (nvidia-smi -L, or an empty CUDA_VISIBLE_DEVICES); set NP=N (and pass --device cpu) to run on CPUs" >&2
    exit 2
  fi
fi
[[ $np =~ ^[1-9][0-9]*$ ]] || { echo "run_node: NP must be a positive integer, not '$np'" >&2; exit 2; }

# -x NAME forwards a variable of this shell to every rank (Open MPI takes one name per -x).
exports=()
for name in $(compgen -e | grep -E '^(NCCL_|CIFAR10_DIR$|OMP_NUM_THREADS$|CUDA_VISIBLE_DEVICES$)' || true); do
  exports+=(-x "$name")
done

# --bind-to none: each rank drives one GPU with a few host threads; Open MPI's default core
# binding would squeeze a rank's LibTorch threads onto one core.
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of words
exec mpirun -np "$np" --bind-to none "${exports[@]}" ${MPIRUN_ARGS:-} "$bin" "$@"
