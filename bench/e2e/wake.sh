#!/usr/bin/env bash
# bench/e2e/wake.sh: what one wake-up of a sleeping user-space process costs on this machine
# (a calibration for the RTT figures of the e2e bench; not part of `npm run bench:e2e`).
#
#   bash bench/e2e/wake.sh [COUNT]       # root; ~15 s
#
# Two namespaces joined by one veth (fl-wkNNNN-a / -b, 198.51.100.1 <-> 198.51.100.2, removed at the
# end, also on failure). In b, a UDP echo server; in a, a client that sends 32 bytes, waits for
# the echo and sleeps INTERVAL before the next, COUNT times, for INTERVAL 0 (back to back), 2 ms
# (the e2e bench's ping interval) and 20 ms. Servers: Python's blocking recvfrom/sendto (the
# floor for any user-space process that sleeps in the kernel) and Node's dgram (an event loop
# woken by epoll, as the flatnet daemon is). The difference between the rows is what one
# user-space crossing adds to a round trip once the process has gone to sleep; a kernel VXLAN
# node never sleeps on the path (it runs in the sender's system call).
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-500}
PY=/usr/bin/python3
P=fl-wk$(( $$ % 10000 ))
TMP=$(mktemp -d /tmp/flatnet-wake-XXXXXX)
cleanup() {
  for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
  ip netns del "$P-a" 2>/dev/null || true
  ip netns del "$P-b" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$P-a"
ip netns add "$P-b"
ip link add va netns "$P-a" type veth peer name vb netns "$P-b"
ip -n "$P-a" addr add 198.51.100.1/24 dev va
ip -n "$P-b" addr add 198.51.100.2/24 dev vb
ip -n "$P-a" link set va up
ip -n "$P-b" link set vb up

cat >"$TMP/echo.py" <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('198.51.100.2', 7777))
while True:
    m, a = s.recvfrom(2048)
    s.sendto(m, a)
EOF
cat >"$TMP/echo.mjs" <<'EOF'
import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(7777, '198.51.100.2');
EOF
cat >"$TMP/client.py" <<'EOF'
import socket, sys, time
interval, count = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.connect(('198.51.100.2', 7777))
for _ in range(50):  # warm-up
    s.send(b'w' * 32); s.recv(2048)
rtt = []
for _ in range(count):
    t = time.perf_counter_ns()
    s.send(b'x' * 32)
    s.recv(2048)
    rtt.append((time.perf_counter_ns() - t) / 1000)
    if interval:
        time.sleep(interval)
rtt.sort()
print(f"{rtt[len(rtt) // 2]:.0f}/{rtt[len(rtt) * 9 // 10]:.0f}", end='')
EOF

echo "UDP echo round trip over one veth, p50/p90 in us ($COUNT echoes per cell)"
printf '%-28s %14s %14s %14s\n' server 'back to back' 'every 2 ms' 'every 20 ms'
for server in python node; do
  if [[ $server == python ]]; then ip netns exec "$P-b" $PY "$TMP/echo.py" & else ip netns exec "$P-b" node "$TMP/echo.mjs" & fi
  pid=$!
  sleep 0.5
  printf '%-28s' "$([[ $server == python ]] && echo 'python (blocking recvfrom)' || echo 'node (dgram, event loop)')"
  for iv in 0 0.002 0.02; do printf ' %14s' "$(ip netns exec "$P-a" $PY "$TMP/client.py" $iv "$COUNT")"; done
  echo
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
