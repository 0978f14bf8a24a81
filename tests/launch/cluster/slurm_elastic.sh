#!/usr/bin/env bash
# The Slurm variant: launch/recipes/slurm/dist_train_elastic.sbatch on the emulated Slurm cluster,
# 2 nodes x 2 tasks, global batch 60 (fp64, SyncBatchNorm). Node 2 crashes mid-epoch (its
# slurmd and ranks end). The job keeps its allocation (--no-kill), run_elastic.sh --slurm runs
# the next srun step on node 1 alone, the job completes, and the final weights are those of the
# uninterrupted run to 1e-9 relative.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_slurm
need_python
trap restore_hosts EXIT
elastic_reference

check "sbatch dist_train_elastic.sbatch, 2 nodes x 2 tasks"
id=$(cd "$work" && on "$h1" env DIST_TRAIN_DIR="$repo" DIST_TRAIN="$bin" \
  sbatch --parsable --nodes=2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --time=10 \
  "$repo/launch/recipes/slurm/dist_train_elastic.sbatch" --probe-timeout 6 --abort-grace 5 -- \
  "${elastic_args[@]}" --checkpoint-dir "$work/elastic" --log-dir "$work/elastic")
out=$work/dist_train-$id.out
for _ in $(seq 900); do grep -q "step 5/" "$out" 2>/dev/null && break; sleep 0.2; done
grep -q "step 5/" "$out" || { cat "$out"; fail "job $id did not reach step 5"; }

check "node $h2 crashes at step 5"
crash_host "$h2"
state=$(wait_job "$id" 300) || { cat "$out"; fail "job $id did not end: $state"; }
grep -E '^run_elastic:|resumed from|global batch' "$out" || true
[ "$state" = "COMPLETED 0:0" ] || { cat "$out"; fail "job $id ended $state"; }
grep -q "^run_elastic: attempt 1 failed .*; hosts answering now: $h1 (not: $h2: " "$out" ||
  fail "no line naming the failure and the nodes left"
grep -q "^run_elastic: attempt 2 on 1 host(s): $h1 (left out: $h2: " "$out" || fail "attempt 2 did not run on $h1 alone"
grep -q "batch 30 per rank x 2 ranks = 60 global" "$out" || fail "attempt 2 did not keep the global batch"

check "the weights of the uninterrupted run"
expect_reference_weights
echo "PASSED: $name"
