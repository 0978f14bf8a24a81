#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz) and fuzzes each for a bounded, seeded
# number of runs. Usage: launch/scripts/fuzz.sh DIST_TRAIN_BINARY [RUNS]
# The checkpoint seed corpus is a real checkpoint written by a one-step run of DIST_TRAIN_BINARY.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:?usage: launch/scripts/fuzz.sh DIST_TRAIN_BINARY [RUNS]}
runs=${2:-${FUZZ_RUNS:-3000}}
build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
prefix=$("$here/.venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$here/tests/fuzz" -B "$build" -G Ninja \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSE_CUDA=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cifar" "$work/ckpt"
# Seeds: two well-formed CIFAR records, one with a bad label; a real checkpoint.
"$here/.venv/bin/python" - "$work/cifar" <<'PY'
import os, random, sys
random.seed(1)
rec = lambda label: bytes([label]) + bytes(random.randrange(256) for _ in range(3072))
open(os.path.join(sys.argv[1], "good"), "wb").write(rec(3) + rec(9))
open(os.path.join(sys.argv[1], "bad_label"), "wb").write(rec(12))
PY
# SGD without momentum keeps it small (no optimizer state): about 0.7 MB.
"$binary" --synthetic 100 --batch-size 10 --epochs 1 --max-steps 1 --threads 1 --device cpu \
  --optimizer sgd --momentum 0 --lr 0.01 \
  --eval-every 0 --log-dir "$work/run" --checkpoint-dir "$work/run" >"$work/seed_run.log" 2>&1 ||
  { echo "fuzz: the seed checkpoint's run failed:" >&2; cat "$work/seed_run.log" >&2; exit 1; }
cp "$work/run/last.pt" "$work/ckpt/seed.pt"
# And what PyTorch users save, torch.save(model.state_dict()): an OrderedDict with _metadata,
# whose pickle the loader rewrites (trainer/checkpoint/pickle_rewrite.h).
"$here/.venv/bin/python" "$here/tests/python/reference_models.py" save resnet14 \
  "$work/ckpt/state_dict.pt" 1 bare >/dev/null
# libFuzzer truncates inputs to -max_len: below the seeds' size no mutant would ever get past
# the zip directory (at its end) into the pickle and the checks behind it.
ckpt_len=$(( $(stat -c %s "$work/ckpt/seed.pt" "$work/ckpt/state_dict.pt" | sort -n | tail -1) + 4096 ))

# LibTorch's own static allocations are not ours to fix: leaks are not checked.
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
for target in cifar10 checkpoint; do
  echo "fuzz_$target: $runs runs"
  max_len=$([ $target = cifar10 ] && echo 65536 || echo "$ckpt_len")
  "$build/fuzz_$target" -seed=1 -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$work/" "$work/$([ $target = cifar10 ] && echo cifar || echo ckpt)" 2>&1 | tail -n 3
done
echo "fuzzing: no crash, hang or sanitizer report"
