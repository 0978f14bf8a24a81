#!/usr/bin/env bash
# launch/recipes/run_elastic.sh, 2 hosts x 2 ranks: host 2's link goes down in attempt 1, so
# attempt 2 runs on host 1 alone; the link comes back, and a rank of attempt 2 is killed. Attempt
# 3 finds host 2 answering again and takes it back (2 hosts x 2 ranks), and the run still ends
# with the uninterrupted run's weights (1e-9).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
need_python
trap restore_hosts EXIT
elastic_reference

check "attempt 1 loses $h2's link at step 3"
start_elastic "$work/elastic.log"
wait_step "$work/elastic.log" 3
ip -n "$h2" link set dtsim0 down
for _ in $(seq 600); do grep -q '^run_elastic: attempt 2 on' "$work/elastic.log" && break; sleep 0.2; done
grep -q "^run_elastic: attempt 2 on 1 host(s): $h1 " "$work/elastic.log" || { cat "$work/elastic.log"; fail "no attempt 2 on $h1 alone"; }

check "$h2 comes back; a rank of attempt 2 is killed after its first resumed step"
ip -n "$h2" link set dtsim0 up
# Attempt 2 has resumed and trained a step: the first "resumed from" line, then a step after it.
for _ in $(seq 600); do
  sed -n '/resumed from/,$p' "$work/elastic.log" | grep -q "step [0-9]*/" && break
  sleep 0.2
done
# Its rank 1: a dist_train in $h1's namespace with rank 1 in its environment.
h1_net=$(on "$h1" readlink /proc/self/ns/net)
victim=
for _ in $(seq 50); do
  for pid in $(pgrep -f "^$bin " || true); do
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$h1_net" ] || continue
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$pid
  done
  [ -z "$victim" ] || break
  sleep 0.2
done
[ -n "$victim" ] || { ps -eo pid,args | grep -v grep | grep dist_train; cat "$work/elastic.log"; fail "no rank 1 of attempt 2 found"; }
kill -9 "$victim"
wait_elastic 300
grep -E '^run_elastic:' "$work/elastic.log" || true
((rc == 0)) || { cat "$work/elastic.log"; fail "run_elastic exit $rc"; }
grep -q "^run_elastic: attempt 2 failed .*rank 1 on $h1 killed by signal 9" "$work/elastic.log" ||
  fail "attempt 2's line does not name the killed rank"
grep -q "^run_elastic: attempt 3 on 2 host(s): $h1,$h2$" "$work/elastic.log" || fail "attempt 3 did not take $h2 back"
grep -q "batch 15 per rank x 4 ranks = 60 global" "$work/elastic.log" || fail "attempt 3 did not run 4 ranks x 15"

check "the weights of the uninterrupted run"
expect_reference_weights
echo "PASSED: $name"
