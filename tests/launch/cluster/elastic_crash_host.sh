#!/usr/bin/env bash
# launch/recipes/run_elastic.sh, 2 hosts x 2 ranks, global batch 60 (fp64, SyncBatchNorm): host 2
# crashes mid-epoch (every process on it ends, its ranks among them). The launcher finishes the
# run on host 1 alone (2 ranks x 30) with --resume auto, and the final weights are those of the
# uninterrupted run to 1e-9 relative.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
need_python
trap restore_hosts EXIT
elastic_reference

check "host $h2 crashes at step 5 of attempt 1"
start_elastic "$work/elastic.log"
wait_step "$work/elastic.log" 5
crash_host "$h2"
wait_elastic 240
cat "$work/elastic.log" | grep -E '^run_elastic:|resumed from|global batch' || true
((rc == 0)) || { cat "$work/elastic.log"; fail "run_elastic exit $rc"; }
grep -q "^run_elastic: attempt 1 failed .*; hosts answering now: $h1 (not: $h2: " "$work/elastic.log" ||
  fail "no line naming the failure and the hosts left"
grep -q "^run_elastic: attempt 2 on 1 host(s): $h1 (left out: $h2: " "$work/elastic.log" ||
  fail "attempt 2 did not run on $h1 alone"
grep -q "batch 30 per rank x 2 ranks = 60 global" "$work/elastic.log" || fail "attempt 2 did not keep the global batch"
grep -q "the global batch of 60 images per step is kept (4 rank(s) wrote" "$work/elastic.log" ||
  fail "attempt 2 did not resume keeping the global batch"

check "the weights of the uninterrupted run"
expect_reference_weights
echo "PASSED: $name"
