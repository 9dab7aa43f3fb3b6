// Frames the kernel drops before flatnet reads them are counted per port (src/io/kernel-drops.ts,
// native/src/stats.cc), tested by flooding ports that do not read, in namespaces this file makes:
//
//   ns <prefix>-host: PacketPort on vh0 (veth) | UdpPort on 10.9.0.1:4789 (lo) | TapPort htap0
//   ns <prefix>-pod:  eth0 (veth peer): Python floods raw frames
//
// The accounting is exact where the kernel's is: frames read + frames dropped = frames sent.
// Interface counters are read over netlink in the caller's namespace (the daemon lives in its
// node's; a test enters the namespace for the call).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch } from '../../src/buf/batch.js';
import { kernelDrops } from '../../src/io/kernel-drops.js';
import { withNetns } from '../../src/io/netns.js';
import { PacketPort } from '../../src/io/packet-port.js';
import { TapPort } from '../../src/io/tap-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import type { Port } from '../../src/pipeline/port.js';
import { python } from '../support/capture.js';
import { TEST_ETHERTYPE, testFrame } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();

/** readAll drains what `port` holds now; returns the frame count. */
function readAll(port: Port): number {
  const b = new Batch(64, 2048, 0);
  let n = 0;
  for (;;) {
    const r = port.read(b, 0);
    if (r <= 0) return n;
    n += r;
  }
}

describe.skipIf(skip !== null)(`kernel drops per port${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('hk');
  let host = '', pod = '';

  beforeAll(() => {
    host = netns.add('host');
    pod = netns.add('pod');
    netns.noIpv6(host, pod);
    netns.veth(host, 'vh0', pod, 'eth0');
    netns.ip(host, 'link', 'set', 'vh0', 'up');
    netns.ip(pod, 'link', 'set', 'eth0', 'up');
    netns.ip(host, 'addr', 'add', '10.9.0.1/32', 'dev', 'lo');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('AF_PACKET: a queue that is not read drops, PACKET_STATISTICS counts it, read + dropped = sent', () => {
    const port = withNetns(host, () => PacketPort.open('vh0', { rcvbuf: 64 * 1024 }));
    try {
      expect(kernelDrops(port)).toEqual({ socket: 0, ifRxDropped: 0, ifTxDropped: 0, total: 0 });
      const N = 3000;
      const frame = testFrame(0, 200);
      expect(frame.readUInt16BE(12)).toBe(TEST_ETHERTYPE);
      python(netns, pod, `
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
f = bytes.fromhex('${frame.toString('hex')}')
for i in range(${N}):
    s.send(f)
`);
      const k = kernelDrops(port)!;
      expect(k.socket).toBeGreaterThan(0);
      const read = readAll(port);
      expect(read + kernelDrops(port)!.socket).toBe(N);
      expect(kernelDrops(port)!.total).toBe(k.socket); // cumulative, not reset by the kernel's read-and-clear
    } finally {
      port.close();
    }
  });

  it('UDP: a receive buffer that overflows is counted (SK_MEMINFO_DROPS), read + dropped = sent', () => {
    const port = withNetns(host, () => UdpPort.open({ address: '10.9.0.1', port: 4789, rcvbuf: 64 * 1024, gro: false }));
    try {
      const N = 3000;
      python(netns, host, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${N}):
    s.sendto(b'x' * 100, ('10.9.0.1', 4789))
`);
      const k = kernelDrops(port)!;
      expect(k.socket).toBeGreaterThan(0);
      expect(k.ifRxDropped).toBeNull();
      expect(readAll(port) + k.socket).toBe(N);
    } finally {
      port.close();
    }
  });

  it("TAP: frames for flatnet that do not fit the TAP's queue are the interface's tx_dropped", () => {
    const port = withNetns(host, () => TapPort.open('htap0', { up: true }));
    try {
      expect(withNetns(host, () => kernelDrops(port))).toEqual({ socket: 0, ifRxDropped: 0, ifTxDropped: 0, total: 0 }); // the baseline
      netns.ip(host, 'link', 'set', 'htap0', 'txqueuelen', '100');
      netns.ip(host, 'route', 'add', '10.9.1.0/24', 'dev', 'htap0');
      netns.ip(host, 'neigh', 'replace', '10.9.1.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'htap0', 'nud', 'permanent');
      const N = 2000;
      python(netns, host, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${N}):
    s.sendto(b'x' * 100, ('10.9.1.2', 9))
`);
      const k = withNetns(host, () => kernelDrops(port))!;
      expect(k.ifTxDropped).toBeGreaterThan(0);
      expect(k.total).toBe(k.socket + k.ifRxDropped! + k.ifTxDropped!);
      expect(readAll(port) + k.ifTxDropped!).toBe(N);
    } finally {
      port.close();
    }
  });
});
