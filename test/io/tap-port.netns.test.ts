// TapPort against the kernel, inside a namespace this file creates (IPv6 off, so nothing but
// our traffic crosses the TAP):
//
//   ns <prefix>-tap:   [ TapPort ]==fd==( ftap0 10.244.1.1/24 )   neighbour 10.244.1.2 -> 02:00:00:00:01:02
//                      a Python packet socket on ftap0 sees what the port writes; a Python UDP socket
//                      sends to 10.244.1.2 and the kernel transmits the frames to the port.
import { release } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch } from '../../src/buf/batch.js';
import { getMac, getMtu, isLinkUp, setLinkUp, setMac } from '../../src/io/link.js';
import { withNetns } from '../../src/io/netns.js';
import { TapPort } from '../../src/io/tap-port.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { UdpView } from '../../src/wire/udp.js';
import { VirtioGso, VirtioNetFlag, VirtioNetHdrView } from '../../src/wire/virtio-net-hdr.js';
import { python, readFrames, sniff } from '../support/capture.js';
import { listOf, TEST_ETHERTYPE, testFrame, testPayload } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();
const NEIGH_MAC = '02:00:00:00:01:02';
const LOCAL_IP = '10.244.1.1', PEER_IP = '10.244.1.2', UDP_DST = 9999;

/** Python: send `count` datagrams of testPayload(i, len) from the namespace to PEER_IP. */
function sendDatagrams(netns: Netns, ns: string, count: number, len: number, gsoSize = 0): void {
  python(netns, ns, `
import socket
def payload(seq, n):
    b = bytearray(n)
    if n >= 4: b[0:4] = seq.to_bytes(4, 'big')
    for i in range(4, n): b[i] = (seq * 13 + i * 5) & 0xff
    return bytes(b)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${LOCAL_IP}', 40000))
if ${gsoSize} > 0:
    s.setsockopt(socket.SOL_UDP, 103, ${gsoSize})  # UDP_SEGMENT
    s.sendto(b''.join(payload(i, ${len}) for i in range(${count})), ('${PEER_IP}', ${UDP_DST}))
else:
    for i in range(${count}):
        s.sendto(payload(i, ${len}), ('${PEER_IP}', ${UDP_DST}))
`);
}

const isOurUdp = (f: Buffer): boolean => f.length >= 42 && f.readUInt16BE(12) === 0x0800 && f[23] === 17 && f.readUInt16BE(36) === UDP_DST;

