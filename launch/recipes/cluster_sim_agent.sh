#!/usr/bin/env bash
# Open MPI's remote-start agent for the emulated hosts of launch/recipes/cluster_sim.sh, in place
# of ssh: OMPI_MCA_plm_rsh_agent=launch/recipes/cluster_sim_agent.sh launch/recipes/run_cluster.sh ...
# Called as ssh would be (agent HOST WORDS...), it does what sshd would: runs the words as one
# command line through a shell on HOST, with a fresh login environment. So only what mpirun
# forwards (-x) reaches the remote ranks, as on a real cluster; the ranks mpirun starts on its own
# host inherit its environment directly, as they do there.
# Like ssh, it first connects over the network: called from an emulated host, it fails (exit 255,
# ssh's code, with ssh's kind of line) when HOST cannot be reached from there within
# DT_SIM_CONNECT_TIMEOUT seconds (default 5), e.g. when HOST's link is down, so that a launcher's
# probe and mpirun see a lost host as they would on a real cluster.
set -euo pipefail
(($# >= 2)) || { echo "cluster_sim_agent: usage: cluster_sim_agent.sh HOST COMMAND..." >&2; exit 255; }
host=$1
shift
"$(dirname "${BASH_SOURCE[0]}")/cluster_sim.sh" reach "$host" "${DT_SIM_CONNECT_TIMEOUT:-5}" || exit 255
# Root's login environment on such a cluster: Open MPI's consent to run as root would be set in
# root's profile there, as it is in the environment that started this.
consent=()
[ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ] ||
  consent=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
exec "$(dirname "${BASH_SOURCE[0]}")/cluster_sim.sh" exec "$host" \
  env -i HOME="${HOME:-/root}" USER="$(id -un)" LOGNAME="$(id -un)" SHELL=/bin/sh \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${consent[@]}" \
  /bin/sh -c "$*"
