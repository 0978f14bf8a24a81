#!/usr/bin/env bash
# MPI_IFNAME picks the network Open MPI uses between hosts: with dtsim0 the gradient traffic
# crosses the emulated network (its byte counter on $h2 grows by more than the gradients)
# and the decoy interface carries none of it; a name this host lacks stops run_cluster.sh with
# one line and exit code 2, before mpirun starts anything.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster

check "a wrong name: one line, exit code 2"
rc=0
MPI_IFNAME=nosuch0 run_cluster_2x2 --device cpu --synthetic 240 >"$work/wrong.log" 2>&1 || rc=$?
cat "$work/wrong.log"
((rc == 2)) || fail "exit code $rc, expected 2"
[ "$(wc -l <"$work/wrong.log")" -eq 1 ] || fail "more than one line"
grep -q "MPI_IFNAME: no network interface 'nosuch0' on $h1" "$work/wrong.log" ||
  fail "the line does not name the interface and the host"

check "dtsim0: the gradients cross it"
before=$(rx_bytes $h2 dtsim0) decoy_before=$(rx_bytes $h2 dtdecoy1)
MPI_IFNAME=dtsim0 run_cluster_2x2 --device cpu --synthetic 240 --batch-size 8 --epochs 1 \
  --max-steps 3 --threads 1 --eval-every 0 --model resnet14 --checkpoint-dir "$work/run" \
  --log-dir "$work/run" >"$work/run.log" 2>&1 || { cat "$work/run.log"; fail "the run failed"; }
grown=$(( $(rx_bytes $h2 dtsim0) - before )) decoy=$(( $(rx_bytes $h2 dtdecoy1) - decoy_before ))
# resnet14's ~0.17 M fp32 gradients are 0.7 MB; 3 steps of all-reduce move several times that.
echo "$h2 received $grown bytes on dtsim0, $decoy on the decoy"
((grown > 1000000)) || fail "only $grown bytes crossed dtsim0: Open MPI did not use it"
((decoy < 100000)) || fail "$decoy bytes went to the decoy interface"
echo "PASSED: $name"
