#!/usr/bin/env bash
# CTest's fixture for the emulated-cluster tests: `hosts` and `slurm` start from nothing (down
# first, so a killed earlier run leaves nothing behind), `down` removes everything. Where the
# machine cannot emulate hosts or run Slurm it prints why and exits 0: the tests that need them
# skip with that reason themselves, and a failed setup would mark them "not run" instead.
set -uo pipefail
recipes=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../launch/recipes" && pwd)
case "${1:-}" in
  hosts) "$recipes/cluster_sim.sh" down >/dev/null 2>&1; "$recipes/cluster_sim.sh" up ;;
  slurm) "$recipes/slurm_sim.sh" up ;;
  down) "$recipes/cluster_sim.sh" down; exit ;;
  *) echo "fixture: usage: fixture.sh hosts|slurm|down" >&2; exit 2 ;;
esac
rc=$?
((rc == 77)) && exit 0
exit $rc
