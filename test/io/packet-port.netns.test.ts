// PacketPort on the host end of a veth, inside namespaces this file creates (IPv6 off):
//
//   ns <prefix>-host: [ PacketPort ]==AF_PACKET==( vh0 )
//                                                   |  veth
//   ns <prefix>-pod:                              ( eth0 10.244.1.2/24 )  Python: raw frames,
//                                                                         UDP, a packet-socket sniffer
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch, Meta, MetaFlag } from '../../src/buf/batch.js';
import { getMac } from '../../src/io/link.js';
import { withNetns } from '../../src/io/netns.js';
import { PacketPort, type PacketPortOptions } from '../../src/io/packet-port.js';
import { formatMac } from '../../src/wire/addr.js';
import { VirtioGso, VirtioNetHdrView } from '../../src/wire/virtio-net-hdr.js';
import { podSendFrames, python, readFrames, sniff } from '../support/capture.js';
import { isTest, listOf, metaOf, TEST_ETHERTYPE, testFrame, testPayload } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();

describe.skipIf(skip !== null)(`PacketPort on a veth${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('pp');
  let host = '', pod = '', hostMac = 0;

  beforeAll(() => {
    host = netns.add('host');
    pod = netns.add('pod');
    netns.noIpv6(host, pod);
    netns.veth(host, 'vh0', pod, 'eth0');
    netns.ip(host, 'link', 'set', 'vh0', 'up');
    netns.addr(pod, 'eth0', '10.244.1.2/24');
    hostMac = withNetns(host, () => getMac('vh0'));
    netns.ip(pod, 'neigh', 'replace', '10.244.1.1', 'lladdr', formatMac(hostMac), 'dev', 'eth0', 'nud', 'permanent');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  const open = (opts: PacketPortOptions = {}): PacketPort => withNetns(host, () => PacketPort.open('vh0', opts));

  it('opens by name or index, with its features reported', () => {
    const a = open();
    try {
      expect(a.ifindex).toBeGreaterThan(0);
      expect(a.features.ignoreOutgoing).toBe('sockopt'); // Linux 4.20+
      expect(a.features.qdiscBypass).toBe(true);
      expect(a.features.rcvbuf).toBeGreaterThanOrEqual(8 << 20); // SO_RCVBUFFORCE as root
      const b = withNetns(host, () => PacketPort.open(a.ifindex));
      expect(b.name).toBe('vh0');
      b.close();
    } finally {
      a.close();
    }
  });

  it('frames written to the port reach the pod, byte for byte and in order', async () => {
    const port = open();
    try {
      const frames = Array.from({ length: 64 }, (_, i) => testFrame(i, 60 + ((i * 89) % 1440)));
      const cap = await sniff(netns, pod, 'eth0', 64, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(frames, { headroom: 50 }))).toBe(64);
      expect(await cap.frames).toEqual(frames);
      expect(port.stats).toMatchObject({ txPackets: 64, txErrors: 0, txDropped: 0 });
    } finally {
      port.close();
    }
  });

  for (const mode of ['sockopt', 'bpf'] as const) {
    it(`frames the pod sends are read in order, never our own transmissions (outgoing filter: ${mode})`, async () => {
      const port = open({ forceBpfOutgoingFilter: mode === 'bpf' });
      try {
        expect(port.features.ignoreOutgoing).toBe(mode);
        // Our own frames go out first: they must not come back on read.
        expect(port.write(listOf(Array.from({ length: 16 }, (_, i) => testFrame(1000 + i, 100))))).toBe(16);
        const frames = Array.from({ length: 64 }, (_, i) => testFrame(i, 60 + ((i * 53) % 1000), 0x020000000001, 0x020000000002, 7));
        const batch = new Batch(32, 2048);
        const got = readFrames(port, batch, 50, 64, isTest);
        podSendFrames(netns, pod, frames);
        expect(await got).toEqual(frames);
      } finally {
        port.close();
      }
    });
  }

  it('puts back a VLAN tag that the kernel took off before the packet socket', async () => {
    const port = open();
    try {
      const inner = testFrame(5, 120);
      const tagged = Buffer.concat([inner.subarray(0, 12), Buffer.from([0x81, 0x00, 0x20, 0x64]), inner.subarray(12)]); // PCP 1, VID 100
      const got = readFrames(port, new Batch(4, 2048), 50, 1, (f) => f.readUInt16BE(12) === 0x8100);
      podSendFrames(netns, pod, [tagged]);
      expect(await got).toEqual([tagged]);
    } finally {
      port.close();
    }
  });

  it('cuts a frame longer than the slot and flags it TRUNCATED', async () => {
    const port = open();
    try {
      const big = testFrame(9, 1000);
      const batch = new Batch(2, 256); // 200 bytes of room after 56 of headroom
      const got = readFrames(port, batch, 56, 1, isTest);
      podSendFrames(netns, pod, [big]);
      const [f] = await got;
      expect(f).toEqual(big.subarray(0, 200));
      expect(metaOf(batch, 0, Meta.FLAGS) & MetaFlag.TRUNCATED).toBe(MetaFlag.TRUNCATED);
    } finally {
      port.close();
    }
  });

  it('with PACKET_VNET_HDR: a pod UDP GSO send arrives as one super-frame; written frames carry a header', async () => {
    const port = open({ vnetHdr: true });
    try {
      expect(port.vnetHdrLen).toBe(10);
      const batch = new Batch(4, 65536 + 64);
      const isUdp = (f: Buffer): boolean => f.readUInt16BE(12) === 0x0800 && f[23] === 17 && f.readUInt16BE(36) === 9999;
      const got = readFrames(port, batch, 64, 1, isUdp);
      python(netns, pod, `
import socket
def payload(seq, n):
    b = bytearray(n)
    b[0:4] = seq.to_bytes(4, 'big')
    for i in range(4, n): b[i] = (seq * 13 + i * 5) & 0xff
    return bytes(b)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, 1200)  # UDP_SEGMENT
s.sendto(b''.join(payload(i, 1200) for i in range(5)), ('10.244.1.1', 9999))
`);
      const [f] = await got;
      expect(f).toBeDefined();
      expect(f!.length).toBe(14 + 20 + 8 + 6000);
      const start = batch.start(0);
      const h = new VirtioNetHdrView().reset(batch.arena, start - 10, start);
      expect(h.gsoType).toBe(VirtioGso.UDP_L4);
      expect(h.gsoSize).toBe(1200);
      expect(f!.subarray(42)).toEqual(Buffer.concat([0, 1, 2, 3, 4].map((i) => testPayload(i, 1200))));

      const frames = [testFrame(1, 90), testFrame(2, 900)];
      const cap = await sniff(netns, pod, 'eth0', 2, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(frames, { headroom: 64, hdr: Buffer.alloc(10) }))).toBe(2);
      expect(await cap.frames).toEqual(frames);
    } finally {
      port.close();
    }
  });
});
