#!/usr/bin/env bash
# launch/recipes/run_elastic.sh, 2 hosts x 2 ranks: host 2's link goes down mid-epoch (its
# processes live on, unreachable). The survivors' collectives pass their deadline (--comm-timeout
# 10) and abort; mpirun, waiting for the unreachable daemon, is ended --abort-grace (5 s) later;
# the launcher finishes on host 1 alone with the uninterrupted run's weights (1e-9). The time from
# the link going down to the end of attempt 1 is printed, and must stay under --comm-timeout +
# --abort-grace + 10 s.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
need_python
trap restore_hosts EXIT
elastic_reference

check "host $h2's link goes down at step 5 of attempt 1"
start_elastic "$work/elastic.log"
wait_step "$work/elastic.log" 5
ip -n "$h2" link set dtsim0 down
down=$SECONDS
detected=
while kill -0 "$elastic" 2>/dev/null && ((SECONDS - down < 120)); do
  if grep -q '^run_elastic: attempt 1 failed' "$work/elastic.log"; then detected=$((SECONDS - down)); break; fi
  sleep 0.2
done
[ -n "$detected" ] || { cat "$work/elastic.log"; fail "attempt 1 did not end within 120 s of the link going down"; }
echo "detection: attempt 1 ended $detected s after the link went down (--comm-timeout 10, --abort-grace 5)"
((detected <= 25)) || fail "detection took $detected s, over --comm-timeout + --abort-grace + 10 s"
wait_elastic 240
grep -E '^run_elastic:' "$work/elastic.log" || true
((rc == 0)) || { cat "$work/elastic.log"; fail "run_elastic exit $rc"; }
grep -q "^run_elastic: attempt 1: still running 5s after a rank aborted" "$work/elastic.log" ||
  fail "the launcher did not end the attempt that waited on the lost host"
grep -q "^run_elastic: attempt 2 on 1 host(s): $h1 (left out: $h2: " "$work/elastic.log" ||
  fail "attempt 2 did not run on $h1 alone"

check "no rank of attempt 1 left running on $h1"
for pid in $(pgrep -x dist_train || true); do
  [ "$(readlink "/proc/$pid/ns/net")" = "$(on "$h1" readlink /proc/self/ns/net)" ] &&
    fail "rank pid $pid still runs on $h1"
done

check "the weights of the uninterrupted run"
expect_reference_weights
echo "PASSED: $name"
