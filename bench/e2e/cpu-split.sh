#!/bin/bash
# Where the daemons' CPU goes at a 64-byte UDP rate: user space (JS and the addon) against the
# kernel (system time, which includes the softirq work the kernel runs in the daemon's context).
#
#   bench/e2e/cpu-split.sh [RATE_PPS=150000] [SECONDS=5] [IO=af_xdp]
#
# Builds a lab of two flatnet nodes with one pod each (`flatnet lab up`, io from IO; everything
# in the lab's own namespaces), sends 64-byte frames (22-byte UDP payloads, as the e2e bench)
# from n1's pod to n2's with bench/e2e/gen.c, and prints each daemon's user and system seconds
# over the run (from /proc/PID/stat), per frame sent, and the generator's own. Removes the lab on
# exit, also on failure. Root only; run under the bench lock (flock /work/.bench.lock ...).
set -euo pipefail
RATE=${1:-150000}
SECS=${2:-5}
IO=${3:-af_xdp}
cd "$(dirname "$0")/../.."
NAME="cs$$"
GEN=$(mktemp -d)/gen
FLATNET="node dist/src/cli/main.js"
sink=""
cleanup() {
  [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null
  $FLATNET lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$(dirname "$GEN")"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$GEN" bench/e2e/gen.c
FLATNET_IO="$IO" $FLATNET lab up --name "$NAME" --nodes 2 --kernel-nodes 0 --pods 1 --etcd 0 >/dev/null
pids=$(python3 -c "import json; d=json.load(open('/run/flatnet/lab-$NAME/lab.json')); print(' '.join(f'{k}:{v[\"pid\"]}' for k, v in d['daemons'].items()))")
ip netns exec "fl-$NAME-n2p0" "$GEN" sink 9000 >/dev/null 2>&1 &
sink=$!
sleep 0.3
declare -A u0 s0
for e in $pids; do p=${e#*:}; read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat"); u0[$p]=$u; s0[$p]=$s; done
out=$(ip netns exec "fl-$NAME-n1p0" "$GEN" send 10.244.2.10 9000 "$RATE" "$SECS" 22)
sent=$(echo "$out" | python3 -c "import json,sys; print(json.load(sys.stdin)['sent'])")
hz=$(getconf CLK_TCK)
echo "io $IO, $RATE pps offered for $SECS s: $sent frames sent; generator: $out"
for e in $pids; do
  n=${e%%:*}; p=${e#*:}
  read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
  du=$((u - u0[$p])); ds=$((s - s0[$p]))
  python3 -c "print(f'$n: user {$du/$hz:.2f} s, system {$ds/$hz:.2f} s; per frame sent: user {$du/$hz/$sent*1e6:.2f} us, system {$ds/$hz/$sent*1e6:.2f} us')"
done
