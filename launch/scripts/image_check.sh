#!/usr/bin/env bash
# Builds the CPU variant of docker/Dockerfile with podman and runs it for real, start to finish,
# on a Debian 12 machine without a container registry. Each step is named; the first that fails
# ends the check with "image_check: FAILED at step NAME" and exit 1.
#   prerequisites  podman, runc and mmdebstrap (installed when missing), root, the data, Python
#   base           a Debian 12 base image from the package mirror (mmdebstrap | podman import),
#                  made once and then reused: a new base would invalidate every cached layer
#   build          podman build --network host of docker/Dockerfile with that base
#   help           podman run IMAGE --help (the entry point)
#   synthetic      2 ranks in one container on synthetic data (launch/recipes/run_node.sh)
#   real-data      the real CIFAR-10 data mounted read-only, the checkpoint written to a mounted
#                  folder and read back with torch.load on this machine
#   two-hosts      two containers on their own podman network, each running the image's sshd
#                  with keys made here; mpirun in the first starts 2 ranks in each, as
#                  docker/README.md ("Several nodes") says; the fp64 weights equal 4 ranks in one
#                  container's (relative 1e-9)
#
# Usage: launch/scripts/image_check.sh        (as root: podman runs rootful)
# Environment:
#   CIFAR10_DIR           the CIFAR-10 binary batches (required: the real-data step)
#   DT_IMAGE_STEPS        the steps after build to run (default: help synthetic real-data two-hosts;
#                         set and empty: build only)
#   DT_IMAGE_TAG          the image to build (default localhost/dist_train:cpu)
#   DT_IMAGE_DOCKERFILE   the Dockerfile (default docker/Dockerfile; tests/docker/ breaks copies)
#   DT_IMAGE_NEW_BASE=1   make the base image again even if it exists
#   DT_IMAGE_CACHE        host caches mounted into the build: pip's wheels and ccache
#                         (default ~/.cache/dist_train/image; they persist between CI runs)
#   DT_IMAGE_WORK         work folder (default: a new one under ${TMPDIR:-/tmp}, removed at the end)
#   DT_TEST_PYTHON        Python with torch on this machine (default .venv/bin/python)
# Podman's settings come from a containers.conf written into the work folder (CONTAINERS_CONF):
# the runc runtime and cgroupfs (crun refuses hybrid cgroups), and ulimits within this machine's
# hard limits (the runtime's setrlimit fails above them). Nothing under /etc is changed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
start=$SECONDS

usage_error() { echo "image_check: $*" >&2; exit 2; }
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) usage_error "takes no arguments (got '$1'); see --help" ;;
esac

tag=${DT_IMAGE_TAG:-localhost/dist_train:cpu}
base=localhost/dist_train-base:bookworm
dockerfile=${DT_IMAGE_DOCKERFILE:-$here/docker/Dockerfile}
ignorefile=$here/docker/Dockerfile.dockerignore
cache=${DT_IMAGE_CACHE:-$HOME/.cache/dist_train/image}
python=${DT_TEST_PYTHON:-$here/.venv/bin/python}
steps=${DT_IMAGE_STEPS-help synthetic real-data two-hosts}
for s in $steps; do
  case $s in help|synthetic|real-data|two-hosts) ;; *) usage_error "DT_IMAGE_STEPS: no step '$s' (help synthetic real-data two-hosts)" ;; esac
done
wants() { [[ " $steps " == *" $1 "* ]]; }

# --- bad input first: one line, exit 2 ------------------------------------------------------------
[ "$(id -u)" = 0 ] || usage_error "run as root (podman runs rootful here)"
[ -f "$dockerfile" ] || usage_error "no Dockerfile at $dockerfile"
if wants real-data; then
  [ -n "${CIFAR10_DIR:-}" ] || usage_error "CIFAR10_DIR is not set (the CIFAR-10 binary batches, for the real-data step)"
  [ -f "$CIFAR10_DIR/data_batch_1.bin" ] || usage_error "CIFAR10_DIR=$CIFAR10_DIR has no data_batch_1.bin"
  data=$(cd "$CIFAR10_DIR" && pwd)
