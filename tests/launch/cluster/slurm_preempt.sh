#!/usr/bin/env bash
# scancel --signal=USR1 (what --signal=USR1@120 sends before the time limit) reaches the tasks
# through srun: rank 0 writes last.pt and the job ends COMPLETED, exit 0. Submitted again with
# --resume auto it ends bit-identical to an uninterrupted job (fp64, --deterministic).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_slurm
need_python
args=(--device cpu --precision fp64 --deterministic --synthetic 4000 --batch-size 8 --epochs 1
      --max-steps 40 --threads 1 --eval-every 0 --log-every 1 --seed 9)

check "an uninterrupted job"
id=$(submit -- "${args[@]}" --checkpoint-dir "$work/full" --log-dir "$work/full")
state=$(wait_job "$id" 300) || fail "job $id did not end: $state"
[ "$state" = "COMPLETED 0:0" ] || { cat "$work/dist_train-$id.out"; fail "job $id ended $state"; }

check "a job signalled with USR1 mid-run"
id=$(submit -- "${args[@]}" --checkpoint-dir "$work/part" --log-dir "$work/part" --resume auto)
out=$work/dist_train-$id.out
for _ in $(seq 600); do grep -q "step 5/" "$out" 2>/dev/null && break; sleep 0.2; done
grep -q "step 5/" "$out" || { cat "$out"; fail "job $id did not reach step 5"; }
on $h1 scancel --signal=USR1 "$id"
state=$(wait_job "$id" 60) || fail "job $id did not end after USR1: $state"
cat "$out"
[ "$state" = "COMPLETED 0:0" ] || fail "job $id ended $state after USR1, expected COMPLETED 0:0"
[ -s "$work/part/last.pt" ] || fail "no last.pt after USR1"
grep -q "step 40/" "$out" && fail "the job ran to the end: USR1 did not stop it"

check "submitted again with --resume auto: continues to the end"
id=$(submit -- "${args[@]}" --checkpoint-dir "$work/part" --log-dir "$work/part" --resume auto)
state=$(wait_job "$id" 300) || fail "job $id did not end: $state"
grep -q "resumed from" "$work/dist_train-$id.out" || { cat "$work/dist_train-$id.out"; fail "it did not resume"; }
[ "$state" = "COMPLETED 0:0" ] || fail "job $id ended $state"
"$python" "$(dirname "${BASH_SOURCE[0]}")/compare_checkpoints.py" "$work/full/last.pt" "$work/part/last.pt" ||
  fail "the resumed job's weights are not bit-identical to the uninterrupted job's"
echo "PASSED: $name"
