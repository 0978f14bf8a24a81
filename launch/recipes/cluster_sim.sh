#!/usr/bin/env bash
# An emulated cluster on this one machine, for trying (and testing) the cluster recipes:
#   launch/recipes/cluster_sim.sh up|down|status|exec HOST CMD...
#
# `up` makes DT_SIM_HOSTS (default 2) hosts $prefix-h1, $prefix-h2, ... (DT_SIM_PREFIX, default
# dtsim, as in dtsim-h1; launch/recipes/cluster_sim_names.sh): each is a network namespace
# with its own hostname (a UTS namespace) and its own mount table (a mount namespace, a copy of
# this machine's, so a test can mount something on one host only), kept alive by one small
# holder process per host, wired to a switch namespace ($prefix-sw, a bridge) through a veth pair
# whose host end is named dtsim0. Addresses come from 10.213.7.0/24 and exist only inside these
# namespaces: nothing is added to this machine's own network, and two clusters of different
# prefixes (two test runs at once) share nothing but the machine. The file system is shared, as a
# shared file system would be. Each host also has a decoy interface (dtdecoy0, 10.213.8.0/24, a
# veth looping back into the same host) that leads nowhere, so that picking the interface
# (MPI_IFNAME) matters as it does on a real cluster.
#
# `reach HOST [SECONDS]` succeeds when HOST answers a TCP connection (even a refused one) from this
# process's network namespace within SECONDS (default 5), as ssh's connect would; from outside the
# emulated hosts (no dtsim0 here) there is no network to check and it succeeds. Else one line,
# exit 255.
# `exec HOST CMD...` runs CMD on HOST (its network, hostname and mounts) keeping this
# environment: a shell on a host, for a test or a user. launch/recipes/cluster_sim_agent.sh, Open MPI's
# remote-start agent for these hosts in place of ssh, goes through it.
# `down` removes every namespace of this prefix, its links, holder processes and the daemon pids
# recorded here, also after a failed or killed `up` or test, and nothing of another prefix's; it
# is safe to run at any time. `up` is idempotent.
#
# Needs root and iproute2's `ip netns`; where they are missing, `up` and `status` print one line
# and exit 77 (tests map it to "skipped").
# State: $DT_SIM_STATE (default /run/dist_train_cluster_sim/$prefix): hosts, holder pids, daemon pids.
set -euo pipefail
# shellcheck source=launch/recipes/cluster_sim_names.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster_sim_names.sh"
subnet=10.213.7
usage="usage: launch/recipes/cluster_sim.sh up|down|status|reach HOST [SECONDS]|exec HOST CMD..."

# The one-line reason this machine cannot emulate hosts, or nothing.
unsupported() {
  if [ "$(id -u)" != 0 ]; then echo "needs root (network and UTS namespaces)"; return; fi
  command -v ip >/dev/null || { echo "needs iproute2's ip (apt-get install iproute2)"; return; }
  command -v nsenter >/dev/null && command -v unshare >/dev/null ||
    { echo "needs nsenter and unshare (util-linux)"; return; }
  # A trial namespace: containers without CAP_SYS_ADMIN refuse it here.
  local probe=${prefix}-probe-$$ err
  if ! err=$(ip netns add "$probe" 2>&1); then echo "ip netns refused: ${err//$'\n'/ }"; return; fi
  ip netns delete "$probe" 2>/dev/null || true
}

host_names() { local n=${DT_SIM_HOSTS:-2} i; for ((i = 1; i <= n; i++)); do echo "$prefix-h$i"; done; }

# The holder process of HOST: in HOST's network namespace and its own UTS and mount namespaces.
# Entering them (nsenter -t PID -n -u -m) is what being on that host means.
holder_pid() {
  local pid
  pid=$(cat "$state/$1.pid" 2>/dev/null) || return 1
  # Its hostname proves it is ours (a pid can be reused). Not `ip netns`: from inside a host's
  # mount namespace, the /run/netns entries made after it do not show.
  [ "$(nsenter -t "$pid" -u hostname 2>/dev/null)" = "$1" ] && echo "$pid"
}

