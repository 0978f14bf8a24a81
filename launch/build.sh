#!/usr/bin/env bash
# Configures and builds dist_train and its tests into ${BUILD_DIR:-build}.
# LibTorch comes from the project venv (launch/install_deps.sh) unless Torch_DIR or
# CMAKE_PREFIX_PATH point at another LibTorch 2.x (the official zip, conda).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$here/build}
args=(-G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}")
if [ -z "${Torch_DIR:-}" ] && [ -z "${CMAKE_PREFIX_PATH:-}" ]; then
  prefix=$("$here/.venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  args+=(-DCMAKE_PREFIX_PATH="$prefix" -DDT_PYTHON="$here/.venv/bin/python")
elif [ -n "${Torch_DIR:-}" ]; then
  args+=(-DTorch_DIR="$Torch_DIR")
fi
[ -f "$build/build.ninja" ] || cmake -S "$here" -B "$build" "${args[@]}" ${CMAKE_ARGS:-}
cmake --build "$build" -j "${JOBS:-$(nproc)}"
