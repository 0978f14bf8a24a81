# shellcheck shell=bash
# Sourced by the emulated-cluster tests (tests/launch/cluster/*.sh): paths, the skip and fail
# conventions, and running things on the emulated hosts of launch/recipes/cluster_sim.sh.
# A test script prints what it checks; exit 0 passes, 1 fails, 77 skips (CTest SKIP_RETURN_CODE).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
sim=$repo/launch/recipes/cluster_sim.sh
agent=$repo/launch/recipes/cluster_sim_agent.sh
bin=${DT_TEST_BINARY:-$repo/build/launch/dist_train}
python=${DT_TEST_PYTHON:-$repo/.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
name=$(basename "$0" .sh)
# The emulated hosts' names (launch/recipes/cluster_sim_names.sh): CTest gives each build folder
# its own DT_SIM_PREFIX, so that two test runs on one machine use two clusters.
sim_prefix=${DT_SIM_PREFIX:-dtsim}
h1=$sim_prefix-h1 h2=$sim_prefix-h2

skip() { echo "SKIPPED: $name: $*"; exit 77; }
fail() { echo "FAILED: $name: $*" >&2; exit 1; }
check() { echo "check: $*"; }

# The work folder: on the shared file system (every host sees it; a Slurm node's /tmp is its own),
# under the build folder, fresh for each run of the test.
work=${DT_TEST_WORK:-$repo/build/cluster_work}/$name
rm -rf "$work"
mkdir -p "$work"

# Skips (77) with cluster_sim's own one line where this machine cannot emulate hosts, or when
# the fixture did not bring them up.
need_cluster() {
  local out rc=0
  out=$("$sim" status 2>&1) || rc=$?
  ((rc != 77)) || skip "${out##*$'\n'}"
  ((rc == 0)) || skip "${out##*$'\n'} (the cluster_sim_up fixture brings it up)"
  [ -x "$bin" ] || skip "no dist_train binary at $bin"
}

need_python() { [ -x "$python" ] || skip "no Python with torch at $python (launch/scripts/install_deps.sh)"; }

on() { local host=$1; shift; "$sim" exec "$host" "$@"; }

hostfile() {  # hostfile SLOTS: both emulated hosts, written into $work/hostfile
  printf '%s slots=%s\n%s slots=%s\n' "$h1" "$1" "$h2" "$1" >"$work/hostfile"
  echo "$work/hostfile"
}

# run_cluster.sh from $h1 over both hosts, 2 ranks each; the agent is the only difference
# from a real cluster. Extra environment comes in through `env NAME=VALUE` before the call.
run_cluster_2x2() {
  on $h1 env GPUS_PER_NODE=2 OMPI_MCA_plm_rsh_agent="$agent" \
    "$repo/launch/recipes/run_cluster.sh" "$(hostfile 2)" "$@"
}

# Bytes received on IFACE on HOST, from that host's /proc/net/dev.
rx_bytes() { on "$1" cat /proc/net/dev | awk -v i="$2:" '$1 == i { print $2 }'; }

# Skips (77) unless slurm_sim.sh's cluster is up (the slurm_sim_up fixture).
need_slurm() {
  need_cluster
  export SLURM_CONF=${DT_SIM_STATE:-/run/dist_train_cluster_sim/$sim_prefix}/slurm/slurm.conf
  [ -f "$SLURM_CONF" ] && on $h1 scontrol ping 2>/dev/null | grep -q UP ||
    skip "no emulated Slurm cluster (the slurm_sim_up fixture starts it; it needs slurmctld, slurmd, munge)"
  # Both hosts have a decoy network: Open MPI's traffic goes over dtsim0, as MPI_IFNAME does
  # for run_cluster.sh; the tasks get it through sbatch's --export=ALL.
  export OMPI_MCA_btl_tcp_if_include=dtsim0 OMPI_MCA_oob_tcp_if_include=dtsim0
}

# sbatch of the recipe from $h1, submitted from $work (so %x-%j.out lands there) with the
# repository and binary named; prints the job id. Extra sbatch options first, then --, then
# dist_train's arguments.
submit() {
  local opts=()
  while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  (cd "$work" && on $h1 env DIST_TRAIN_DIR="$repo" DIST_TRAIN="$bin" \
     sbatch --parsable --nodes=2 --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1 \
     --time=10 "${opts[@]}" "$repo/launch/recipes/slurm/dist_train.sbatch" "$@")
}

# JobState and ExitCode of a job, e.g. "COMPLETED 0:0" (slurmctld keeps ended jobs MinJobAge s).
job_state() {
  on $h1 scontrol show job "$1" | tr ' ' '\n' | awk -F= '$1 == "JobState" { s = $2 } $1 == "ExitCode" { e = $2 } END { print s, e }'
}

# Waits up to SECONDS for job ID to end; prints its final state.
wait_job() {
  local id=$1 t=$2 end=$((SECONDS + $2)) st
  while :; do
    st=$(job_state "$id")
    case "$st" in PENDING*|RUNNING*|CONFIGURING*|COMPLETING*|REQUEUED*|"") ;; *) echo "$st"; return 0 ;; esac
    ((SECONDS < end)) || { echo "$st (still, after ${t}s)"; return 1; }
    sleep 0.5
  done
}

