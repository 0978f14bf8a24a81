#!/usr/bin/env bash
# The multi-rank checks of launch/scripts/gpu_multirank.sh on CPU ranks over MPI, against an
# existing build (launch/scripts/build.sh): the rehearsal of that script on a machine without a
# GPU, so that device time goes on results, not on script bugs. Check 1 (the CUDA suites) needs a
# GPU and is left out. Ends with the same PASS/FAIL table as gpu_check.sh; exit 0 when all passed.
#   bash launch/scripts/rehearse_multirank.sh        (BUILD_DIR: default build/)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export ROOT OUT=${OUT:-/tmp/dt_rehearse_multirank}
export BUILD=${BUILD_DIR:-$ROOT/build} PY=${DT_GPU_PYTHON:-$ROOT/.venv/bin/python}
export OMPI_DIR=$(dirname "$(dirname "$(command -v mpirun)")") GPUS=0 DT_MULTIRANK_DEVICE=cpu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export DT_MULTIRANK_DIR=${DT_MULTIRANK_DIR:-$OUT/runs}
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
: >"$LOG"
START=$(date +%s)
BUDGET=${DT_GPU_BUDGET:-1500}
declare -a RESULTS=()
FAILED=0
source "$ROOT/launch/scripts/gpu_steps.sh"
[ -x "$BUILD/launch/dist_train" ] || { say "no $BUILD/launch/dist_train: run launch/scripts/build.sh"; exit 2; }
source "$ROOT/launch/scripts/gpu_multirank.sh"
finish
