#!/usr/bin/env bash
# How launch/recipes/slurm/dist_train.sbatch starts the ranks, against stand-ins for srun and
# mpirun (no cluster needed): srun --mpi=pmix where srun lists PMIx; else Open MPI's mpirun in
# the allocation, saying so; else one line naming what the cluster needs, and exit code 2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
script=$repo/launch/recipes/slurm/dist_train.sbatch
mkdir -p "$work/bin"
# srun: prints the plugin list of $FAKE_PLUGINS for --mpi=list, else records its arguments.
cat >"$work/bin/srun" <<'SH'
#!/bin/sh
if [ "$1" = --mpi=list ]; then printf 'MPI plugin types are...\n\tnone\n%s\n' "$FAKE_PLUGINS"; exit 0; fi
echo "srun $*" >>"$FAKE_LOG"
SH
printf '#!/bin/sh\necho "mpirun $*" >>"$FAKE_LOG"\n' >"$work/bin/mpirun"
chmod +x "$work/bin/srun" "$work/bin/mpirun"
touch "$work/dist_train"; chmod +x "$work/dist_train"
run() {  # run PLUGINS MPIRUN: the batch script as sbatch would run it, 2 tasks
  : >"$work/calls"
  env PATH="$work/bin:$PATH" FAKE_PLUGINS="$1" MPIRUN="$2" FAKE_LOG="$work/calls" \
    DIST_TRAIN="$work/dist_train" SLURM_SUBMIT_DIR="$work" SLURM_NTASKS=2 SLURM_NTASKS_PER_NODE=1 \
    bash "$script" --device cpu 2>"$work/err"
}

check "PMIx listed: srun --mpi=pmix"
run $'\tpmi2\n\tpmix' mpirun || fail "exit $?: $(cat "$work/err")"
grep -qx "srun --mpi=pmix --kill-on-bad-exit=1 $work/dist_train --device cpu" "$work/calls" ||
  fail "calls: $(cat "$work/calls")"

check "no PMIx, mpirun present: mpirun in the allocation"
run $'\tpmi2' "$work/bin/mpirun" || fail "exit $?: $(cat "$work/err")"
grep -qx "mpirun -np 2 --map-by ppr:1:node --bind-to none $work/dist_train --device cpu" "$work/calls" ||
  fail "calls: $(cat "$work/calls")"
grep -q "no PMIx plugin; starting the ranks with mpirun" "$work/err" || fail "it did not say so: $(cat "$work/err")"

check "neither: one line, exit code 2"
rc=0; run $'\tpmi2' "$work/no/mpirun" || rc=$?
cat "$work/err"
((rc == 2)) || fail "exit code $rc, expected 2"
[ "$(grep -vc '^dist_train.sbatch: job' "$work/err")" -eq 1 ] || fail "not one line"
grep -q "needs Slurm built with PMIx" "$work/err" || fail "the line does not say what is needed"
[ ! -s "$work/calls" ] || fail "it started something: $(cat "$work/calls")"
echo "PASSED: $name"
