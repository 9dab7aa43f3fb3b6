// XdpOverlayPort between two namespaces on one veth (the underlay), IPv6 off:
//
//   ns <prefix>-a: [ XdpOverlayPort: AF_XDP + UDP 198.51.100.1:4789 + raw ]==( ua 198.51.100.1/24 )
//                                                                               |  veth
//   ns <prefix>-b: scapy / a UDP socket / a packet-socket sniffer            ( ub 198.51.100.2/24 )
//
// Receive: VXLAN from the peer arrives through the AF_XDP socket as the UDP socket would give it
// (START at the VXLAN header, ADDR the source), outer checksums checked as the kernel does (a
// veth sender's unfinished CHECKSUM_PARTIAL form accepted, a wrong one dropped and counted);
// a source that is not a peer stays with the kernel and comes through the UDP socket.
// Transmit: the first frame to a peer goes through the raw socket (the kernel resolves the
// neighbour), the next ones through the AF_XDP socket with the kernel's neighbour as the outer
// destination MAC, byte for byte.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch, Meta, META_STRIDE } from '../../src/buf/batch.js';
import { getMac } from '../../src/io/link.js';
import { withNetns } from '../../src/io/netns.js';
import { OverlayPort } from '../../src/io/overlay-port.js';
import { RawIpPort } from '../../src/io/raw-ip-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import { XdpOverlayPort } from '../../src/io/xdp-overlay-port.js';
import { formatMac, parseIpv4 } from '../../src/wire/addr.js';
import { python, sleep, sniff } from '../support/capture.js';
import { listOf } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';
import { scapy } from '../support/lab.js';

const skip = netnsSkipReason();
const A = '198.51.100.1', B = '198.51.100.2';

/** A VXLAN payload (I flag, VNI 1) around an inner frame marked with `seq`. */
function vxlanPayload(seq: number): Buffer {
  const b = Buffer.alloc(8 + 60);
  b[0] = 0x08;
  b[6] = 1;
  b.writeUIntBE(0x0e00_0af4_0100, 8, 6);
  b.writeUIntBE(0x0e00_0af4_0200, 14, 6);
  b.writeUInt16BE(0x88b5, 20);
  b.writeUInt32BE(seq, 22);
  return b;
}

