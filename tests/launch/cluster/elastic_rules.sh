#!/usr/bin/env bash
# launch/recipes/run_elastic.sh's rules: bad input (exit 2) is not retried; a restart budget that
# runs out ends it non-zero, listing every attempt; fewer hosts answering than --min-nodes ends it
# before the attempt; its own bad options are one line, exit 2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
trap restore_hosts EXIT

check "bad input: a global batch 4 ranks cannot split (50), one attempt, exit 2"
start_elastic "$work/bad.log" -- --global-batch-size 50
wait_elastic 120
cat "$work/bad.log" | grep -E '^run_elastic:|error' || true
((rc == 2)) || { cat "$work/bad.log"; fail "exit $rc, expected 2"; }
grep -q "^run_elastic: attempt 1: bad input (exit 2), not retried: dist_train: error: .*--global-batch-size 50 does not split evenly over 4 ranks" \
  "$work/bad.log" || fail "no line saying the bad input is not retried"
grep -q "^run_elastic: attempt 2" "$work/bad.log" && fail "bad input was retried"

check "a budget of 1 restart, a rank killed at step 3 of every attempt: gives up after 2, listing them"
rm -rf "$work/elastic"
export DT_FAULT_INJECT=rank=1,step=3,action=kill  # rank 1 runs on $h1, where mpirun's environment reaches
start_elastic "$work/budget.log" --max-restarts 1
wait_elastic 240
unset DT_FAULT_INJECT
grep -E '^run_elastic:' "$work/budget.log" || true
((rc == 1)) || { cat "$work/budget.log"; fail "exit $rc, expected 1"; }
grep -q "^run_elastic: attempt 2 failed .*; no restart left (--max-restarts 1)" "$work/budget.log" || fail "no line saying the budget ran out"
grep -q "^run_elastic: gave up after 2 attempt(s)" "$work/budget.log" || fail "no give-up line"
[ "$(grep -cE '^run_elastic:   attempt [12] on .*: exit [0-9]+ after [0-9]+ s: rank 1 on ' "$work/budget.log")" -eq 2 ] ||
  fail "the two attempts are not listed with their cause"

check "--min-nodes 2 with $h2 down: gives up before the attempt"
ip -n "$h2" link set dtsim0 down
start_elastic "$work/min.log" --min-nodes 2
wait_elastic 60
cat "$work/min.log"
((rc == 1)) || fail "exit $rc, expected 1"
grep -q "^run_elastic: giving up before attempt 1: 1 of 2 host(s) answer (--min-nodes 2): $h2: " "$work/min.log" ||
  fail "no line naming the silent host"
ip -n "$h2" link set dtsim0 up

check "its own bad options: one line, exit 2"
hosts=$(hostfile 2)
for bad in "--max-restarts x HOSTS" "--min-nodes 3 HOSTS" "--abort-grace" "HOSTS --device cpu --resume auto" \
           "/nonexistent/hostfile"; do
  rc=0
  # shellcheck disable=SC2086  # the words of each case
  out=$(on "$h1" "$repo/launch/recipes/run_elastic.sh" ${bad//HOSTS/$hosts} 2>&1) || rc=$?
  echo "$bad -> $out"
  ((rc == 2)) && [ "$(wc -l <<<"$out")" = 1 ] || fail "'$bad': exit $rc, output: $out"
done
echo "PASSED: $name"
