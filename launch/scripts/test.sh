#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: install dependencies, build, run ctest.
# Real-data tests read $CIFAR10_DIR and skip (saying so) when it is unset.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$here/launch/scripts/install_deps.sh"
"$here/launch/scripts/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${BUILD_DIR:-$here/build}"
ctest --output-on-failure --timeout 900 -j "${CTEST_JOBS:-2}" "$@"