up() {
  local why; why=$(unsupported)
  [ -z "$why" ] || { echo "cluster_sim: cannot emulate hosts here: $why" >&2; exit 77; }
  mkdir -p "$state"
  ip netns list | grep -qw "^$prefix-sw" || ip netns add "$prefix-sw"
  ip -n "$prefix-sw" link show br0 >/dev/null 2>&1 || ip -n "$prefix-sw" link add br0 type bridge
  ip -n "$prefix-sw" link set br0 up
  ip -n "$prefix-sw" link set lo up
  local i=0 host
  : >"$state/hosts.tmp"
  for host in $(host_names); do
    i=$((i + 1))
    ip netns list | grep -qw "^$host" || ip netns add "$host"
    if ! ip -n "$host" link show dtsim0 >/dev/null 2>&1; then
      ip link add "$host" netns "$prefix-sw" type veth peer name dtsim0 netns "$host"
      ip -n "$prefix-sw" link set "$host" master br0 up
      ip -n "$host" addr add "$subnet.$i/24" dev dtsim0
    fi
    ip -n "$host" link set dtsim0 up
    ip -n "$host" link set lo up
    if ! ip -n "$host" link show dtdecoy0 >/dev/null 2>&1; then
      # A veth pair looping back into the same host (no dummy driver in every kernel).
      ip -n "$host" link add dtdecoy0 type veth peer name dtdecoy1
      ip -n "$host" addr add "10.213.8.$i/24" dev dtdecoy0
      ip -n "$host" link set dtdecoy0 up
      ip -n "$host" link set dtdecoy1 up
    fi
    if ! holder_pid "$host" >/dev/null; then
      # setsid + closed descriptors: the holder outlives this script and holds no test's pipes.
      # nsenter rather than `ip netns exec`, which would mount a /sys of its own: slurmd needs
      # this machine's /sys/fs/cgroup.
      setsid nsenter --net="/run/netns/$host" unshare --uts --mount --propagation private \
        sh -c "hostname $host; exec sleep infinity" \
        </dev/null >/dev/null 2>&1 &
      echo $! >"$state/$host.pid"
      local tries=0
      until [ "$(nsenter -t "$(cat "$state/$host.pid")" -u hostname 2>/dev/null)" = "$host" ]; do
        ((++tries < 50)) || { echo "cluster_sim: the holder of $host did not start" >&2; exit 1; }
        sleep 0.1
      done
    fi
    echo "$host $subnet.$i" >>"$state/hosts.tmp"
  done
  mv "$state/hosts.tmp" "$state/hosts"
  status
}

# Every daemon a test started on these hosts records its pid under $state/daemons/ (slurmd,
# slurmctld, munged): down ends them before the namespaces go.
down() {
  local f pid host
  for f in "$state"/daemons/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kill "$pid" 2>/dev/null || true
  done
  sleep 0.2
  for f in "$state"/daemons/*.pid "$state"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  # Whatever still runs in a namespace of ours (a rank left behind by a killed test).
  for host in $(ip netns list 2>/dev/null | awk -v p="^$prefix-" '$1 ~ p { print $1 }'); do
    for pid in $(ip netns pids "$host" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns delete "$host" 2>/dev/null || true
  done
  rm -rf "$state"
  echo "cluster_sim: down"
}

status() {
  local why; why=$(unsupported)
  [ -z "$why" ] || { echo "cluster_sim: cannot emulate hosts here: $why" >&2; exit 77; }
  [ -f "$state/hosts" ] || { echo "cluster_sim: down"; return 3; }
  local host addr pid ok=0
  while read -r host addr; do
    if pid=$(holder_pid "$host"); then
      echo "cluster_sim: $host up ($addr on dtsim0, hostname $(nsenter -t "$pid" -u hostname))"
    else
      echo "cluster_sim: $host broken (no holder process; run down, then up)"; ok=3
    fi
  done <"$state/hosts"
  return $ok
}

# Runs CMD on HOST. HOST may be a name or its address, as mpirun passes what the hostfile says.
on_host() {
  local host=$1; shift
  local name pid
  name=$(awk -v h="$host" '$1 == h || $2 == h { print $1 }' "$state/hosts" 2>/dev/null)
  [ -n "$name" ] || { echo "cluster_sim: no emulated host '$host' (is the cluster up?)" >&2; exit 255; }
  pid=$(holder_pid "$name") || { echo "cluster_sim: $name has no holder process" >&2; exit 255; }
  # --wd: keep this working directory (entering a mount namespace would start at /), as a
  # shared file system keeps the path the same on every host.
  exec nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}

# Whether HOST answers on the emulated network from here: a connection refused is an answer.
reach() {
  local host=$1 seconds=${2:-5} addr out rc=0
  ip link show dtsim0 >/dev/null 2>&1 || return 0  # not on an emulated host: nothing to cross
  addr=$(awk -v h="$host" '$1 == h || $2 == h { print $2 }' "$state/hosts" 2>/dev/null)
  [ -n "$addr" ] || { echo "cluster_sim: ssh: Could not resolve hostname $host" >&2; return 255; }
  out=$(timeout "$seconds" bash -c "exec 3<>/dev/tcp/$addr/22" 2>&1) || rc=$?
  case "$rc:$out" in
    0:*|*"Connection refused"*) return 0 ;;
    124:*) echo "cluster_sim: ssh: connect to host $host port 22: Connection timed out" >&2 ;;
    *) echo "cluster_sim: ssh: connect to host $host port 22: ${out##*: }" >&2 ;;
  esac
  return 255
}

case "${1:-}" in
  up) up ;;
  reach)
    (($# >= 2)) || { echo "cluster_sim: $usage" >&2; exit 2; }
    reach "$2" "${3:-5}"
    ;;
  down) down ;;
  status) status ;;
  exec)
    (($# >= 3)) || { echo "cluster_sim: $usage" >&2; exit 2; }
    host=$2; shift 2
    on_host "$host" "$@"
    ;;
  *) echo "cluster_sim: $usage" >&2; exit 2 ;;
esac
