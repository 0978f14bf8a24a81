#!/usr/bin/env bash
# Trains across the hosts of an Open MPI hostfile (or the nodes of a Slurm allocation) and, when
# one is lost, restarts on the hosts that are left, continuing the same run:
#
#   launch/recipes/run_elastic.sh [OPTIONS] HOSTFILE [dist_train args...]
#   launch/recipes/run_elastic.sh --slurm [OPTIONS] -- [dist_train args...]   (inside sbatch:
#                                  launch/recipes/slurm/dist_train_elastic.sbatch)
# OPTIONS: --min-nodes M (default 1), --max-restarts R (default 3), --probe-timeout S (default
# 10), --abort-grace S (default 10).
#
# Each attempt
#   1. probes every host (hostfile: the remote start mpirun uses, $OMPI_MCA_plm_rsh_agent or ssh
#      in batch mode, running `true`; Slurm: a one-task srun step on the node), each within
#      --probe-timeout seconds;
#   2. runs on the hosts that answer, with --resume auto (hostfile: run_cluster.sh over their
#      lines of HOSTFILE; Slurm: launch/recipes/slurm/start_ranks.sh over those nodes);
#   3. stops on exit 0 (done, or stopped on request: SIGTERM/SIGUSR1 to this script reach the
#      ranks, which save and exit 0);
#   4. stops on exit 2 (bad input: flags, data, checkpoint; another attempt would fail alike);
#   5. on any other failure logs one line (attempt, which rank or host failed and why, the hosts
#      that answer now) and starts again if restarts remain and at least --min-nodes hosts
#      answer. A host that answers again is taken back.
# When it gives up it says why, lists the attempts and exits 1.
#
# What keeps it the same run: --global-batch-size G (not --batch-size), so every attempt takes the
# same global batch whatever the hosts (G must split evenly over each world size the attempts may
# have; dist_train refuses one that does not, exit 2), and --checkpoint-every-steps N on a shared
# file system, so at most N steps are recomputed. README, "When a host dies".
#
# A lost host: the survivors' collectives pass their deadline (--comm-timeout) and they abort the
# job, but mpirun (or srun) may go on waiting for a host that no longer answers. Once a rank has
# aborted, this script gives the attempt --abort-grace seconds to end, then ends it, and (hostfile)
# kills what the attempt left on each host that answers, now or at a later probe. So every
# survivor is gone within --comm-timeout + --abort-grace + 5 s of a host's loss.
#
# Environment: as run_cluster.sh (GPUS_PER_NODE, MPI_IFNAME, DIST_TRAIN, MPIRUN_ARGS,
# OMPI_MCA_plm_rsh_agent). DT_ELASTIC_PROBE=CMD replaces the hostfile probe's remote start
# (CMD HOST true).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
usage="usage: launch/recipes/run_elastic.sh [--min-nodes M] [--max-restarts R] [--probe-timeout S] [--abort-grace S] HOSTFILE [dist_train args...]  |  --slurm [options] -- [dist_train args...]"
die() { echo "run_elastic: $*" >&2; exit 2; }
say() { echo "run_elastic: $*" >&2; }

min_nodes=1 max_restarts=3 probe_timeout=10 abort_grace=10 slurm=0
number() {  # number FLAG VALUE MIN: a whole number >= MIN, else exit 2
  if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3)); then die "$1 must be a whole number >= $3, not '$2'"; fi
}
while (($#)); do
  case "$1" in
    --min-nodes|--max-restarts|--probe-timeout|--abort-grace)
      (($# >= 2)) || die "$1 needs a value ($usage)"
      case "$1" in
        --min-nodes) number "$1" "$2" 1; min_nodes=$2 ;;
        --max-restarts) number "$1" "$2" 0; max_restarts=$2 ;;
        --probe-timeout) number "$1" "$2" 1; probe_timeout=$2 ;;
        --abort-grace) number "$1" "$2" 1; abort_grace=$2 ;;
      esac
      shift 2 ;;
    --slurm) slurm=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) break ;;
  esac
