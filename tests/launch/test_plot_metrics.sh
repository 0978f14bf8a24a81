#!/usr/bin/env bash
# launch/bench/plot_metrics.py end to end: two tiny real runs of dist_train (synthetic data, CPU, two
# epochs, different batch sizes, one with an epoch without evaluation), plotted into one PNG that must be a real, non-trivial PNG; and
# bad input (a missing file, an empty file, a malformed line, a label count that does not match)
# must give exit code 2 with exactly one line on stderr.
# Usage: tests/launch/test_plot_metrics.sh DIST_TRAIN PYTHON   (PLOT_OUT=FILE keeps the PNG)
set -euo pipefail
(($# == 2)) || { echo "usage: $0 DIST_TRAIN PYTHON" >&2; exit 2; }
bin=$1
python=$2
plot=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/launch/bench/plot_metrics.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# Two runs, a few seconds each on one CPU thread. The second evaluates only every 2nd epoch, so
# its first line has test_loss/test_accuracy null, which the plot must skip.
for bs in 32 64; do
  d=$work/bs$bs
  eval_every=1; ((bs == 64)) && eval_every=2
  rc=0
  "$bin" --device cpu --synthetic 600 --epochs 2 --batch-size "$bs" --threads 1 \
    --eval-every "$eval_every" --log-dir "$d" --checkpoint-dir "$d/ckpt" \
    >"$work/train_bs$bs.log" 2>&1 || rc=$?
  ((rc == 0)) || { cat "$work/train_bs$bs.log" >&2; fail "dist_train --batch-size $bs exited with $rc"; }
  [ "$(grep -c . "$d/metrics.jsonl")" -eq 2 ] || fail "bs$bs: expected 2 lines in metrics.jsonl"
done
grep -q '"test_accuracy": null' "$work/bs64/metrics.jsonl" ||
  fail "--eval-every 2 wrote no null test_accuracy: the null case is not exercised"

# The plot: one run given as a directory, one as a metrics.jsonl path, custom labels.
out=$work/plot.png
rc=0
"$python" "$plot" "$work/bs32" "$work/bs64/metrics.jsonl" --labels "batch 32" "batch 64" -o "$out" || rc=$?
((rc == 0)) || fail "plot_metrics.py exited with $rc"
[ -f "$out" ] || fail "no PNG written"
magic=$(head -c 8 "$out" | od -An -tx1 | tr -d ' \n')
[ "$magic" = 89504e470d0a1a0a ] || fail "$out is not a PNG (magic $magic)"
size=$(stat -c %s "$out")
((size > 30000)) || fail "$out is only $size bytes: the plot looks empty"
# The IHDR header: width and height of a 15x8 inch figure at 100 dpi.
dims=$(od -An -tu1 -j16 -N8 "$out" | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4 "x" $5*16777216 + $6*65536 + $7*256 + $8 }')
[ "$dims" = 1500x800 ] || fail "$out is $dims pixels, expected 1500x800"
# Default labels (the run directories' names) work too.
rc=0
"$python" "$plot" "$work/bs32" "$work/bs64" -o "$work/default.png" >/dev/null || rc=$?
((rc == 0)) || fail "plot_metrics.py with default labels exited with $rc"
# PLOT_OUT=FILE keeps a copy of the plot (to look at it, or as a CI artifact).
[ -z "${PLOT_OUT:-}" ] || cp "$out" "$PLOT_OUT"

# Bad input: exit code 2 and exactly one line on stderr.
expect_error() {
  local what=$1; shift
  local rc=0
  "$python" "$plot" "$@" -o "$work/bad.png" >/dev/null 2>"$work/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "$what: exit code $rc, expected 2"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { cat "$work/err" >&2; fail "$what: expected one line on stderr"; }
  echo "ok: $what -> $(cat "$work/err")"
}
expect_error "missing file" "$work/nonexistent/metrics.jsonl"
: >"$work/empty.jsonl"
expect_error "empty file" "$work/empty.jsonl"
{ head -n 1 "$work/bs32/metrics.jsonl"; echo '{"epoch": 2, "step": 36, "train_loss": 0.5,'; } >"$work/malformed.jsonl"
expect_error "malformed line" "$work/malformed.jsonl"
expect_error "label count" "$work/bs32" "$work/bs64" --labels only-one

echo "PASS: $out ($size bytes, $dims); bad input exits 2"
