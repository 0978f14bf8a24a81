#!/usr/bin/env bash
# Installs everything dist_train builds and tests with, on a fresh Debian machine. Idempotent and
# quick when everything is already present.
#   - Debian packages: Open MPI, cxxopts, spdlog, nlohmann-json, GoogleTest, CMake, Ninja, clang
#     (fuzzing); iproute2, util-linux, Slurm and munge for the emulated cluster of the recipes'
#     tests (launch/recipes/cluster_sim.sh, slurm_sim.sh), unless DT_SKIP_CLUSTER_DEBS=1.
#   - LibTorch from the PyPI torch wheel (pinned, CUDA 13 build) in a virtual environment that
#     belongs to this project, shared by its clones: $DIST_TRAIN_VENV, by default
#     ~/.cache/dist_train/venv-torch-<version>. The repository's .venv links to it.
# The CUDA toolkit and NCCL are expected in /usr/local/cuda: the CUDA 13 LibTorch of the wheel
# cannot be configured without the toolkit (launch/scripts/build.sh says so and stops). Without a GPU
# the CUDA code still compiles and the CPU paths run; for a machine without the toolkit, point
# Torch_DIR at a CPU LibTorch instead.
set -euo pipefail

TORCH_VERSION=2.11.0        # CUDA 13.0 build on PyPI; matches /usr/local/cuda and the GPU hosts
TORCHVISION_VERSION=0.26.0  # the peer script and tests compare against torchvision
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${DIST_TRAIN_VENV:-$HOME/.cache/dist_train/venv-torch-$TORCH_VERSION}

debs=(build-essential cmake ninja-build git python3 python3-venv libopenmpi-dev openmpi-bin
      libcxxopts-dev libspdlog-dev nlohmann-json3-dev libgtest-dev clang libclang-rt-dev)
# The emulated cluster of the recipes' tests only: an image that runs no tests (docker/) sets
# DT_SKIP_CLUSTER_DEBS=1, and launch/scripts/lint_dockerfile.sh checks debs alone.
cluster_debs=(iproute2 util-linux slurmctld slurmd slurm-client munge)
[ "${DT_SKIP_CLUSTER_DEBS:-0}" = 1 ] || debs+=("${cluster_debs[@]}")
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_deps: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A python3 that can make virtual environments: pyenv's, or Debian's.
py=$(command -v python3)
if [ ! -x "$venv/bin/python" ]; then
  echo "install_deps: creating $venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, torchvision, numpy, PIL, tensorboard, sys; \
    sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "install_deps: installing torch==$TORCH_VERSION into $venv (first time: a few GB)"
  "$venv/bin/pip" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
    numpy pillow tensorboard matplotlib
fi
"$venv/bin/python" -c "import matplotlib" 2>/dev/null || "$venv/bin/pip" install -q matplotlib
if [ -e "$here/.venv" ] && [ ! -L "$here/.venv" ]; then
  # ln -sfn would put the link inside a real folder and leave the folder in charge.
  echo "install_deps: $here/.venv is a folder, not the link to $venv; move it away and rerun" >&2
  exit 2
fi
ln -sfn "$venv" "$here/.venv"
echo "install_deps: ready (torch $("$venv/bin/python" -c 'import torch;print(torch.__version__)'), venv $venv)"
