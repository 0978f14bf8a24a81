#!/usr/bin/env bash
# launch/recipes/run_cluster.sh over 2 emulated hosts x 2 ranks (fp64) ends with the same weights
# as 4 ranks on one host (launch/recipes/run_node.sh), to 1e-9 relative, and each rank logs its
# host and a local rank counted on that host (0 and 1 on each), not across hosts.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
need_python
args=(--device cpu --precision fp64 --synthetic 240 --batch-size 8 --epochs 1 --max-steps 4
      --threads 1 --eval-every 0 --seed 5 --log-every 1)

check "2 hosts x 2 ranks through run_cluster.sh"
MPI_IFNAME=dtsim0 run_cluster_2x2 "${args[@]}" --checkpoint-dir "$work/cluster" \
  --log-dir "$work/cluster" >"$work/cluster.log" 2>&1 || { cat "$work/cluster.log"; fail "the cluster run failed"; }
for r in 0 1 2 3; do
  line="[rank $r] on host $sim_prefix-h$((r / 2 + 1)): local rank $((r % 2)) of 2"
  grep -qF "$line" "$work/cluster.log" || { cat "$work/cluster.log"; fail "no '$line' in the log"; }
done

check "4 ranks on one host through run_node.sh"
NP=4 MPIRUN_ARGS=--oversubscribe DIST_TRAIN=$bin "$repo/launch/recipes/run_node.sh" "${args[@]}" \
  --checkpoint-dir "$work/one" --log-dir "$work/one" >"$work/one.log" 2>&1 ||
  { cat "$work/one.log"; fail "the one-host run failed"; }

check "the same final weights"
"$python" "$(dirname "${BASH_SOURCE[0]}")/compare_checkpoints.py" "$work/cluster/last.pt" \
  "$work/one/last.pt" --rtol 1e-9 || fail "the two runs' weights differ"
echo "PASSED: $name"
