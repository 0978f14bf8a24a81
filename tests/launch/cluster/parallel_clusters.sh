#!/usr/bin/env bash
# Two emulated clusters on one machine, as two test runs at once make them: a second cluster of
# another DT_SIM_PREFIX comes up beside the fixture's, carries its own traffic, and goes down
# without touching the first; a prefix that cannot name an interface is one line, exit 2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cluster
other=p$$
other=${other:0:10}
[ "$other" != "$sim_prefix" ] || other=q${other:1}
cleanup() { DT_SIM_PREFIX=$other "$sim" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

check "a second cluster, prefix $other, beside $sim_prefix"
DT_SIM_PREFIX=$other "$sim" up >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "the second cluster did not come up"; }
"$sim" status >/dev/null || fail "the first cluster broke when the second came up"
for ns in "$other-sw" "$other-h1" "$other-h2" "$sim_prefix-sw" "$sim_prefix-h1" "$sim_prefix-h2"; do
  ip netns list | grep -qw "^$ns" || fail "no namespace $ns"
done
[ "$(DT_SIM_PREFIX=$other "$sim" exec "$other-h1" hostname)" = "$other-h1" ] || fail "$other-h1 has another hostname"

check "the same addresses, two networks: 10.213.7.2 is $other-h2 from $other-h1, not from $h1"
# A server on $other-h2 that answers with its host's name; the fixture's $h2 has none.
serve='import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.213.7.2", 5999)); s.listen(4); s.settimeout(20)
for _ in range(2):
    c, _ = s.accept(); c.sendall(socket.gethostname().encode()); c.close()'
ask='import socket, sys
try:
    print(socket.create_connection(("10.213.7.2", 5999), timeout=3).recv(64).decode())
except OSError as e:
    print("no answer:", e.strerror)'
DT_SIM_PREFIX=$other "$sim" exec "$other-h2" python3 -c "$serve" &
server=$!
for _ in $(seq 50); do
  answer=$(DT_SIM_PREFIX=$other "$sim" exec "$other-h1" python3 -c "$ask")
  [ "$answer" = "$other-h2" ] && break
  sleep 0.1
done
[ "$answer" = "$other-h2" ] || fail "$other-h1 asked 10.213.7.2 and got: $answer"
answer=$(on "$h1" python3 -c "$ask")
case "$answer" in "no answer:"*) ;; *) fail "$h1 reached the other cluster's server: $answer" ;; esac
echo "from $other-h1: $other-h2; from $h1: $answer"
kill "$server" 2>/dev/null || true

check "down of $other leaves $sim_prefix up"
DT_SIM_PREFIX=$other "$sim" down >/dev/null
! ip netns list | grep -q "^$other-" || fail "namespaces of $other left behind: $(ip netns list | grep "^$other-" | tr '\n' ' ')"
[ ! -e "/run/dist_train_cluster_sim/$other" ] || fail "the state folder of $other is left behind"
"$sim" status >/dev/null || fail "down of $other broke $sim_prefix"

check "a prefix too long for an interface name: one line, exit 2"
rc=0
DT_SIM_PREFIX=waytoolongprefix "$sim" up >"$work/bad.log" 2>&1 || rc=$?
((rc == 2)) && [ "$(wc -l <"$work/bad.log")" = 1 ] && grep -q "DT_SIM_PREFIX 'waytoolongprefix'" "$work/bad.log" ||
  { cat "$work/bad.log"; fail "rc $rc"; }
ip netns list | grep -q "^waytoolongprefix" && fail "a namespace was made anyway"
echo "PASSED: $name"
