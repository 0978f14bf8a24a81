#!/usr/bin/env bash
# Set up everything and train: real CIFAR-10 when found ($CIFAR10_DIR or
# data/cifar-10-batches-bin), otherwise the synthetic default (the log says which).
# Extra arguments go to dist_train, e.g. launch/recipes/train.sh --model resnet20 --epochs 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$here/launch/scripts/install_deps.sh" >/dev/null
log=$(mktemp)
if ! "$here/launch/scripts/build.sh" >"$log" 2>&1; then
  tail -n 40 "$log" >&2  # the compiler's own messages, which ninja prints to stdout
  echo "train.sh: the build failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
exec "${BUILD_DIR:-$here/build}/launch/dist_train" "$@"
