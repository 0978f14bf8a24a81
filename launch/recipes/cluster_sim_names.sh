# shellcheck shell=bash
# Sourced by cluster_sim.sh and slurm_sim.sh: the names of one emulated cluster, all derived from
# its prefix, so that two clusters (two test runs on one machine) never share a namespace, a
# host name or a state folder.
#   DT_SIM_PREFIX  the prefix (default dtsim): namespaces $prefix-sw and $prefix-h1.., which
#                  are also the hosts' names; lower-case letters and digits, at most 10, so that
#                  a host's name fits a network interface's 15 characters (the switch's end of
#                  its veth pair carries it)
#   DT_SIM_STATE   the state folder (default /run/dist_train_cluster_sim/$prefix)
# Interfaces inside the hosts (dtsim0, dtdecoy0) keep their names: each lives in its own host's
# namespace, where no other cluster can see it.
prefix=${DT_SIM_PREFIX:-dtsim}
if ! [[ $prefix =~ ^[a-z][a-z0-9]{0,9}$ ]]; then
  echo "cluster_sim: DT_SIM_PREFIX '$prefix': give 1 to 10 lower-case letters and digits, a letter first" >&2
  exit 2
fi
# shellcheck disable=SC2034  # used by the scripts that source this one
state=${DT_SIM_STATE:-/run/dist_train_cluster_sim/$prefix}