fi
if wants real-data || wants two-hosts; then
  [ -x "$python" ] || usage_error "no Python with torch at $python (launch/scripts/install_deps.sh, or DT_TEST_PYTHON)"
fi

if [ -n "${DT_IMAGE_WORK:-}" ]; then
  work=$DT_IMAGE_WORK; rm -rf "$work"; mkdir -p "$work"; keep_work=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/image_check.XXXXXX"); keep_work=0
fi
work=$(cd "$work" && pwd)
# Names of this run's containers and network: unique, so that runs side by side do not clash.
run_id=dtic$$

step=prerequisites
step_start=$SECONDS
n_steps=0
cleanup() {
  local c
  for c in $(podman ps -a -q --filter "name=^$run_id-" 2>/dev/null); do
    podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  podman network rm -f "$run_id-net" >/dev/null 2>&1 || true
  ((keep_work)) || rm -rf "$work"
}
on_exit() {
  local rc=$?
  trap - EXIT
  cleanup
  if ((rc != 0 && rc != 2)); then
    echo "image_check: FAILED at step $step (exit $rc, after $((SECONDS - start)) s)" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

begin() {
  step=$1; step_start=$SECONDS
  echo "== image_check: step $step"
}
passed() {
  n_steps=$((n_steps + 1))
  echo "-- image_check: step $step passed ($((SECONDS - step_start)) s)${1:+: $1}"
}
fail() { echo "image_check: $step: $*" >&2; exit 1; }
# show LOG: the last lines of a step's log, for a failure's context.
show() { echo "--- last lines of $1:" >&2; tail -n 40 "$1" >&2; }
# run_logged LOG TIMEOUT CMD...: runs CMD with its output in LOG; never hangs past TIMEOUT s.
run_logged() {
  local log=$1 limit=$2; shift 2
  if ! timeout --kill-after=20 "$limit" "$@" >"$log" 2>&1; then
    show "$log"
    fail "'$*' failed (or ran past ${limit} s); log: $log"
  fi
}

# --- prerequisites ---------------------------------------------------------------------------------
begin prerequisites
missing=()
for p in podman runc mmdebstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "image_check: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Ulimits for containers: at most this machine's hard limits, or runc's setrlimit fails.
min() { if [ "$1" = unlimited ] || { [ "$2" != unlimited ] && (($2 < $1)); }; then echo "$2"; else echo "$1"; fi; }
nofile=$(min "$(ulimit -Hn)" 16384)
nproc=$(min "$(ulimit -Hu)" 32768)
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf
mkdir -p "$cache/pip" "$cache/ccache"
podman --version >/dev/null || fail "podman does not run"
passed "$(podman --version), ulimits nofile=$nofile nproc=$nproc"

# --- base ------------------------------------------------------------------------------------------
begin base
if [ "${DT_IMAGE_NEW_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
  run_logged "$work/base.log" 900 mmdebstrap --variant=minbase --format=tar bookworm "$work/base.tar"
  run_logged "$work/import.log" 300 podman import "$work/base.tar" "$base"
  rm -f "$work/base.tar"
  passed "made $base with mmdebstrap"
else
  passed "reused $base (DT_IMAGE_NEW_BASE=1 makes it again)"
fi

# --- build -----------------------------------------------------------------------------------------
# Every source change leaves the previous build's layers (most of a GB) untagged. Removes the
# untagged images without children that descend from our base image, until none is left: ours
# only, where `podman image prune` would also take other people's untagged images.
prune_ours() {
  local base_id id p removed=1
  base_id=$(podman image inspect -f '{{.Id}}' "$base") || return 0
  while ((removed)); do
    removed=0
    local -A parent=() tags=() child=()
    while IFS='|' read -r id p n; do
      parent[$id]=$p tags[$id]=$n
      [ -z "$p" ] || child[$p]=1
    done < <(podman images -a -q --no-trunc | sort -u | xargs -r podman image inspect -f '{{.Id}}|{{.Parent}}|{{len .RepoTags}}')
    for id in "${!parent[@]}"; do
      if [ "${tags[$id]}" != 0 ] || [ -n "${child[$id]:-}" ]; then continue; fi
      p=${parent[$id]}
      while [ -n "$p" ] && [ "$p" != "$base_id" ]; do p=${parent[$p]:-}; done
      [ "$p" = "$base_id" ] || continue
      podman rmi "$id" >/dev/null 2>&1 && removed=1
    done
    unset parent tags child
  done
}
begin build
# This machine's trust store, for pip's downloads in the build: where a proxy inspects TLS, its CA
# is there and not in the base image. A mount, so it stays out of the image.
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
ca_mount=()
[ ! -f "$ca" ] || ca_mount=(-v "$ca:/cache/ca-certificates.crt:ro")
build_start=$SECONDS
run_logged "$work/build.log" 3600 nice -n 10 podman build --network host \
  -f "$dockerfile" --ignorefile "$ignorefile" --build-arg BASE="$base" \
  -v "$cache/pip:/cache/pip" -v "$cache/ccache:/cache/ccache" "${ca_mount[@]}" -t "$tag" "$here"
build_s=$((SECONDS - build_start))
prune_ours
size=$(podman image inspect -f '{{.Size}}' "$tag")
grep -E '^(variant.sh|Cacheable calls|  Hits|  Misses)' "$work/build.log" || true
passed "$tag built in $build_s s, $(awk -v b="$size" 'BEGIN { printf "%.2f GB", b / 1e9 }') ($size bytes)"

# Containers of this run: named $run_id-*, so that cleanup removes them even after a failure.
ctr() { echo "$run_id-$1"; }

# --- help ------------------------------------------------------------------------------------------
if wants help; then
  begin help
  run_logged "$work/help.log" 120 podman run --rm --name "$(ctr help)" "$tag" --help
  grep -q '^Usage:' "$work/help.log" || { show "$work/help.log"; fail "--help printed no 'Usage:'"; }
  passed
fi

# --- synthetic -------------------------------------------------------------------------------------
# One node, as docker/README.md says, with NP (no GPUs to count) and CPU ranks.
if wants synthetic; then
  begin synthetic
  run_logged "$work/synthetic.log" 600 podman run --rm --name "$(ctr synthetic)" \
    -e NP=2 -e OMP_NUM_THREADS=1 --entrypoint /opt/dist_train/launch/recipes/run_node.sh "$tag" \
    --device cpu --synthetic 256 --batch-size 16 --epochs 1 --max-steps 3 --threads 1 --eval-every 0
  for r in 0 1; do
    grep -q "\[rank $r\] on host" "$work/synthetic.log" || { show "$work/synthetic.log"; fail "rank $r did not start"; }
  done
  grep -q 'summary:' "$work/synthetic.log" || { show "$work/synthetic.log"; fail "no summary line"; }
  passed
fi

# --- real-data -------------------------------------------------------------------------------------
if wants real-data; then
  begin real-data
  mkdir -p "$work/out"
  run_logged "$work/real.log" 900 podman run --rm --name "$(ctr real)" \
    -v "$data:/data/cifar10:ro" -e CIFAR10_DIR=/data/cifar10 -v "$work/out:/out" \
    -e NP=2 -e OMP_NUM_THREADS=1 --entrypoint /opt/dist_train/launch/recipes/run_node.sh "$tag" \
    --device cpu --model resnet20 --batch-size 32 --epochs 1 --max-steps 3 --threads 1 \
    --eval-every 0 --log-dir /out/runs --checkpoint-dir /out/checkpoints
  # The real training set, not synthetic images: 50000 of them, from the mounted folder.
  grep -q 'data: 50000 train / 10000 test images from .*/data/cifar10' "$work/real.log" ||
    { show "$work/real.log"; fail "the run did not read the 50000 real images from /data/cifar10"; }
  ckpt=$work/out/checkpoints/last.pt
  [ -f "$ckpt" ] || { show "$work/real.log"; fail "no checkpoint at $ckpt (the mounted /out)"; }
  "$python" - "$ckpt" <<'EOF' || fail "torch.load on this machine could not read $ckpt"
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
model = ck["model"]
bad = [k for k, t in model.items() if t.is_floating_point() and not torch.isfinite(t).all()]
if not model or bad:
    sys.exit(f"checkpoint: {len(model)} tensors, not finite: {bad[:3]}")
print(f"torch.load: {len(model)} model tensors, all finite")
EOF
  passed
fi

# --- two-hosts -------------------------------------------------------------------------------------
# docker/README.md, "Several nodes", on one machine: podman's own network in place of
# --network host (two containers on one host would both claim port 2222), no --gpus.
if wants two-hosts; then
  begin two-hosts
  # 1. The key pair the containers share (README step 1).
  ssh_dir=$work/dt-ssh
  mkdir "$ssh_dir"
  ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/id_ed25519"
  cp "$ssh_dir/id_ed25519.pub" "$ssh_dir/authorized_keys"
  printf 'Host *\n  Port 2222\n  BatchMode yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n' >"$ssh_dir/config"
  chown -R root:root "$ssh_dir" && chmod 700 "$ssh_dir"
  mkdir -p "$work/shared"
  podman network create "$run_id-net" >/dev/null
  # 2. One container per "node", running sshd (README step 2).
  for node in node-a node-b; do
    run_logged "$work/start-$node.log" 120 podman run -d --name "$(ctr "$node")" --hostname "$node" \
      --network "$run_id-net" --network-alias "$node" --ipc host \
      -v "$ssh_dir:/root/.ssh:ro" -v "$work/shared:/out" \
      --entrypoint /usr/sbin/sshd "$tag" -D -p 2222
  done
  # node-a reaches node-b by name (podman's DNS answers for the alias), as nodes on a cluster
  # do; wait for node-b's sshd.
  for _ in $(seq 50); do
    podman exec "$run_id-node-a" ssh -o BatchMode=yes -o ConnectTimeout=2 node-b true >/dev/null 2>&1 && break
    sleep 0.2
  done
  printf 'node-a slots=2\nnode-b slots=2\n' >"$work/shared/hostfile"
  args=(--device cpu --precision fp64 --synthetic 240 --batch-size 8 --epochs 1 --max-steps 4
        --threads 1 --eval-every 0 --seed 5 --log-every 1)
  # 3. mpirun in the first container, over both (README step 3, 2 ranks per node).
  run_logged "$work/two.log" 600 podman exec "$run_id-node-a" \
    mpirun --hostfile /out/hostfile --map-by ppr:2:node --bind-to none \
      --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0 \
      -x NCCL_SOCKET_IFNAME=eth0 -x OMP_NUM_THREADS=1 \
      /opt/dist_train/build/launch/dist_train "${args[@]}" \
        --log-dir /out/two --checkpoint-dir /out/two
  for r in 0 1 2 3; do
    line="[rank $r] on host node-$( ((r < 2)) && echo a || echo b): local rank $((r % 2)) of 2"
    grep -qF "$line" "$work/two.log" || { show "$work/two.log"; fail "no '$line' in the log"; }
  done
  # The same 4 ranks in one container (README "One node").
  run_logged "$work/one.log" 600 podman run --rm --name "$(ctr one)" -v "$work/shared:/out" \
    -e NP=4 -e MPIRUN_ARGS=--oversubscribe -e OMP_NUM_THREADS=1 \
    --entrypoint /opt/dist_train/launch/recipes/run_node.sh "$tag" "${args[@]}" \
    --log-dir /out/one --checkpoint-dir /out/one
  "$python" "$here/launch/scripts/check_run.py" same-weights 1e-9 \
    "$work/shared/one/last.pt" "$work/shared/two/last.pt" || fail "the two-container run's weights differ from one container's"
  passed
fi

echo "image_check: all $n_steps steps passed in $((SECONDS - start)) s ($tag)"
