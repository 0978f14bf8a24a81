#!/usr/bin/env bash
# CIFAR10_DIR and NCCL_* reach the ranks on the second host (run_cluster.sh forwards them; the
# agent, like ssh, gives remote commands a fresh environment), so dist_train's data fingerprint
# check passes across hosts; and a different copy of the data at the same path on one host is
# refused with one line naming a rank of that host.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
need_python

check "the variables on every rank (a probe in place of dist_train)"
cat >"$work/probe.sh" <<'PROBE'
#!/bin/sh
echo "probe rank=$OMPI_COMM_WORLD_RANK host=$(hostname) data=$CIFAR10_DIR nccl=$NCCL_SOCKET_IFNAME/$NCCL_DEBUG"
PROBE
chmod +x "$work/probe.sh"
on $h1 env CIFAR10_DIR="$work/data" NCCL_SOCKET_IFNAME=dtsim0 NCCL_DEBUG=WARN DIST_TRAIN="$work/probe.sh" \
  MPI_IFNAME=dtsim0 GPUS_PER_NODE=2 OMPI_MCA_plm_rsh_agent="$agent" \
  "$repo/launch/recipes/run_cluster.sh" "$(hostfile 2)" >"$work/probe.log" 2>&1 || { cat "$work/probe.log"; fail "the probe run failed"; }
for r in 0 1 2 3; do
  line="probe rank=$r host=$sim_prefix-h$((r / 2 + 1)) data=$work/data nccl=dtsim0/WARN"
  grep -qxF "$line" "$work/probe.log" || { cat "$work/probe.log"; fail "no '$line'"; }
done

# Small stand-ins for CIFAR-10 in the official layout (10,000 records of 1 + 3072 bytes per file):
# data/ and, on $h2 only, other/ mounted over it, whose test_batch.bin differs in one label.
"$python" - "$work" <<'PY'
import os, random, sys
work = sys.argv[1]
rng = random.Random(7)
for d in ("data", "other"):
    os.makedirs(os.path.join(work, d))
pixels = rng.randbytes(3072)
for f in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    records = bytearray()
    for i in range(10000):
        records += bytes([i % 10]) + pixels
    open(os.path.join(work, "data", f), "wb").write(records)
    if f == "test_batch.bin":
        records[0] = (records[0] + 1) % 10
    open(os.path.join(work, "other", f), "wb").write(records)
PY
args=(--device cpu --batch-size 8 --epochs 1 --max-steps 1 --threads 1 --eval-every 0
      --checkpoint-dir "$work/run" --log-dir "$work/run")

check "the same data on both hosts: the fingerprint check passes"
on $h1 env CIFAR10_DIR="$work/data" NCCL_DEBUG=WARN MPI_IFNAME=dtsim0 GPUS_PER_NODE=2 \
  OMPI_MCA_plm_rsh_agent="$agent" "$repo/launch/recipes/run_cluster.sh" "$(hostfile 2)" "${args[@]}" \
  >"$work/same.log" 2>&1 || { cat "$work/same.log"; fail "the run on the same data failed"; }
grep -q "fingerprint" "$work/same.log" || { cat "$work/same.log"; fail "no fingerprint in the log"; }

check "another copy at the same path on $h2: refused, naming its rank"
on $h2 mount --bind "$work/other" "$work/data"
# The 370 MB of stand-in data go at the end, pass or fail; the logs stay.
trap 'on $h2 umount "$work/data" 2>/dev/null || true; rm -rf "$work/data" "$work/other"' EXIT
rc=0
on $h1 env CIFAR10_DIR="$work/data" MPI_IFNAME=dtsim0 GPUS_PER_NODE=2 \
  OMPI_MCA_plm_rsh_agent="$agent" "$repo/launch/recipes/run_cluster.sh" "$(hostfile 2)" "${args[@]}" \
  >"$work/differ.log" 2>&1 || rc=$?
((rc == 2)) || { cat "$work/differ.log"; fail "exit code $rc, expected 2"; }
errors=$(grep -c "^dist_train: error:" "$work/differ.log" || true)
((errors == 1)) || { cat "$work/differ.log"; fail "$errors error lines, expected one"; }
grep "^dist_train: error:" "$work/differ.log" | grep -qE "rank (2|3) " ||
  { cat "$work/differ.log"; fail "the error does not name rank 2 or 3 (the ranks on $h2)"; }
grep "^dist_train: error:" "$work/differ.log"
echo "PASSED: $name"
