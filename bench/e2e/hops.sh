#!/usr/bin/env bash
# bench/e2e/hops.sh: where a ping's round trip goes, hop by hop (not part of `npm run bench:e2e`).
#
#   bash bench/e2e/hops.sh [COUNT]       # root; after .ci/setup; ~30 s
#
# Builds two 2-node labs one after the other (flatnet, then kernel VXLAN; 1 pod each, namespaces
# fl-e2hNNNNf-* / fl-e2hNNNNk-*), pings pod 10.244.2.10 from pod 10.244.1.10 COUNT times every
# 2 ms (with the bench's pinger, bench/e2e/gen.c, which sleeps between probes), and captures with nanosecond timestamps at four points: the source pod's eth0, the
# underlay bridge ports of both nodes (u1, u2: the VXLAN packets), the destination pod's eth0.
# (Pod eth0, not the veth host ends: flatnet writes to pods with PACKET_QDISC_BYPASS, which taps
# on the host end do not see.) Prints the median and p90 of each hop, matched by ICMP sequence
# number. Every lab is removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-1000}
FLATNET="node dist/src/cli/main.js"
ID=$(( $$ % 10000 ))
TMP=$(mktemp -d /tmp/flatnet-hops-XXXXXX)
gcc -O2 -o "$TMP/gen" bench/e2e/gen.c
LABS=()
cleanup() {
  for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
  for l in "${LABS[@]}"; do $FLATNET lab down --name "$l" >/dev/null 2>&1 || true; done
  [[ -n ${KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT

measure() { # NAME KERNEL_NODES LABEL
  local name=$1 kn=$2 label=$3 p=fl-$1 d=$TMP/$1
  mkdir -p "$d"
  LABS+=("$name")
  $FLATNET lab up --name "$name" --nodes 2 --kernel-nodes "$kn" --pods 1 >/dev/null
  ip netns exec "$p-n1p0" ping -n -q -c 5 -i 0.05 10.244.2.10 >/dev/null
  local pids=()
  ip netns exec "$p-n1p0" tcpdump -i eth0 -n -s 128 -w "$d/a.pcap" --time-stamp-precision=nano icmp 2>/dev/null & pids+=($!)
  ip netns exec "$p-ul" tcpdump -i u1 -n -s 128 -w "$d/u1.pcap" --time-stamp-precision=nano udp 2>/dev/null & pids+=($!)
  ip netns exec "$p-ul" tcpdump -i u2 -n -s 128 -w "$d/u2.pcap" --time-stamp-precision=nano udp 2>/dev/null & pids+=($!)
  ip netns exec "$p-n2p0" tcpdump -i eth0 -n -s 128 -w "$d/b.pcap" --time-stamp-precision=nano icmp 2>/dev/null & pids+=($!)
  sleep 1.5
  local rtt
  rtt=$(ip netns exec "$p-n1p0" "$TMP/gen" icmp 10.244.2.10 "$COUNT" 2000 | python3 -c '
import json, sys
j = json.load(sys.stdin); v = sorted(j["rttNs"])
print("%d/%d replies, p50 %.1f us" % (j["received"], j["sent"], v[len(v) // 2] / 1000))')
  sleep 2  # tcpdump hands packets over in blocks retired after up to 1 s
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  $FLATNET lab down --name "$name" >/dev/null
  for f in a u1 u2 b; do
    tshark -r "$d/$f.pcap" -T fields -e frame.time_epoch -e icmp.type -e icmp.seq -E separator=, 2>/dev/null > "$d/$f.csv"
  done
  echo "== $label (the pinger: $rtt)"
  python3 - "$d" <<'PY'
import sys
d = sys.argv[1]
def load(f):
    m = {}
    for line in open(f"{d}/{f}.csv"):
        p = line.strip().split(',')
        if len(p) < 3 or p[1] == '' or p[2] == '':
            continue
        m.setdefault((p[1], p[2]), float(p[0]))  # (ICMP type, seq) -> first time seen
    return m
a, u1, u2, b = (load(x) for x in ('a', 'u1', 'u2', 'b'))
names = ['node 1 in: pod 1 eth0 -> underlay u1', 'underlay: u1 -> u2', 'node 2 out: u2 -> pod 2 eth0',
         'pod 2 answers: eth0 in -> eth0 out', 'node 2 in: pod 2 eth0 -> u2', 'underlay: u2 -> u1',
         'node 1 out: u1 -> pod 1 eth0', 'round trip at pod 1 eth0']
hops = [[] for _ in names]
for (t, s) in a:
    if t != '8':
        continue
    q, r = ('8', s), ('0', s)
    try:
        v = [a[q], u1[q], u2[q], b[q], b[r], u2[r], u1[r], a[r]]
    except KeyError:
        continue
    for i in range(7):
        hops[i].append((v[i + 1] - v[i]) * 1e6)
    hops[7].append((v[7] - v[0]) * 1e6)
for n, x in zip(names, hops):
    x.sort()
    if x:
        print(f"  {n:40s} p50 {x[len(x) // 2]:7.1f} us   p90 {x[int(len(x) * 0.9)]:7.1f} us   ({len(x)} matched)")
PY
}

measure "e2h${ID}f" 0 "flatnet (2 flatnet nodes)"
measure "e2h${ID}k" 2 "kernel VXLAN (2 kernel nodes)"
