# Sourced by launch/scripts/gpu_check.sh for DT_GPU_STEPS=multirank: every multi-rank NCCL path of
# dist_train, run for real at 2 and 4 ranks. With fewer GPUs than ranks the ranks share them
# (--share-gpus: round-robin, NCCL over loopback sockets, see launch/app/nccl_env.h), so one GPU
# is enough; with as many GPUs as ranks each rank has its own, as in production.
#   1. the CUDA variants of the multi-rank suites (Reducer, SyncBatchNorm) at np 2 and np 4;
#   2. fp64 runs with SyncBatchNorm and --augment standard: 1x60, 2x30 and 4x15 end with the same
#      weights (relative 1e-9);
#   3. two 2-rank --deterministic runs write bit-identical checkpoints;
#   4. kill -9 of one rank ends the job non-zero within 30 s of the kill, and a stalled rank trips
#      --comm-timeout with a message naming the collective;
#   5. SIGUSR1 to mpirun and SIGTERM to every rank (as Slurm sends it) each write last.pt and exit
#      0, and --resume auto then ends bit-identical to the uninterrupted run;
#   6. the replica check catches a corrupted replica over NCCL, naming the rank and tensor;
#   7. a 2-rank --trace shows bucket all-reduces that start before their step's backward ends.
# DT_MULTIRANK_DEVICE=cpu runs the same checks on CPU ranks over MPI (skipping 1, which needs a
# GPU): the rehearsal of this script's own logic on a machine without a GPU.
# Uses gpu_check.sh's step/say, $BUILD, $OMPI_DIR, $PY, $GPUS, $ROOT and $OUT.

export MR=${DT_MULTIRANK_DIR:-/tmp/dt_multirank} MR_DEVICE=${DT_MULTIRANK_DEVICE:-cuda}
export MPIRUN_MR="$OMPI_DIR/bin/mpirun --allow-run-as-root --bind-to none --oversubscribe"
rm -rf "$MR"
mkdir -p "$MR"

# mr_flags NP: the device flags of an NP-rank run.
mr_flags() {
  local np=$1
  if [ "$MR_DEVICE" = cpu ]; then
    echo "--device cpu --threads 1 --comm-timeout 120"
  elif [ "$np" -gt "$GPUS" ]; then
    # Ranks sharing a GPU take turns on it, and each collective's deadline starts when the host
    # enqueues it: a generous timeout, one thread per rank.
    echo "--device cuda --share-gpus --threads 1 --comm-timeout 120"
  else
    echo "--device cuda --threads 1 --comm-timeout 120"
  fi
}
# mr_run NP NAME ARGS...: an NP-rank run on 600 synthetic images, its outputs in $MR/NAME, its log
# in $MR/NAME.log (also on stdout); DT_FAULT_INJECT reaches the ranks when set.
mr_run() {
  local np=$1 name=$2
  shift 2
  $MPIRUN_MR -np "$np" -x DT_FAULT_INJECT "$BUILD/launch/dist_train" --synthetic 600 --seed 5 \
    $(mr_flags "$np") --log-dir "$MR/$name/log" --checkpoint-dir "$MR/$name/ckpt" "$@" \
    </dev/null >"$MR/$name.log" 2>&1
  local rc=$?
  cat "$MR/$name.log"
  return $rc
}
mr_check() { "$PY" "$ROOT/launch/scripts/check_run.py" "$@"; }