done
for a in "$@"; do
  [[ $a != --resume && $a != --resume=* ]] ||
    die "--resume is this script's: every attempt runs with --resume auto (a run without a checkpoint yet starts afresh)"
done

# The hosts: "NAME [slots=N]" lines.
if ((slurm)); then
  [ -n "${SLURM_JOB_NODELIST:-}" ] || die "--slurm runs inside a Slurm allocation (sbatch launch/recipes/slurm/dist_train_elastic.sbatch)"
  mapfile -t lines < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
  per_node=${SLURM_NTASKS_PER_NODE:-1}
  per_node=${per_node%%(*}  # "2(x3)" when nodes differ; one rank per task on every node
  bin=${DIST_TRAIN:-${BUILD_DIR:-$here/build}/launch/dist_train}
  [ -x "$bin" ] || die "no dist_train binary at $bin (set DIST_TRAIN)"
else
  (($# >= 1)) || die "$usage"
  hostfile=$1
  shift
  [ -f "$hostfile" ] || die "no such hostfile: $hostfile"
  mapfile -t lines < <(grep -vE '^[[:space:]]*(#|$)' "$hostfile")
  ((${#lines[@]} > 0)) || die "$hostfile lists no hosts"
fi
((min_nodes <= ${#lines[@]})) || die "--min-nodes $min_nodes: there are only ${#lines[@]} host(s)"
host_of() { local w; read -r w _ <<<"$1"; echo "$w"; }

if [ -n "${DT_ELASTIC_PROBE:-}" ]; then
  read -r -a remote <<<"$DT_ELASTIC_PROBE"
elif [ -n "${OMPI_MCA_plm_rsh_agent:-}" ]; then
  read -r -a remote <<<"$OMPI_MCA_plm_rsh_agent"
else
  remote=(ssh -o BatchMode=yes -o ConnectTimeout="$probe_timeout")
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/run_elastic.XXXXXX")

# Whether HOST answers: its remote start runs `true` (hostfile), or a one-task step on it does
# (Slurm; --overlap: the failed attempt's step may still hold the node's CPUs).
probe_one() {
  if ((slurm)); then
    srun --overlap --nodes=1 --ntasks=1 --nodelist="$1" true
  else
    "${remote[@]}" "$1" true
  fi
}

# probe: the lines of the hosts that answer go to $work/answering, one "host: why" line per host
# that does not to $work/silent. All hosts at once, each within the timeout.
probe() {
  local i pids=()
  for i in "${!lines[@]}"; do
    timeout -k 2 "$probe_timeout" bash -c "$(declare -f probe_one); $(declare -p slurm remote); probe_one \"\$1\"" \
      _ "$(host_of "${lines[$i]}")" >"$work/probe.$i" 2>&1 </dev/null &
    pids+=($!)
  done
  : >"$work/answering"
  : >"$work/silent"
  for i in "${!lines[@]}"; do
    local rc=0 why
    wait "${pids[$i]}" || rc=$?
    if ((rc == 0)); then
      echo "${lines[$i]}" >>"$work/answering"
    else
      why=$(tail -n 1 "$work/probe.$i")
      ((rc != 124 && rc != 137)) || why="no answer within ${probe_timeout}s"
      echo "$(host_of "${lines[$i]}"): ${why:-exit $rc}" >>"$work/silent"
    fi
  done
}
names() { while read -r l; do host_of "$l"; done <"$1" | paste -sd, -; }
silent_list() { paste -sd';' "$work/silent" | sed 's/;/; /g'; }

# Open MPI job ids of attempts whose processes may be left on a host that did not answer when the
# attempt ended (hostfile; Slurm cleans up its own steps).
leftover_jobs=()
# Kills, on every answering host, the daemons and ranks of those jobs: a daemon's command line and
# a rank's environment carry their job id (ess_base_jobid).
clean_hosts() {
  ((${#leftover_jobs[@]})) || return 0
  local pattern line
  pattern=$(IFS='|'; echo "${leftover_jobs[*]}")
  while read -r line; do
    timeout -k 2 "$probe_timeout" "${remote[@]}" "$(host_of "$line")" \
      "for p in /proc/[0-9]*; do grep -qaE 'ess_base_jobid.?.?($pattern)' \$p/cmdline \$p/environ 2>/dev/null && kill -9 \${p#/proc/} 2>/dev/null; done; true" \
      </dev/null >/dev/null 2>&1 || true
  done <"$work/answering"
}

# The job id of mpirun $1, from the command lines of the remote starts it made (ssh HOST orted ...
# -mca ess_base_jobid "N"); empty until it has made one.
job_of() {
  { ps -o args= --ppid "$1" 2>/dev/null || true; } | grep -oE 'ess_base_jobid "?[0-9]+' |
    grep -oE '[0-9]+$' | head -n 1 || true
}

# Why the attempt whose log is $1 failed, in a few words, from what mpirun, srun and dist_train
# printed (the first that says).
reason_of() {
  local log=$1 r
  r=$(grep -oE 'process rank [0-9]+ with PID [0-9]+ on node [^ ]+ exited on signal [0-9]+ \([^)]*\)' "$log" | head -n 1 |
      sed -E 's/process rank ([0-9]+) with PID [0-9]+ on node ([^ ]+) exited on signal ([0-9]+) \((.*)\)/rank \1 on \2 killed by signal \3 (\4)/' || true)
  [ -n "$r" ] || r=$(grep -A14 'An MPI communication peer process has unexpectedly disconnected' "$log" |
      grep -oE 'Peer host: +[^ ]+' | head -n 1 | sed -E 's/Peer host: +(.*)/a process on \1 disconnected (it or its host is gone)/' || true)
  [ -n "$r" ] || r=$(grep -A3 'ORTE has lost communication with a remote daemon' "$log" | grep -oE 'Remote daemon: .* on node [^ ]+' |
      head -n 1 | sed -E 's/.* on node ([^ ]+)/lost the Open MPI daemon on \1/' || true)
  [ -n "$r" ] || r=$(grep -oE 'srun: error: [^:]+: tasks? [0-9,-]+: .*' "$log" | head -n 1 |
      sed -E 's/srun: error: ([^:]+): (tasks? [0-9,-]+): (.*)/\2 on \1: \3/' || true)
  [ -n "$r" ] || r=$(grep -oE 'srun: error: Node failure on .*' "$log" | head -n 1 | cut -c 14- || true)
  [ -n "$r" ] || r=$(grep -oE '[^ ]+ rank [0-9]+ [^ ]+:[0-9]+: .* did not complete within [0-9.]+ s' "$log" | head -n 1 |
      sed -E 's/([^ ]+) rank ([0-9]+) [^ ]+:[0-9]+: (.*) did not complete within ([0-9.]+) s/rank \2 on \1: its \3 waited \4 s for a peer (a rank or its host is gone)/' || true)
  [ -n "$r" ] || r=$(grep -oE 'dist_train: (error: |rank [0-9]+ on [^ ]+ failed: ).*' "$log" | head -n 1 | cut -c 13-200 || true)
  [ -n "$r" ] || r=$(grep -oE '(srun|start_ranks|run_cluster): error: .*' "$log" | head -n 1 | cut -c 1-200 || true)
  [ -n "$r" ] || ! grep -q 'ORTE was unable to reliably start one or more daemons' "$log" ||
    r="Open MPI lost a daemon (a host is gone)"
  echo "${r:-no rank said why (see $log)}"
}

# Signals to this script go to the attempt (mpirun or srun), which forwards them to the ranks
# (USR1 and TERM: save and stop at the next step).
job=
forward() { if [ -n "$job" ]; then kill -s "$1" "$job" 2>/dev/null || true; fi; }
trap 'forward TERM' TERM
trap 'forward USR1' USR1
trap 'forward INT' INT

# run_attempt N ARGS...: dist_train with ARGS on the answering hosts; sets rc.
run_attempt() {
  local n=$1 log=$work/attempt.$1.log aborted=0 killed=0 jobid=''
  shift
  : >"$log"
  if ((slurm)); then
    local count; count=$(wc -l <"$work/answering")
    # --ntasks too: srun would otherwise take the allocation's task count from the environment.
    "$here/launch/recipes/slurm/start_ranks.sh" --overlap --nodes="$count" --nodelist="$(names "$work/answering")" \
      --ntasks-per-node="$per_node" --ntasks="$((count * per_node))" -- "$bin" "$@" --resume auto \
      > >(tee -a "$log") 2> >(tee -a "$log" >&2) &
  else
    "$here/launch/recipes/run_cluster.sh" "$work/answering" "$@" --resume auto \
      > >(tee -a "$log") 2> >(tee -a "$log" >&2) &
  fi
  job=$!
  while kill -0 "$job" 2>/dev/null; do
    ((slurm)) || [ -n "$jobid" ] || jobid=$(job_of "$job")
    if ((aborted == 0)) && grep -qE 'MPI_ABORT was invoked|aborting the job' "$log"; then
      aborted=$SECONDS
    fi
    if ((aborted > 0 && SECONDS - aborted >= abort_grace)); then
      say "attempt $n: still running ${abort_grace}s after a rank aborted (waiting on a host that no longer answers): ending it"
      kill -TERM "$job" 2>/dev/null || true
      sleep 3
      kill -KILL "$job" 2>/dev/null || true
      killed=1
      break
    fi
    sleep 0.5
  done
  rc=0
  # 2>/dev/null: bash's own line about an mpirun that died of its signal (it says nothing more).
  wait "$job" 2>/dev/null || rc=$?
  job=
  ((killed == 0)) || rc=137
  [ -z "$jobid" ] || leftover_jobs+=("$jobid")
}

start=$SECONDS
attempts=()
n=0
probed=0
while :; do
  n=$((n + 1))
  ((probed)) || probe  # a failed attempt has just probed, for its line
  probed=0
  ((slurm)) || clean_hosts
  answering=$(wc -l <"$work/answering")
  if ((answering < min_nodes)); then
    say "giving up before attempt $n: $answering of ${#lines[@]} host(s) answer (--min-nodes $min_nodes): $(silent_list)"
    break
  fi
  left_out=
  [ ! -s "$work/silent" ] || left_out=" (left out: $(silent_list))"
  say "attempt $n on $answering host(s): $(names "$work/answering")$left_out"
  t0=$SECONDS
  run_attempt "$n" "$@"
  attempts+=("attempt $n on $(names "$work/answering"): exit $rc after $((SECONDS - t0)) s")
  if ((rc == 0)); then
    say "attempt $n finished the run (exit 0); $n attempt(s), $((SECONDS - start)) s in all"
    rm -rf "$work"
    exit 0
  fi
  # Bad input: dist_train's one line, or a launcher script's own (not run_cluster's "N node(s) x").
  bad=$(grep -E '^(dist_train: error: |run_cluster: |start_ranks: )' "$work/attempt.$n.log" | grep -v 'node(s) x' | head -n 1 || true)
  if ((rc == 2)) && [ -n "$bad" ]; then
    say "attempt $n: bad input (exit 2), not retried: $bad"
    exit 2
  fi
  why=$(reason_of "$work/attempt.$n.log")
  probe
  probed=1
  if [ -s "$work/answering" ]; then
    now="hosts answering now: $(names "$work/answering")"
    [ ! -s "$work/silent" ] || now+=" (not: $(silent_list))"
  else
    now="no host answers now ($(silent_list))"
  fi
  attempts[-1]+=": $why"
  if ((n > max_restarts)); then
    say "attempt $n failed after $((SECONDS - t0)) s (exit $rc): $why; $now; no restart left (--max-restarts $max_restarts)"
    break
  fi
  say "attempt $n failed after $((SECONDS - t0)) s (exit $rc): $why; $now; restart $n of $max_restarts"
done
say "gave up after ${#attempts[@]} attempt(s), $((SECONDS - start)) s in all (logs: $work)${attempts:+:}"
for a in "${attempts[@]}"; do say "  $a"; done
exit 1