function ipv4Sum(h: Buffer): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += h.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A whole outer IPv4/UDP/VXLAN packet from A to B (what the switch hands the overlay port). */
function outerPacket(seq: number): Buffer {
  const vx = vxlanPayload(seq);
  const ip = Buffer.alloc(20 + 8 + vx.length);
  ip[0] = 0x45;
  ip.writeUInt16BE(ip.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  ip.writeUInt32BE(parseIpv4(A), 12);
  ip.writeUInt32BE(parseIpv4(B), 16);
  ip.writeUInt16BE(ipv4Sum(ip.subarray(0, 20)), 10);
  ip.writeUInt16BE(40000 + seq, 20);
  ip.writeUInt16BE(4789, 22);
  ip.writeUInt16BE(8 + vx.length, 24);
  vx.copy(ip, 28);
  return ip;
}

describe.skipIf(skip !== null)(`XdpOverlayPort on a veth underlay${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('xo');
  let a = '', b = '', macA = '', macB = '';
  let port: XdpOverlayPort;

  beforeAll(() => {
    a = netns.add('a');
    b = netns.add('b');
    netns.noIpv6(a, b);
    netns.veth(a, 'ua', b, 'ub');
    netns.addr(a, 'ua', `${A}/24`);
    netns.addr(b, 'ub', `${B}/24`);
    macA = formatMac(withNetns(a, () => getMac('ua')));
    macB = formatMac(withNetns(b, () => getMac('ub')));
    port = withNetns(a, () => {
      const udp = UdpPort.open({ address: A, port: 4789 });
      const kernel = new OverlayPort(udp, RawIpPort.open('raw'), 'vxlan:4789');
      return XdpOverlayPort.open('ua', parseIpv4(A), 4789, kernel);
    });
    expect(port.setPeers([parseIpv4(B)])).toBe(0);
  });
  afterAll(() => {
    port?.close();
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  /** Reads until `want` frames came; returns [seq, addr, fromXsk] per frame. */
  function collect(want: number, timeoutMs = 5000): Promise<[number, string, number][]> {
    const batch = new Batch(32, 2048);
    const out: [number, string, number][] = [];
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); port.onReadable(null); resolve(out); };
      const t = setTimeout(done, timeoutMs);
      port.onReadable(() => {
        for (let n = port.read(batch, 64); n > 0; n = port.read(batch, 64)) {
          for (let i = 0; i < n; i++) {
            const m = batch.meta, o = i * META_STRIDE;
            const s = m[o + Meta.START]!;
            const addr = m[o + Meta.ADDR]! >>> 0;
            out.push([batch.arena.readUInt32BE(s + 22), `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`, batch.arena[s]!]);
          }
        }
        if (out.length >= want) done();
      });
    });
  }

  it('receives a peer\'s VXLAN through the socket as UDP payloads; checks outer checksums; leaves other sources to the kernel', async () => {
    const before = { xsk: port.xsk.stats.rxPackets, invalid: port.xdpRxInvalid, partial: port.xdpRxPartialCsum };
    const got = collect(3);
    // 1: the peer's UDP socket (veth TX checksum offload: an unfinished outer checksum);
    // 2: a correct checksum; 3: a wrong checksum; 4: a bad IPv4 header checksum; 5: not a peer.
    scapy(b, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((${JSON.stringify(B)}, 40001))
s.sendto(bytes.fromhex(${JSON.stringify(vxlanPayload(1).toString('hex'))}), (${JSON.stringify(A)}, 4789))
e = Ether(src=${JSON.stringify(macB)}, dst=${JSON.stringify(macA)})
good = e/IP(src=${JSON.stringify(B)}, dst=${JSON.stringify(A)})/UDP(sport=40002, dport=4789)/Raw(bytes.fromhex(${JSON.stringify(vxlanPayload(2).toString('hex'))}))
badudp = e/IP(src=${JSON.stringify(B)}, dst=${JSON.stringify(A)})/UDP(sport=40003, dport=4789, chksum=0x1234)/Raw(bytes.fromhex(${JSON.stringify(vxlanPayload(3).toString('hex'))}))
badip = e/IP(src=${JSON.stringify(B)}, dst=${JSON.stringify(A)}, chksum=0x4321)/UDP(sport=40004, dport=4789, chksum=0)/Raw(bytes.fromhex(${JSON.stringify(vxlanPayload(4).toString('hex'))}))
other = e/IP(src='198.51.100.7', dst=${JSON.stringify(A)})/UDP(sport=40005, dport=4789, chksum=0)/Raw(bytes.fromhex(${JSON.stringify(vxlanPayload(5).toString('hex'))}))
sendp([good, badudp, badip, other], iface='ub', verbose=False)
`);
    const frames = await got;
    // 1 and 2 through the AF_XDP socket; 5 through the kernel's UDP socket (rp_filter is off in a new namespace).
    expect(frames.map(([seq, addr, first]) => [seq, addr, first]).sort()).toEqual([[1, B, 0x08], [2, B, 0x08], [5, '198.51.100.7', 0x08]]);
    expect(port.xsk.stats.rxPackets - before.xsk).toBe(4);
    expect(port.xdpRxInvalid - before.invalid).toBe(2);
    expect(port.xdpRxPartialCsum - before.partial).toBe(1);
  });

  it('sends the first frame to a peer through the kernel, then through the AF_XDP socket with the neighbour\'s MAC', async () => {
    withNetns(a, () => netns.ip(a, 'neigh', 'flush', 'dev', 'ua'));
    const cap = await sniff(netns, b, 'ub', 3, 0x0800, 'in');
    const pkts = [outerPacket(1), outerPacket(2), outerPacket(3)];
    const first = listOf([pkts[0]!], { headroom: 64, addr: [parseIpv4(B)] });
    expect(port.write(first)).toBe(1);
    expect(port.nextHops.stats.viaKernel).toBeGreaterThanOrEqual(1);
    // the lookup runs off the frame path; the kernel's ARP for the raw socket's frame resolves it
    for (let i = 0; i < 100 && port.nextHops.size === 0; i++) await sleep(20);
    expect(port.nextHops.size).toBe(1);
    const xskBefore = port.xsk.stats.txPackets;
    expect(port.write(listOf(pkts.slice(1), { headroom: 64, addr: [parseIpv4(B), parseIpv4(B)] }))).toBe(2);
    expect(port.xsk.stats.txPackets - xskBefore).toBe(2);
    const seen = (await cap.frames).filter((f) => f[23] === 17);
    // The raw socket's frame: the kernel fills the IPv4 ID and checksum we left zero.
    expect(seen.map((f) => f.subarray(14 + 20))).toEqual(pkts.map((p) => p.subarray(20)));
    // Through the AF_XDP socket: exactly what we built.
    expect(seen.slice(1).map((f) => f.subarray(14))).toEqual(pkts.slice(1));
    for (const f of seen.slice(1)) {
      expect(formatMac(f.readUIntBE(0, 6))).toBe(macB);
      expect(formatMac(f.readUIntBE(6, 6))).toBe(macA);
    }
  });

  it('forgets a next hop when the kernel\'s neighbour changes (netlink monitor)', async () => {
    const inv = port.nextHops.stats.invalidations;
    netns.ip(a, 'neigh', 'replace', B, 'lladdr', '02:00:00:00:00:99', 'dev', 'ua', 'nud', 'permanent');
    for (let i = 0; i < 100 && port.nextHops.stats.invalidations === inv; i++) await sleep(20);
    expect(port.nextHops.stats.invalidations).toBeGreaterThan(inv);
    const cap = await sniff(netns, b, 'ub', 1, 0x0800, 'in');
    port.write(listOf([outerPacket(9)], { headroom: 64, addr: [parseIpv4(B)] })); // the lookup, through the kernel
    for (let i = 0; i < 100 && port.nextHops.size === 0; i++) await sleep(20);
    port.write(listOf([outerPacket(10)], { headroom: 64, addr: [parseIpv4(B)] }));
    const f = (await cap.frames)[0]!;
    expect(formatMac(f.readUIntBE(0, 6))).toBe('02:00:00:00:00:99');
  });
});