describe.skipIf(skip !== null)(`TapPort in a namespace${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('tp');
  let ns = '';

  beforeAll(() => {
    ns = netns.add('tap');
    netns.noIpv6(ns);
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  /** Opens ftap0 in the namespace with an address and a static neighbour. */
  function openTap(opts: Parameters<typeof TapPort.open>[1] = {}): TapPort {
    const port = withNetns(ns, () => TapPort.open('ftap0', opts));
    netns.ip(ns, 'addr', 'add', `${LOCAL_IP}/24`, 'dev', 'ftap0');
    netns.ip(ns, 'neigh', 'replace', PEER_IP, 'lladdr', NEIGH_MAC, 'dev', 'ftap0', 'nud', 'permanent');
    return port;
  }

  it('creates the device inside the namespace (not in ours), up, with the MTU asked for', () => {
    const port = withNetns(ns, () => TapPort.open('ftap%d', { mtu: 1450 }));
    try {
      expect(port.name).toBe('ftap0');
      expect(netns.ip(ns, '-o', 'link', 'show', 'ftap0')).toContain('mtu 1450');
      expect(() => getMtu('ftap0')).toThrow(expect.objectContaining({ code: 'ENODEV' })); // not in the root namespace
      expect(withNetns(ns, () => getMtu('ftap0'))).toBe(1450);
      expect(withNetns(ns, () => isLinkUp('ftap0'))).toBe(true);
      withNetns(ns, () => setMac('ftap0', '02:aa:bb:cc:dd:ee'));
      expect(withNetns(ns, () => getMac('ftap0'))).toBe(0x02aabbccddee);
      expect(netns.ip(ns, '-o', 'link', 'show', 'ftap0')).toContain('02:aa:bb:cc:dd:ee');
      withNetns(ns, () => setLinkUp('ftap0', false));
      expect(withNetns(ns, () => isLinkUp('ftap0'))).toBe(false);
    } finally {
      port.close();
    }
    // Not persistent: the device goes away with the port.
    expect(netns.ip(ns, '-o', 'link')).not.toContain('ftap0');
  });

  it('frames written to the port come out of the kernel side, byte for byte and in order', async () => {
    const port = openTap();
    try {
      const frames = Array.from({ length: 64 }, (_, i) => testFrame(i, 60 + ((i * 97) % 1400)));
      const cap = await sniff(netns, ns, 'ftap0', 64, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(frames, { headroom: 50 }))).toBe(64);
      expect(await cap.frames).toEqual(frames);
      expect(port.stats).toMatchObject({ txPackets: 64, txBatches: 1, txErrors: 0, txDropped: 0, txBytes: frames.reduce((s, f) => s + f.length, 0) });
    } finally {
      port.close();
    }
  });

  it('frames the kernel sends to the TAP are read by the port, with intact headers and payloads', async () => {
    const port = openTap();
    try {
      const tapMac = withNetns(ns, () => getMac('ftap0'));
      const batch = new Batch(16, 2048);
      const got = readFrames(port, batch, 50, 64, isOurUdp);
      sendDatagrams(netns, ns, 64, 200);
      const frames = await got;
      expect(frames).toHaveLength(64);
      const ip = new Ipv4View(), udp = new UdpView();
      frames.forEach((f, i) => {
        expect(f.readUIntBE(0, 6)).toBe(0x020000000102);
        expect(f.readUIntBE(6, 6)).toBe(tapMac);
        ip.reset(f, 14, f.length);
        expect(ip.validate()).toBe(0);
        expect(ip.src >>> 0).toBe(parseIpv4(LOCAL_IP));
        expect(ip.dst >>> 0).toBe(parseIpv4(PEER_IP));
        udp.reset(f, 34, f.length);
        expect(udp.dstPort).toBe(UDP_DST);
        expect(udp.verifyChecksum(ip.src >>> 0, ip.dst >>> 0)).toBe(true); // no offload: complete checksums
        expect(f.subarray(42)).toEqual(testPayload(i, 200));
      });
      expect(port.stats.rxPackets).toBeGreaterThanOrEqual(64);
      expect(port.stats.rxBatches).toBeGreaterThanOrEqual(1);
    } finally {
      port.close();
    }
  });

  // Capacity 4: the frame lands in slot 0, read() with one byte to spare; capacity 1: the last
  // slot of a batch, read with an overflow iovec. Both paths must see the cut.
  for (const capacity of [4, 1]) {
    it(`cuts a frame longer than the slot and flags it TRUNCATED, keeping its first bytes (batch of ${capacity})`, async () => {
      const port = openTap();
      try {
        const batch = new Batch(capacity, 256); // 256 - 56 = 200 bytes of room for 14 + 20 + 8 + 1000
        const keep = (f: Buffer): boolean => f.readUInt16BE(12) === 0x0800 && f[23] === 17;
        const got = readFrames(port, batch, 56, 2, keep);
        sendDatagrams(netns, ns, 1, 1000);
        sendDatagrams(netns, ns, 1, 158); // exactly fills the room: not truncated
        const [f, exact] = await got;
        expect(f).toBeDefined();
        expect(f!.length).toBe(200);
        expect(f!.subarray(42)).toEqual(testPayload(0, 1000).subarray(0, 200 - 42));
        expect(exact).toBeDefined();
        expect(exact!.length).toBe(200);
        // rxErrors counts TRUNCATED frames: the cut one, not the exact fit.
        expect(port.stats.rxErrors).toBe(1);
      } finally {
        port.close();
      }
    });
  }

  it('with IFF_VNET_HDR: offloads are probed, headers travel before each frame both ways', async () => {
    const port = openTap({ vnetHdr: true });
    try {
      expect(port.vnetHdrLen).toBe(10);
      expect(port.offload.csum).toBe(true); // every kernel since 2.6 takes TUN_F_CSUM
      // Write: an all-zero header (no offload) in front of each frame; the kernel strips it.
      const frames = Array.from({ length: 8 }, (_, i) => testFrame(i, 100 + i));
      const cap = await sniff(netns, ns, 'ftap0', 8, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(frames, { headroom: 50, hdr: Buffer.alloc(10) }))).toBe(8);
      expect(await cap.frames).toEqual(frames);

      // Read: with checksum offload the kernel leaves UDP checksums partial and says so.
      const batch = new Batch(8, 2048);
      const hdrs: Buffer[] = [];
      const got = readFrames(port, batch, 50, 1, (f) => {
        if (!isOurUdp(f)) return false;
        return true;
      });
      sendDatagrams(netns, ns, 1, 300);
      const [f] = await got;
      expect(f).toBeDefined();
      const start = batch.start(0);
      hdrs.push(Buffer.from(batch.arena.subarray(start - 10, start)));
      const h = new VirtioNetHdrView().reset(hdrs[0]!, 0, 10);
      expect(h.gsoType).toBe(VirtioGso.NONE);
      expect(h.flags & VirtioNetFlag.NEEDS_CSUM).toBe(VirtioNetFlag.NEEDS_CSUM);
      expect(h.csumStart).toBe(34);
      expect(h.csumOffset).toBe(6);
      expect(f!.subarray(42)).toEqual(testPayload(0, 300));
    } finally {
      port.close();
    }
  });

  it('with the 24-byte header of UDP-tunnel GSO: accepted where the kernel has it (Linux 6.17+), refused in the wrong combinations', () => {
    const [major = 0, minor = 0] = release().split('.').map(Number);
    const port = withNetns(ns, () => TapPort.open('ftnl0', { vnetHdr: 24, offload: { csum: true, tso4: true, tso6: false, uso: false, udpTunnel: true } }));
    try {
      expect(port.vnetHdrLen).toBe(24);
      expect([port.offload.csum, port.offload.tso4, port.offload.udpTunnel]).toEqual([true, true, major > 6 || (major === 6 && minor >= 17)]);
    } finally {
      port.close();
    }
    expect(() => withNetns(ns, () => TapPort.open('ftnl1', { vnetHdr: 12, offload: { csum: true, tso4: true, tso6: false, uso: false, udpTunnel: true } }))).toThrow(expect.objectContaining({ code: 'ERR_IO_OFFLOAD_NEEDS_VNET_HDR' }));
    expect(() => withNetns(ns, () => TapPort.open('ftnl1', { vnetHdr: 16 as 12 }))).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_VNET_HDR' }));
  });

  it('with USO accepted, a UDP GSO send reaches the port as one super-frame (gso_type UDP_L4)', async (ctx) => {
    const port = openTap({ vnetHdr: true });
    try {
      if (!port.offload.uso) ctx.skip(); // Linux < 6.2: the kernel segments before the TAP
      const batch = new Batch(4, 65536 + 64);
      const got = readFrames(port, batch, 64, 1, isOurUdp);
      sendDatagrams(netns, ns, 4, 1000, 1000);
      const [f] = await got;
      expect(f).toBeDefined();
      expect(f!.length).toBe(14 + 20 + 8 + 4000);
      const start = batch.start(0);
      const h = new VirtioNetHdrView().reset(batch.arena, start - 10, start);
      expect(h.gsoType).toBe(VirtioGso.UDP_L4);
      expect(h.gsoSize).toBe(1000);
      expect(f!.subarray(42)).toEqual(Buffer.concat([0, 1, 2, 3].map((i) => testPayload(i, 1000))));
    } finally {
      port.close();
    }
  });
});