# --- Elastic runs (launch/recipes/run_elastic.sh) ------------------------------------------------
# The run every elastic test trains: fp64 with SyncBatchNorm (on at several ranks), a global
# batch of 60 whatever the hosts, 10 steps an epoch, last.pt every 2 steps, a 10 s deadline on
# collectives.
elastic_args=(--device cpu --precision fp64 --synthetic 600 --global-batch-size 60 --epochs 2
              --threads 1 --eval-every 0 --log-every 1 --seed 7 --checkpoint-every-steps 2
              --comm-timeout 10)

# The same run uninterrupted, 2 ranks on this machine (not on an emulated host: no dtsim0 for a
# Slurm test's Open MPI settings), into $work/reference.
elastic_reference() {
  env -u OMPI_MCA_btl_tcp_if_include -u OMPI_MCA_oob_tcp_if_include NP=2 MPIRUN_ARGS=--oversubscribe \
    DIST_TRAIN="$bin" "$repo/launch/recipes/run_node.sh" "${elastic_args[@]}" \
    --checkpoint-dir "$work/reference" --log-dir "$work/reference" >"$work/reference.log" 2>&1 ||
    { cat "$work/reference.log"; fail "the uninterrupted run failed"; }
}

# run_elastic.sh from $h1 over both hosts (2 ranks each), in the background (pid in $elastic),
# its output in $1; then any extra run_elastic options, then --, then extra dist_train args.
start_elastic() {
  local log=$1 opts=()
  shift
  while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
  (($#)) && shift
  on "$h1" env GPUS_PER_NODE=2 MPI_IFNAME=dtsim0 OMPI_MCA_plm_rsh_agent="$agent" DIST_TRAIN="$bin" \
    DT_SIM_CONNECT_TIMEOUT=3 "$repo/launch/recipes/run_elastic.sh" --probe-timeout 6 --abort-grace 5 \
    "${opts[@]}" "$(hostfile 2)" "${elastic_args[@]}" --checkpoint-dir "$work/elastic" \
    --log-dir "$work/elastic" "$@" >"$log" 2>&1 &
  elastic=$!
}

# Waits until LOG shows training step N of the current attempt (up to 120 s).
wait_step() {
  local log=$1 step=$2
  for _ in $(seq 600); do
    grep -q "step $step/" "$log" 2>/dev/null && return 0
    kill -0 "$elastic" 2>/dev/null || { cat "$log"; fail "run_elastic ended before step $step"; }
    sleep 0.2
  done
  cat "$log"
  fail "no step $step within 120 s"
}

# Waits for run_elastic to end (up to SECONDS); its exit code in $rc.
wait_elastic() {
  local end=$((SECONDS + $1))
  while kill -0 "$elastic" 2>/dev/null && ((SECONDS < end)); do sleep 0.5; done
  kill -0 "$elastic" 2>/dev/null && { kill "$elastic"; fail "run_elastic still runs after $1 s"; }
  rc=0
  wait "$elastic" || rc=$?
}

# A host crash: every process in HOST's namespaces ends (ranks, Open MPI's daemon, slurmd, the
# holder that is the host itself), so it no longer answers. restore_hosts brings it back.
crash_host() {
  local pid
  for pid in $(ip netns pids "$1"); do kill -9 "$pid" 2>/dev/null || true; done
}
# Brings every host back as the fixture left it: links up, holders (and Slurm, if it ran) back.
restore_hosts() {
  local h
  for h in "$h1" "$h2"; do ip -n "$h" link set dtsim0 up 2>/dev/null || true; done
  "$sim" up >/dev/null 2>&1 || true
  if [ -f "${DT_SIM_STATE:-/run/dist_train_cluster_sim/$sim_prefix}/slurm/slurm.conf" ]; then
    "$repo/launch/recipes/slurm_sim.sh" up >/dev/null 2>&1 || true
  fi
}

# The weights of $work/elastic/last.pt against the uninterrupted run's, to 1e-9 relative.
expect_reference_weights() {
  "$python" "$(dirname "${BASH_SOURCE[0]}")/compare_checkpoints.py" "$work/elastic/last.pt" \
    "$work/reference/last.pt" --rtol 1e-9 || fail "the elastic run's weights differ from the uninterrupted run's"
}
