#!/usr/bin/env bash
# launch/scripts/image_check.sh can fail, and says where: each fault below is a broken copy of
# docker/Dockerfile, checked by image_check.sh, which must exit 1 naming the step that breaks.
#   package     an apt package name that does not exist         -> step build
#   entrypoint  ENTRYPOINT pointing at no binary                -> step help
#   ssh         the image's sshd refuses public keys            -> step two-hosts
# The faults after the build step add one layer on top of the cached ones (seconds, when
# image_check.sh built the same source just before: the ctest runs it first); the package fault
# re-runs apt-get up to the unknown name. Fault images are removed at the end.
# Usage: tests/docker/image_faults.sh [FAULT...]   (default: all three; as root)
# Environment: as image_check.sh (CIFAR10_DIR is not needed: no fault reaches real-data).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
check=$repo/launch/scripts/image_check.sh
dockerfile=$repo/docker/Dockerfile

all=(package entrypoint ssh)
faults=("$@")
((${#faults[@]})) || faults=("${all[@]}")
for f in "${faults[@]}"; do
  [[ " ${all[*]} " == *" $f "* ]] || { echo "image_faults: no fault '$f' (${all[*]})" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "image_faults: run as root (podman runs rootful here)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/image_faults.XXXXXX")
tags=()
cleanup() {
  local t
  # Only this script's images; their layers shared with the real image stay.
  for t in "${tags[@]}"; do podman rmi -f "$t" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

failed=0 passed=0
# expect FAULT STEP STEPS WHY: image_check.sh on $work/FAULT.Dockerfile runs STEPS and must fail
# at STEP, with WHY (a regular expression) in its output: failing for the fault, not another reason.
expect() {
  local fault=$1 want=$2 steps=$3 why=$4 rc=0 tag=localhost/dist_train:fault-$1
  tags+=("$tag")
  echo "== fault $fault: image_check.sh must fail at step $want"
  DT_IMAGE_DOCKERFILE=$work/$fault.Dockerfile DT_IMAGE_TAG=$tag DT_IMAGE_STEPS=$steps \
    "$check" >"$work/$fault.log" 2>&1 || rc=$?
  local said
  said=$(grep '^image_check: FAILED at step' "$work/$fault.log" | tail -1 || true)
  if ((rc == 1)) && [[ $said == "image_check: FAILED at step $want "* ]] &&
     grep -E -q "$why" "$work/$fault.log"; then
    echo "-- fault $fault: caught, exit 1: $said; the log says: $(grep -E -m1 -o "$why" "$work/$fault.log")"
    passed=$((passed + 1))
  else
    tail -n 30 "$work/$fault.log"
    echo "FAILED: fault $fault: wanted exit 1 and 'FAILED at step $want', got exit $rc and '${said:-no FAILED line}' (and /$why/ in the log?)" >&2
    failed=$((failed + 1))
  fi
}

# Each broken copy must really differ from the Dockerfile: a sed that matched nothing would
# test the good image and fail for the wrong reason, or pass for none.
broken() {  # broken FAULT: checks that $work/FAULT.Dockerfile differs from the Dockerfile
  if cmp -s "$dockerfile" "$work/$1.Dockerfile"; then
    echo "image_faults: the $1 fault changed nothing in $dockerfile (update this test)" >&2
    exit 1
  fi
}

for fault in "${faults[@]}"; do
  case $fault in
    package)
      sed 's/openssh-server ccache/openssh-server ccache dt-no-such-package/' "$dockerfile" >"$work/package.Dockerfile"
      broken package
      expect package build help "Unable to locate package dt-no-such-package"
      ;;
    entrypoint)
      { cat "$dockerfile"; echo 'ENTRYPOINT ["/opt/dist_train/build/launch/no_such_binary"]'; } >"$work/entrypoint.Dockerfile"
      broken entrypoint
      expect entrypoint help help "no_such_binary.*(no such file|not found)"
      ;;
    ssh)
      { cat "$dockerfile"
        echo "RUN sed -i 's/^#*PubkeyAuthentication .*/PubkeyAuthentication no/' /etc/ssh/sshd_config"; } >"$work/ssh.Dockerfile"
      broken ssh
      expect ssh two-hosts two-hosts "root@node-b: Permission denied"
      ;;
  esac
done
echo "image_faults: $passed passed, $failed failed"
((failed == 0))
