#!/usr/bin/env bash
# CTest's entry for the container-image tests (label `image`): skips (77, saying why) where they
# cannot run, as the suite's other real-data and cluster tests do, and otherwise runs them.
#   check   launch/scripts/image_check.sh (needs root, apt-get, and CIFAR10_DIR for real data)
#   faults  tests/docker/image_faults.sh (needs root and apt-get)
# Usage: tests/docker/ctest_image.sh check|faults
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
skip() { echo "SKIPPED: image_${what}: $*"; exit 77; }
what=${1:-}
case "$what" in
  check|faults) ;;
  *) echo "usage: tests/docker/ctest_image.sh check|faults" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || skip "not root (podman runs rootful here)"
command -v apt-get >/dev/null || skip "no apt-get: image_check.sh installs podman from Debian's packages"
if [ "$what" = check ]; then
  [ -n "${CIFAR10_DIR:-}" ] || skip "CIFAR10_DIR is not set (the real-data step)"
  exec "$repo/launch/scripts/image_check.sh"
fi
exec "$repo/tests/docker/image_faults.sh"
