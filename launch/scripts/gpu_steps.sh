# Sourced by the GPU check scripts: say, step and finish, over $OUT, $LOG, $START, $BUDGET and the
# RESULTS/FAILED record that finish prints as the PASS/FAIL table and exit code.
say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
# step NAME SECONDS COMMAND...: runs one step (a program or a function of this script) under a
# deadline, so that a hang cannot eat the whole lease; logs its output, records PASS/FAIL/time.
step() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  local left=$(( BUDGET - (t0 - START) - 15 ))  # 15 s kept for the kill and the table
  if [ "$left" -lt 20 ]; then
    RESULTS+=("| $name | **SKIP** (budget: ${BUDGET} s spent) | 0 s |")
    FAILED=1  # a check that did not run is not a pass
    say "== $name: skipped, the ${BUDGET} s budget is spent"
    return 1
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  say "== $name (deadline $limit s)"
  # pipefail inside the step too: "a | tee" must fail when a fails.
  if timeout -k 10 "$limit" bash -o pipefail -c '"$@"' step "$@" >>"$LOG" 2>&1; then
    RESULTS+=("| $name | PASS | $(( $(date +%s) - t0 )) s |")
  else
    local rc=$?
    RESULTS+=("| $name | **FAIL** ($([ $rc -eq 124 ] && echo "deadline" || echo "exit $rc")) | $(( $(date +%s) - t0 )) s |")
    FAILED=1
    say "   FAILED: see the end of $LOG"
    tail -n 40 "$LOG"
    return 1
  fi
}
finish() {
  say "done in $(( $(date +%s) - START )) s"
  printf '\n| step | result | time |\n|---|---|---:|\n' | tee -a "$LOG"
  printf '%s\n' "${RESULTS[@]}" | tee -a "$LOG"
  [ -f "$OUT/bench_gpu.txt" ] && { echo; cat "$OUT/bench_gpu.txt"; }
  exit $FAILED
}
