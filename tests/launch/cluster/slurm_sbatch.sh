#!/usr/bin/env bash
# sbatch of launch/recipes/slurm/dist_train.sbatch on the emulated Slurm cluster (2 nodes x 1
# task, CPU ranks) runs to completion through srun --mpi=pmix, with its output where the script
# says (%x-%j.out in the submit folder) and the checkpoint where its arguments say. Where srun
# lists no PMIx plugin (a stand-in srun hides it), Open MPI's mpirun in the allocation completes
# the same job.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_slurm
check "sbatch, 2 nodes x 1 task"
id=$(submit -- --device cpu --synthetic 240 --batch-size 8 --epochs 1 --max-steps 3 --threads 1 \
  --eval-every 0 --log-every 1 --checkpoint-dir "$work/ckpt" --log-dir "$work/runs")
state=$(wait_job "$id" 120) || fail "job $id did not end: $state"
out=$work/dist_train-$id.out
[ -f "$out" ] || fail "no output at $out (ls: $(ls "$work"))"
cat "$out"
[ "$state" = "COMPLETED 0:0" ] || fail "job $id ended $state"
grep -q "^dist_train.sbatch: srun --mpi=pmix$" "$out" || fail "the script did not use srun --mpi=pmix"
grep -q "2 rank(s)" "$out" || fail "not 2 ranks"
for h in 1 2; do
  grep -qF "on host $sim_prefix-h$h: local rank 0 of 1" "$out" || fail "no rank on $sim_prefix-h$h"
done
[ -s "$work/ckpt/last.pt" ] || fail "no checkpoint at $work/ckpt/last.pt"

check "srun without PMIx: mpirun in the allocation"
mkdir -p "$work/bin"   # on the shared file system: a Slurm node's /tmp is its own
printf '#!/bin/sh\n[ "$1" = --mpi=list ] && { printf "MPI plugin types are...\\n\\tnone\\n\\tpmi2\\n"; exit 0; }\nexec %s "$@"\n' \
  "$(command -v srun)" >"$work/bin/srun"
chmod +x "$work/bin/srun"
id=$(PATH="$work/bin:$PATH" submit -- --device cpu --synthetic 240 --batch-size 8 --epochs 1 \
  --max-steps 2 --threads 1 --eval-every 0 --checkpoint-dir "$work/ckpt2" --log-dir "$work/runs2")
state=$(wait_job "$id" 120) || fail "job $id did not end: $state"
out=$work/dist_train-$id.out
[ "$state" = "COMPLETED 0:0" ] || { cat "$out"; fail "job $id ended $state"; }
grep -q "starting the ranks with mpirun in the allocation" "$out" || { cat "$out"; fail "it did not use mpirun"; }
for h in 1 2; do
  grep -qF "on host $sim_prefix-h$h: local rank 0 of 1" "$out" || { cat "$out"; fail "no rank on $sim_prefix-h$h"; }
done
[ -s "$work/ckpt2/last.pt" ] || fail "no checkpoint at $work/ckpt2/last.pt"
echo "PASSED: $name"
