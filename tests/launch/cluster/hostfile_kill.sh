#!/usr/bin/env bash
# kill -9 of one rank on the second emulated host ends the whole job, non-zero, within 30 s, and
# leaves no rank running on either host.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
log=$work/run.log
MPI_IFNAME=dtsim0 run_cluster_2x2 --device cpu --synthetic 4000 --batch-size 8 --epochs 1 \
  --threads 1 --eval-every 0 --log-every 1 --checkpoint-dir "$work/run" --log-dir "$work/run" \
  >"$log" 2>&1 &
job=$!
trap 'kill -9 $job 2>/dev/null || true' EXIT

# Rank 3's process: a dist_train in $h2's network namespace whose rank is 3.
rank3() {
  local pid
  for pid in $(pgrep -x dist_train); do
    [ "$(readlink "/proc/$pid/ns/net")" = "$(on $h2 readlink /proc/self/ns/net)" ] || continue
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=3 && echo "$pid"
  done
}
check "training started (step 3 logged)"
for _ in $(seq 300); do
  grep -q "step 3/" "$log" && break
  kill -0 $job 2>/dev/null || { cat "$log"; fail "the job ended before step 3"; }
  sleep 0.2
done
grep -q "step 3/" "$log" || { cat "$log"; fail "no step 3 within 60 s"; }
pid=$(rank3)
[ -n "$pid" ] || { cat "$log"; fail "no rank 3 process found on $h2"; }

check "kill -9 of rank 3 (pid $pid, on $h2)"
kill -9 "$pid"
start=$SECONDS
rc=0
while kill -0 $job 2>/dev/null && ((SECONDS - start <= 30)); do sleep 0.2; done
kill -0 $job 2>/dev/null && { cat "$log"; fail "the job still runs 30 s after the kill"; }
wait $job || rc=$?
echo "the job ended $((SECONDS - start)) s after the kill, exit code $rc"
((rc != 0)) || { cat "$log"; fail "the job exited 0 after losing a rank"; }
sleep 1
left=$(pgrep -x dist_train | while read -r p; do
  for h in $h1 $h2; do
    [ "$(readlink "/proc/$p/ns/net")" = "$(on $h readlink /proc/self/ns/net)" ] && echo "$p@$h"
  done
done || true)
[ -z "$left" ] || fail "ranks left running: $left"
echo "PASSED: $name"
