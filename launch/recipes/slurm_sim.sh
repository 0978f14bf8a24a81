#!/usr/bin/env bash
# A real Slurm cluster on the emulated hosts of launch/recipes/cluster_sim.sh, for trying (and
# testing) launch/recipes/slurm/dist_train.sbatch on one machine:
#   launch/recipes/slurm_sim.sh up|down|env
#
# `up` brings the hosts up (cluster_sim.sh up), then starts munged (one, on the shared file
# system, as every node would run its own with the same key), slurmctld on $prefix-h1 and one slurmd
# per host, each in its host's namespaces, so Slurm sees DT_SIM_HOSTS nodes with their own names
# and addresses, and its own /tmp (the rest of the file system is shared). Its configuration and
# state live under $DT_SIM_STATE/slurm, never in /etc/slurm.
# `env` prints the `export SLURM_CONF=...` a shell needs to use it; run sbatch/srun/squeue on a
# host: launch/recipes/cluster_sim.sh exec dtsim-h1 sbatch ... (DT_SIM_PREFIX and DT_SIM_STATE as
# for cluster_sim.sh: one Slurm cluster per emulated cluster).
# `down` stops the daemons and removes the hosts (cluster_sim.sh down).
# Slurm 22.05 (Debian 12): proctrack/linuxproc and task/none, as no cgroup is ours to use here;
# select/cons_tres; MpiDefault=none (the batch script asks for pmix itself).
# Exit 77 with one line where it cannot run (no namespaces, or no slurmctld/slurmd/munged).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=launch/recipes/cluster_sim_names.sh
source "$here/cluster_sim_names.sh"
export DT_SIM_STATE=$state DT_SIM_PREFIX=$prefix
h1=$prefix-h1
conf_dir=$state/slurm
sim=$here/cluster_sim.sh

missing() {
  local p
  for p in munged slurmctld slurmd sbatch srun scontrol; do
    command -v "$p" >/dev/null || { echo "$p (apt-get install slurmctld slurmd slurm-client munge)"; return; }
  done
  [ -r /etc/munge/munge.key ] || echo "/etc/munge/munge.key (the munge package makes it)"
}

# The plugin directory holds mpi_pmix*.so where Slurm was built with PMIx.
write_conf() {
  local n=$1 i cpus
  cpus=$(nproc)
  mkdir -p "$conf_dir/ctld" "$conf_dir/munge"
  {
    echo "# Written by launch/recipes/slurm_sim.sh: a cluster of emulated hosts on one machine."
    echo "ClusterName=$prefix"
    echo "SlurmctldHost=$h1(10.213.7.1)"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$conf_dir/munge/munge.socket"
    echo "CredType=cred/munge"
    echo "StateSaveLocation=$conf_dir/ctld"
    echo "SlurmdSpoolDir=$conf_dir/spool-%n"
    echo "SlurmctldPidFile=$conf_dir/slurmctld.pid"
    echo "SlurmdPidFile=$conf_dir/slurmd-%n.pid"
    echo "SlurmctldLogFile=$conf_dir/slurmctld.log"
    echo "SlurmdLogFile=$conf_dir/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_CPU"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "SchedulerType=sched/builtin"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    # Quick to notice a job's end and a node's return; a test waits on these.
    echo "MessageTimeout=10"
    echo "KillWait=5"
    echo "MinJobAge=300"
    echo "SlurmdTimeout=30"
    echo "InactiveLimit=0"
    for ((i = 1; i <= n; i++)); do
      # Every emulated host has all of this machine's CPUs: they share them.
      echo "NodeName=$prefix-h$i NodeAddr=10.213.7.$i CPUs=$cpus State=UNKNOWN"
    done
    echo "PartitionName=sim Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4"
  } >"$conf_dir/slurm.conf"
}

record() { mkdir -p "$state/daemons"; echo "$2" >"$state/daemons/$1.pid"; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { echo "slurm_sim: $what did not come up in ${t}s (logs: $conf_dir/*.log)" >&2; return 1; }
    sleep 0.3
  done
}

up() {
  local why; why=$(missing)
  [ -z "$why" ] || { echo "slurm_sim: cannot run Slurm here: missing $why" >&2; exit 77; }
  "$sim" up >/dev/null
  local n; n=$(wc -l <"$state/hosts")
  export SLURM_CONF=$conf_dir/slurm.conf
  if [ ! -f "$SLURM_CONF" ]; then write_conf "$n"; fi
  if ! munge -S "$conf_dir/munge/munge.socket" -n </dev/null >/dev/null 2>&1; then
    munged --force -S "$conf_dir/munge/munge.socket" --pid-file "$conf_dir/munge/munged.pid" \
      --log-file "$conf_dir/munge/munged.log" --seed-file "$conf_dir/munge/munged.seed"
    record munged "$(cat "$conf_dir/munge/munged.pid")"
  fi
  if ! "$sim" exec "$h1" scontrol ping 2>/dev/null | grep -q UP; then
    # -i: ignore state from an earlier cluster of the same name.
    "$sim" exec "$h1" slurmctld -i -f "$SLURM_CONF"
    wait_for 20 slurmctld test -s "$conf_dir/slurmctld.pid"
    record slurmctld "$(cat "$conf_dir/slurmctld.pid")"
    wait_for 20 "slurmctld on $h1" sh -c "'$sim' exec $h1 scontrol ping | grep -q UP"
  fi
  local i host
  for ((i = 1; i <= n; i++)); do
    host=$prefix-h$i
    if ! { [ -s "$conf_dir/slurmd-$host.pid" ] && kill -0 "$(cat "$conf_dir/slurmd-$host.pid")" 2>/dev/null; }; then
      # Its own /tmp, as a real node has: Slurm's PMIx plugin makes the same directory names
      # under /tmp on every node of a job, which one shared /tmp refuses ("File exists").
      mkdir -p "$conf_dir/spool-$host" "$conf_dir/tmp-$host"
      "$sim" exec "$host" unshare --mount --propagation private \
        sh -c 'mount --bind "$1" /tmp && exec slurmd -f "$2"' sh "$conf_dir/tmp-$host" "$SLURM_CONF"
      wait_for 20 "slurmd on $host" test -s "$conf_dir/slurmd-$host.pid"
      record "slurmd-$host" "$(cat "$conf_dir/slurmd-$host.pid")"
    fi
  done
  wait_for 40 "the $n nodes (idle)" sh -c \
    "[ \$('$sim' exec '$h1' sinfo -h -N -t idle -o %N | sort -u | wc -l) -eq $n ]"
  echo "slurm_sim: up, $n node(s); SLURM_CONF=$SLURM_CONF"
}

case "${1:-}" in
  up) up ;;
  down) "$sim" down ;;   # the daemons recorded their pids with cluster_sim, which ends them
  env) echo "export SLURM_CONF=$conf_dir/slurm.conf DT_SIM_STATE=$state DT_SIM_PREFIX=$prefix" ;;
  *) echo "slurm_sim: usage: launch/recipes/slurm_sim.sh up|down|env" >&2; exit 2 ;;
esac
