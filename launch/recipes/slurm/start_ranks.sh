#!/usr/bin/env bash
# Starts one dist_train rank per task of (part of) a Slurm allocation, from inside it:
#   launch/recipes/slurm/start_ranks.sh [srun options...] -- BINARY [dist_train args...]
# srun (not mpirun) starts the tasks, so Slurm can signal, account and clean them up; through
# PMIx, which Open MPI's ranks use to find each other. Slurm without the PMIx plugin (srun
# --mpi=list) leaves Open MPI's mpirun, which starts its daemons with srun inside the allocation
# and forwards Slurm's signals (SIGTERM, SIGUSR1) to the ranks; then the srun options may name
# only --nodes/-N, --nodelist/-w and --ntasks-per-node, which become mpirun's host list and
# mapping. DT_SRUN_MPI=NAME forces srun's --mpi=NAME (pmi2 for an MPI built with Slurm's PMI-2).
# Used by dist_train.sbatch (the whole allocation) and run_elastic.sh --slurm (the nodes that
# answer).
set -euo pipefail
opts=()
while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
(($# >= 2)) || { echo "start_ranks: usage: start_ranks.sh [srun options...] -- BINARY [args...]" >&2; exit 2; }
shift
mpi=${DT_SRUN_MPI:-}
if [ -z "$mpi" ]; then
  plugins=$(srun --mpi=list 2>&1 || true)
  if grep -qw pmix <<<"$plugins"; then
    mpi=pmix
  elif ! command -v "${MPIRUN:-mpirun}" >/dev/null; then
    echo "start_ranks: this cluster's srun has no PMIx plugin (srun --mpi=list:" \
         "$(tr -s '[:space:]' ' ' <<<"$plugins")) and there is no mpirun: dist_train needs Slurm" \
         "built with PMIx (Debian/Ubuntu: slurm-wlm's mpi_pmix plugin), or Open MPI's mpirun on the nodes" >&2
    exit 2
  fi
fi
if [ -n "$mpi" ]; then
  echo "dist_train.sbatch: srun --mpi=$mpi" >&2
  exec srun --mpi="$mpi" --kill-on-bad-exit=1 "${opts[@]}" "$@"
fi
echo "dist_train.sbatch: srun has no PMIx plugin; starting the ranks with mpirun in the allocation" >&2
# One rank per task, placed per node as srun would place them: the whole allocation, or the
# nodes the options name.
per_node=${SLURM_NTASKS_PER_NODE:-} nodes='' count='' tasks=''
while ((${#opts[@]})); do
  case "${opts[0]}" in
    -n|--ntasks) tasks=${opts[1]:-}; opts=("${opts[@]:2}") ;;
    --ntasks=*) tasks=${opts[0]#*=}; opts=("${opts[@]:1}") ;;
    -w|--nodelist) nodes=${opts[1]:-}; opts=("${opts[@]:2}") ;;
    -N|--nodes) count=${opts[1]:-}; opts=("${opts[@]:2}") ;;
    --ntasks-per-node) per_node=${opts[1]:-}; opts=("${opts[@]:2}") ;;
    --nodelist=*) nodes=${opts[0]#*=}; opts=("${opts[@]:1}") ;;
    --nodes=*) count=${opts[0]#*=}; opts=("${opts[@]:1}") ;;
    --ntasks-per-node=*) per_node=${opts[0]#*=}; opts=("${opts[@]:1}") ;;
    --overlap) opts=("${opts[@]:1}") ;;  # srun's sharing of a node with a step still ending
    *) echo "start_ranks: srun option ${opts[0]} has no mpirun counterpart here (--nodes, --nodelist, --ntasks, --ntasks-per-node, --overlap have)" >&2; exit 2 ;;
  esac
done
map=() hosts=()
[ -z "$per_node" ] || map=(--map-by "ppr:$per_node:node")
np=${SLURM_NTASKS:?}
if [ -n "$nodes" ]; then
  list=$(scontrol show hostnames "$nodes" | sed "s/\$/:${per_node:-1}/" | paste -sd, -)
  hosts=(--host "$list")
  np=$(( $(tr ',' '\n' <<<"$list" | wc -l) * ${per_node:-1} ))
fi
[ -z "$count" ] || [ -n "$nodes" ] || np=$((count * ${per_node:-1}))
[ -z "$tasks" ] || np=$tasks
exec "${MPIRUN:-mpirun}" -np "$np" "${hosts[@]}" "${map[@]}" --bind-to none "$@"
