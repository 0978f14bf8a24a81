#!/usr/bin/env bash
# The one place where docker/Dockerfile's two bases differ. The base decides the variant:
#   gpu: the base has the CUDA toolkit (/usr/local/cuda/bin/nvcc: NVIDIA's CUDA devel images, the
#        default). Built exactly as before: NCCL from the base, CUDA code compiled for the GPUs.
#   cpu: any other base (a plain Debian 12 or Ubuntu 24.04). The same LibTorch (the PyPI wheel,
#        CUDA 13 build: PyPI has no CPU-only torch for Linux), whose CMake config insists on a CUDA
#        compiler even for CPU-only code; NVIDIA's nvcc from PyPI (cuda-toolkit[nvcc,crt,nvvm], the
#        version torch itself requires) satisfies it, and dist_train is built with
#        -DDT_WITH_CUDA=OFF: no CUDA code of ours, no NCCL, CPU training only.
# The package names are the same in Ubuntu 24.04 and Debian 12 (launch/scripts/lint_dockerfile.sh
# checks them against Debian's), so the Dockerfile's apt-get list is shared and not handled here.
#
# Usage (from the Dockerfile, in /opt/dist_train):
#   docker/variant.sh deps    after the Debian packages: the venv with torch (install_deps.sh)
#   docker/variant.sh build   after COPY of the source: build dist_train (build.sh), check --help
# Host caches mounted by `podman build -v` (launch/scripts/image_check.sh) make rebuilds fast and
# are used only when present: /cache/pip (pip's wheel cache), /cache/ccache (compiler cache),
# /cache/ca-certificates.crt (the build machine's CA bundle for pip, where a proxy inspects TLS).
# Environment: DT_CMAKE_ARGS (the Dockerfile's ARG), extra CMake arguments for build.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1:-}" in
  deps|build) ;;
  *) echo "usage: docker/variant.sh deps|build (run by docker/Dockerfile)" >&2; exit 2 ;;
esac
[ -n "${DIST_TRAIN_VENV:-}" ] || { echo "variant.sh: DIST_TRAIN_VENV is not set (docker/Dockerfile sets it)" >&2; exit 2; }
venv=$DIST_TRAIN_VENV

if [ -x /usr/local/cuda/bin/nvcc ]; then
  variant=gpu why="the base has /usr/local/cuda/bin/nvcc"
else
  variant=cpu why="no /usr/local/cuda/bin/nvcc in the base"
fi

# The CPU variant's nvcc and CUDA headers: pip's merged cu13 folder in the venv (bin/, include/,
# lib/), where the torch wheel's CUDA libraries already are.
cpu_toolkit() {
  "$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))'
}

case "${1:-}" in
  deps)
    echo "variant.sh: the $variant variant ($why)"
    if [ $variant = gpu ]; then
      # NCCL is the base image's libnccl-dev; fail here, not deep in CMake, if a base lacks it.
      test -f /usr/include/nccl.h || test -f /usr/local/cuda/include/nccl.h ||
        { echo "variant.sh: the CUDA base image has no nccl.h (libnccl-dev)" >&2; exit 1; }
    fi
    if [ -d /cache/pip ]; then export PIP_CACHE_DIR=/cache/pip; unset PIP_NO_CACHE_DIR; fi
    if [ -f /cache/ca-certificates.crt ]; then export PIP_CERT=/cache/ca-certificates.crt; fi
    DT_SKIP_CLUSTER_DEBS=1 "$here/launch/scripts/install_deps.sh"
    if [ $variant = cpu ]; then
      # The cuda-toolkit version that the installed torch requires (its runtime libraries' pin),
      # so that nvcc and the libraries agree, as LibTorch's CMake config checks.
      pin=$("$venv/bin/python" -c '
import importlib.metadata as m, re
for r in m.requires("torch") or []:
    v = re.match(r"cuda-toolkit\[[^]]*\]==([0-9.]+)", r)
    if v: print(v.group(1)); break')
      [ -n "$pin" ] || { echo "variant.sh: torch requires no cuda-toolkit version; cannot pick nvcc" >&2; exit 1; }
      echo "variant.sh: installing nvcc from cuda-toolkit==$pin (configure-time only)"
      "$venv/bin/pip" install -q "cuda-toolkit[nvcc,crt,nvvm]==$pin"
      tk=$(cpu_toolkit)
      # CMake's find_library looks for libcudart.so, libnvrtc.so, ... (the wheels ship only the
      # versioned libcudart.so.13, ...); nvcc's profile for its link libraries in lib64/ (the
      # wheels' folder is lib/).
      for lib in "$tk"/lib/lib*.so.[0-9]*; do
        [ -e "${lib%%.so.*}.so" ] || ln -s "$(basename "$lib")" "${lib%%.so.*}.so"
      done
      [ -e "$tk/lib64" ] || ln -s lib "$tk/lib64"
      "$tk/bin/nvcc" --version | tail -1
    fi
    ;;
  build)
    cd "$here"
    # A stale build/ from the host would point at the host's paths: start clean. install_deps.sh
    # again (seconds: all present) to relink .venv to the image's venv.
    rm -rf build
    DT_SKIP_CLUSTER_DEBS=1 launch/scripts/install_deps.sh >/dev/null
    cmake_args=${DT_CMAKE_ARGS:-}
    if [ -d /cache/ccache ] && command -v ccache >/dev/null; then
      # The precompiled header needs these sloppiness settings to be cacheable.
      export CCACHE_DIR=/cache/ccache CCACHE_BASEDIR=$here CCACHE_NOHASHDIR=1 \
        CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      cmake_args="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache $cmake_args"
      ccache -z >/dev/null
    fi
    if [ $variant = cpu ]; then
      tk=$(cpu_toolkit)
      # nvcc on PATH lets build.sh and LibTorch's config find the toolkit; CUDA architectures OFF
      # because nothing of ours is compiled for a GPU.
      export PATH=$tk/bin:$PATH
      cmake_args="-DDT_WITH_CUDA=OFF -DCMAKE_CUDA_ARCHITECTURES=OFF $cmake_args"
    fi
    CMAKE_ARGS="$cmake_args" launch/scripts/build.sh
    [ -z "${CCACHE_DIR:-}" ] || ccache -s | grep -E -i '^(cacheable|  hits|  misses|hits|misses)' || true
    build/launch/dist_train --help >/dev/null
    echo "variant.sh: built the $variant variant"
    ;;
esac
