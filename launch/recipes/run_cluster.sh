#!/usr/bin/env bash
# Trains across the nodes of an Open MPI hostfile, one rank per GPU:
#   mpirun --hostfile HOSTFILE --map-by ppr:N:node dist_train ARGS...
# Needs passwordless ssh from this node to every host, and the same paths on all of them (a
# shared file system with this repository, its build and venv, and the data). dist_train maps
# each rank to the GPU of its node-local rank, so the N ranks of a node use GPUs 0..N-1.
#
# Usage: launch/recipes/run_cluster.sh HOSTFILE [dist_train args...]   (see launch/recipes/hostfile.example)
#   GPUS_PER_NODE=N  ranks per node (default: the GPUs CUDA_VISIBLE_DEVICES names, else
#                    `nvidia-smi -L` lists, on this node)
#   MPI_IFNAME=IF    network interface(s) for Open MPI's own traffic (e.g. eth0, ib0; a comma
#                    list or CIDR as btl_tcp_if_include takes), checked on this node; set
#                    NCCL_SOCKET_IFNAME for NCCL's bootstrap the same way
#   DIST_TRAIN=...   the binary (default: build/launch/dist_train)
#   MPIRUN_ARGS      extra mpirun arguments
#   OMPI_MCA_plm_rsh_agent=AGENT   how mpirun starts its daemons on the other hosts, in place of
#                    ssh (Open MPI reads OMPI_MCA_* itself; launch/recipes/cluster_sim_agent.sh
#                    for the emulated hosts of launch/recipes/cluster_sim.sh)
# NCCL_* variables, CIFAR10_DIR, OMP_NUM_THREADS and CUDA_VISIBLE_DEVICES are passed to every
# rank (-x).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage="usage: launch/recipes/run_cluster.sh HOSTFILE [dist_train args...]"
(($# >= 1)) || { echo "run_cluster: $usage" >&2; exit 2; }
hostfile=$1
shift
[ -f "$hostfile" ] || { echo "run_cluster: no such hostfile: $hostfile" >&2; exit 2; }
bin=${DIST_TRAIN:-${BUILD_DIR:-$here/build}/launch/dist_train}
[ -x "$bin" ] || { echo "run_cluster: no dist_train binary at $bin (run launch/scripts/build.sh)" >&2; exit 2; }

per_node=${GPUS_PER_NODE:-}
if [ -z "$per_node" ]; then
  # shellcheck source=launch/recipes/visible_gpus.sh
  . "$here/launch/recipes/visible_gpus.sh"
  per_node=$(visible_gpu_count)
  if [ "$per_node" -eq 0 ]; then
    echo "run_cluster: no GPU found (nvidia-smi -L, or an empty CUDA_VISIBLE_DEVICES) on this node; set GPUS_PER_NODE=N" >&2
    exit 2
  fi
fi
[[ $per_node =~ ^[1-9][0-9]*$ ]] ||
  { echo "run_cluster: GPUS_PER_NODE must be a positive integer, not '$per_node'" >&2; exit 2; }
nodes=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
((nodes > 0)) || { echo "run_cluster: $hostfile lists no hosts" >&2; exit 2; }

exports=()
for name in $(compgen -e | grep -E '^(NCCL_|CIFAR10_DIR$|OMP_NUM_THREADS$|CUDA_VISIBLE_DEVICES$)' || true); do
  exports+=(-x "$name")
done
net=()
if [ -n "${MPI_IFNAME:-}" ]; then
  # A misspelt name would otherwise surface as a hang or a page of Open MPI text on the remote
  # side. Only this node is checked (the others may name their interfaces the same or not);
  # CIDR entries (10.0.0.0/8) are Open MPI's to match. `ip` sees this network namespace; /sys
  # may show another one.
  have=$( (ip -o link show 2>/dev/null || ls /sys/class/net | sed 's/^/0: /;s/$/:/') |
          awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | tr '\n' ' ')
  IFS=',' read -r -a wanted <<<"$MPI_IFNAME"
  for name in "${wanted[@]}"; do
    [[ $name == */* || " $have" == *" $name "* ]] ||
      { echo "run_cluster: MPI_IFNAME: no network interface '$name' on $(hostname) (it has: ${have% })" >&2; exit 2; }
  done
  net=(--mca btl_tcp_if_include "$MPI_IFNAME" --mca oob_tcp_if_include "$MPI_IFNAME")
fi

echo "run_cluster: $nodes node(s) x $per_node rank(s) = $((nodes * per_node)) ranks" >&2
# --map-by ppr:N:node places exactly N ranks on each host (a host's slots= must be >= N).
# --bind-to none: a rank's LibTorch threads may use any core of its node.
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of words
exec mpirun --hostfile "$hostfile" -np "$((nodes * per_node))" --map-by "ppr:$per_node:node" \
  --bind-to none "${net[@]}" "${exports[@]}" ${MPIRUN_ARGS:-} "$bin" "$@"