mr_suites() {  # 1
  local np rc
  for np in 2 4; do
    rc=0
    DT_GPU_REQUIRED=1 $MPIRUN_MR -np "$np" -x DT_GPU_REQUIRED "$BUILD/tests/test_comm_mpi" \
      --gtest_filter='*Cuda.*' --gtest_color=no </dev/null || rc=$?
    echo "np $np: exit $rc"
    [ "$rc" -eq 0 ] || return 1
  done
}
mr_world_sizes() {  # 2
  local flags="--precision fp64 --sync-bn --augment standard --deterministic --epochs 1 --eval-every 0"
  mr_run 1 w1 $flags --batch-size 60 && mr_run 2 w2 $flags --batch-size 30 &&
    mr_run 4 w4 $flags --batch-size 15 &&
    mr_check same-weights 1e-9 "$MR/w1/ckpt/last.pt" "$MR/w2/ckpt/last.pt" "$MR/w4/ckpt/last.pt"
}
mr_deterministic() {  # 3
  local flags="--deterministic --batch-size 30 --epochs 2 --eval-every 0"
  mr_run 2 det_a $flags && mr_run 2 det_b $flags &&
    mr_check identical "$MR/det_a/ckpt/last.pt" "$MR/det_b/ckpt/last.pt"
}
mr_killed_rank() {  # 4a: SIGKILL of rank 1 at step 5
  local start rc=0
  start=$(date +%s)
  DT_FAULT_INJECT=rank=1,step=5,action=kill mr_run 2 killed --batch-size 30 --epochs 2 \
    --eval-every 0 --log-every 1 --comm-timeout 20 || rc=$?
  local took=$(( $(date +%s) - start ))
  # The kill comes after start-up and 5 steps (seconds); the rest is the job ending.
  echo "exit $rc after $took s"
  [ "$rc" -ne 0 ] && [ "$took" -le 60 ] &&
    grep -Eq "rank 1 .*exited on signal 9|did not complete within" "$MR/killed.log"
}
mr_stalled_rank() {  # 4b: rank 1 sleeps 120 s at step 5; --comm-timeout 15 must end the job
  local rc=0
  DT_FAULT_INJECT=rank=1,step=5,action=sleep:120 mr_run 2 stalled --batch-size 30 --epochs 2 \
    --eval-every 0 --comm-timeout 15 || rc=$?
  echo "exit $rc"
  [ "$rc" -ne 0 ] && grep -Eiq "did not complete within|deadline" "$MR/stalled.log" &&
    grep -Eiq "all_reduce|broadcast|all_gather|bucket" "$MR/stalled.log"
}
# mr_interrupted NAME SIGNAL-SENDER: a 2-rank deterministic run stopped at step 5 or later by
# SIGNAL-SENDER (given mpirun's pid), which must save last.pt and exit 0; then resumed with
# --resume auto to the end, bit-identical to the uninterrupted run det_a (check 3).
mr_interrupted() {
  local name=$1 sender=$2
  local flags="--deterministic --batch-size 30 --epochs 2 --eval-every 0 --log-every 1"
  mkdir -p "$MR/$name"
  $MPIRUN_MR -np 2 "$BUILD/launch/dist_train" --synthetic 600 --seed 5 $(mr_flags 2) $flags \
    --log-dir "$MR/$name/log" --checkpoint-dir "$MR/$name/ckpt" </dev/null >"$MR/$name.stopped.log" 2>&1 &
  local pid=$! waited=0
  until grep -Eq "step ([5-9]|1[0-9])/" "$MR/$name.stopped.log" || [ $waited -ge 600 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  $sender "$pid"
  local rc=0
  wait "$pid" || rc=$?
  cat "$MR/$name.stopped.log"
  echo "stopped run: exit $rc"
  [ "$rc" -eq 0 ] && [ -f "$MR/$name/ckpt/last.pt" ] && grep -q "stopped on request" "$MR/$name.stopped.log" &&
    mr_run 2 "$name" $flags --resume auto &&
    mr_check identical "$MR/det_a/ckpt/last.pt" "$MR/$name/ckpt/last.pt"
}
mr_usr1_to_mpirun() { kill -USR1 "$1"; }
mr_term_to_ranks() { pkill -TERM -P "$1" -x dist_train; }  # mpirun's own ranks, not another job's
mr_sigusr1() { mr_interrupted usr1 mr_usr1_to_mpirun; }  # 5a
mr_sigterm() { mr_interrupted term mr_term_to_ranks; }   # 5b
mr_corrupt() {  # 6: exit 3, naming rank 1 and the tensor
  local rc=0
  DT_FAULT_INJECT=rank=1,step=12,action=corrupt:fc.weight mr_run 2 corrupt --batch-size 30 \
    --epochs 2 --eval-every 0 --verify-every 10 || rc=$?
  echo "exit $rc"
  [ "$rc" -eq 3 ] && grep -q "rank 1" "$MR/corrupt.log" && grep -q "fc.weight" "$MR/corrupt.log"
}
mr_trace() {  # 7: small buckets, so that several launch during backward
  mr_run 2 trace --batch-size 30 --max-steps 8 --eval-every 0 --bucket-mb 0.05 \
    --trace "$MR/trace.json" && mr_check trace-overlap "$MR/trace.json"
}
export -f mr_flags mr_run mr_check mr_suites mr_world_sizes mr_deterministic mr_killed_rank \
  mr_stalled_rank mr_interrupted mr_usr1_to_mpirun mr_term_to_ranks mr_sigusr1 mr_sigterm \
  mr_corrupt mr_trace

where=$([ "$MR_DEVICE" = cpu ] && echo "CPU ranks (rehearsal)" || echo "$GPUS GPU(s)")
if [ "$MR_DEVICE" = cpu ] || [ "$GPUS" -gt 0 ]; then
  if [ "$MR_DEVICE" = cuda ]; then
    step "build test_comm_mpi" 200 ninja -C "$BUILD" test_comm_mpi
    step "multi-rank: CUDA Reducer and SyncBatchNorm suites, np 2 and 4" 150 mr_suites
  fi
  step "multi-rank ($where): fp64 SyncBN 1x60 = 2x30 = 4x15" 150 mr_world_sizes
  step "multi-rank ($where): two deterministic 2-rank runs bit-identical" 90 mr_deterministic
  step "multi-rank ($where): kill -9 of rank 1 ends the job" 70 mr_killed_rank
  step "multi-rank ($where): stalled rank 1 trips --comm-timeout" 70 mr_stalled_rank
  step "multi-rank ($where): SIGUSR1 to mpirun saves, resume is bit-identical" 120 mr_sigusr1
  step "multi-rank ($where): SIGTERM to the ranks saves, resume is bit-identical" 120 mr_sigterm
  step "multi-rank ($where): corrupted replica caught, rank and tensor named" 70 mr_corrupt
  step "multi-rank ($where): bucket all-reduces start during backward (--trace)" 60 mr_trace
else
  say "no GPU: the multi-rank NCCL checks need one (DT_MULTIRANK_DEVICE=cpu rehearses them on CPU ranks)"
  RESULTS+=("| multi-rank NCCL checks | SKIP (no GPU) | 0 s |")
fi
