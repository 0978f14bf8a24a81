#!/usr/bin/env bash
# Configures and builds dist_train and its tests into ${BUILD_DIR:-build}.
# LibTorch comes from the project venv (launch/scripts/install_deps.sh) unless Torch_DIR or
# CMAKE_PREFIX_PATH point at another LibTorch 2.x (the official zip, conda).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$here/build}
args=(-G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}")
if [ -z "${Torch_DIR:-}" ] && [ -z "${CMAKE_PREFIX_PATH:-}" ]; then
  # The venv's LibTorch is the CUDA 13 build, whose CMake config insists on a CUDA toolkit.
  if ! command -v nvcc >/dev/null && [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    echo "build.sh: no CUDA toolkit (nvcc in PATH or \${CUDA_HOME:-/usr/local/cuda}/bin): the venv's" \
         "LibTorch (CUDA 13 build) cannot be configured without one. Install the CUDA 13 toolkit," \
         "or point Torch_DIR at a CPU LibTorch (the official libtorch cpu zip)." >&2
    exit 2
  fi
  prefix=$("$here/.venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  args+=(-DCMAKE_PREFIX_PATH="$prefix" -DDT_PYTHON="$here/.venv/bin/python")
elif [ -n "${Torch_DIR:-}" ]; then
  args+=(-DTorch_DIR="$Torch_DIR")
fi
# Configured every time (seconds when the cache exists), so changed CMAKE_ARGS, Torch_DIR or
# venv paths take effect instead of being ignored by an existing build folder.
cmake -S "$here" -B "$build" "${args[@]}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "${JOBS:-$(nproc)}"
