// OverlayPort (UDP socket receive + raw IPv4 send) between two namespaces this file creates:
//
//   ns <prefix>-a: va 198.51.100.1/24 ---- veth ---- vb 198.51.100.2/24 :ns <prefix>-b
//                  OverlayPort sends                  UdpPort on 4789 receives; a Python
//                  EncapTemplate-built packets         packet-socket sniffer sees the wire
//
// What a user relies on: the outer header on the wire is the one flatnet built (flow-hashed
// source port in the configured range, zero or valid UDP checksum, DF as configured), the
// receiving VXLAN socket gets the datagrams, and GSO trains still go through the UDP socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch, FrameList, Meta } from '../../src/buf/batch.js';
import { withNetns } from '../../src/io/netns.js';
import { OverlayPort } from '../../src/io/overlay-port.js';
import { RawIpPort } from '../../src/io/raw-ip-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { ETH_HEADER_LEN } from '../../src/wire/ethernet.js';
import { EncapTemplate, OUTER_IP_OFF, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { UdpView } from '../../src/wire/udp.js';
import { sleep, sniff } from '../support/capture.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';
import { ip, mac, udp } from '../support/pod-frames.js';

const skip = netnsSkipReason();
const A = '198.51.100.1', B = '198.51.100.2';

describe.skipIf(skip !== null)(`OverlayPort on a veth between two namespaces${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('fov');
  let nsA = '', nsB = '';
  beforeAll(() => {
    nsA = netns.add('a');
    nsB = netns.add('b');
    netns.noIpv6(nsA, nsB);
    netns.veth(nsA, 'va', nsB, 'vb');
    netns.addr(nsA, 'va', `${A}/24`);
    netns.addr(nsB, 'vb', `${B}/24`);
    // The sniffer must see real checksums, not the partial sums of TX offload.
    netns.exec(nsA, 'ethtool', ['-K', 'va', 'tx', 'off']);
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  /** n VXLAN-encapsulated frames of distinct inner flows in one arena, START at the outer IPv4 header. */
  function encapsulated(n: number, udpChecksum: boolean, extra = 0): { list: FrameList; tpl: EncapTemplate } {
    const tpl = new EncapTemplate({ srcMac: 0, dstMac: 0, srcIp: parseIpv4(A), dstIp: parseIpv4(B), vni: 77, udpChecksum, df: 'set' });
    const batch = new Batch(n, 2048);
    const list = new FrameList(n + extra);
    for (let i = 0; i < n; i++) {
      const inner = udp({ srcMac: mac('02:00:0a:f4:01:0a'), dstMac: mac('0e:00:0a:f4:02:00'), src: ip('10.244.1.10'), dst: ip('10.244.2.10'), sport: 30000 + i, payload: 40 + i });
      const s = batch.slotOff(i) + VXLAN_HEADROOM;
      inner.copy(batch.arena, s);
      const o = tpl.encap(batch.arena, s, s + inner.length);
      list.push(batch.arena, o + OUTER_IP_OFF, s + inner.length, parseIpv4(B), 4789);
    }
    return { list, tpl };
  }

  it.each([false, true])('sends our outer header byte for byte (UDP checksum %s) and the VXLAN socket receives it', async (csum) => {
    const rx = withNetns(nsB, () => UdpPort.open({ address: B, port: 4789 }));
    const tx = withNetns(nsA, () => new OverlayPort(UdpPort.open({ address: A, port: 4789 }), RawIpPort.open()));
    try {
      const n = 16;
      const { list } = encapsulated(n, csum);
      const cap = await sniff(netns, nsA, 'va', n, 0x0800, 'out');
      expect(tx.write(list)).toBe(n);
      const frames = await cap.frames;
      expect(frames).toHaveLength(n);
      const ports = new Set<number>();
      for (let i = 0; i < n; i++) {
        const f = frames[i]!;
        const sent = list.arena.subarray(list.start(i), list.end(i));
        // The kernel resolves the next hop and fills the IPv4 checksum (HDRINCL): the rest is ours.
        const ipv4 = new Ipv4View().reset(f, ETH_HEADER_LEN, f.length);
        expect(ipv4.verifyChecksum()).toBe(true);
        expect(Buffer.from(f.subarray(ETH_HEADER_LEN + 12))).toEqual(Buffer.from(sent.subarray(12)));
        expect(ipv4.df).toBe(true);
        const u = new UdpView().reset(f, ETH_HEADER_LEN + 20, f.length);
        expect(u.srcPort).toBeGreaterThanOrEqual(49152);
        expect(u.checksum === 0).toBe(!csum);
        expect(u.verifyChecksum(ipv4.src, ipv4.dst)).toBe(true);
        ports.add(u.srcPort);
      }
      expect(ports.size).toBeGreaterThan(8); // distinct inner flows spread over source ports
      const batch = new Batch(64, 2048);
      let got = 0;
      for (let t = 0; t < 200 && got < n; t++) {
        const r = rx.read(batch, 64);
        if (r > 0) {
          for (let i = 0; i < r; i++) expect(batch.meta[i * 8 + Meta.ADDR]! >>> 0).toBe(parseIpv4(A));
          got += r;
        } else await sleep(5);
      }
      expect(got).toBe(n);
      expect(tx.stats.txPackets).toBe(n);
    } finally {
      rx.close();
      tx.close();
    }
  });

  it('sends GSO trains through the UDP socket and ordinary frames through the raw socket, in order', async () => {
    const rx = withNetns(nsB, () => UdpPort.open({ address: B, port: 4789 }));
    const udpTx = withNetns(nsA, () => UdpPort.open({ address: A, port: 4789 }));
    const tx = withNetns(nsA, () => new OverlayPort(udpTx, RawIpPort.open()));
    try {
      const { list } = encapsulated(2, false, 1);
      // A third entry: two 100-byte datagrams as one UDP-GSO message (payload only, START at VXLAN).
      const train = Buffer.alloc(200, 0x5a);
      const arena = list.arena;
      const base = arena.length - 256;
      train.copy(arena, base);
      expect(list.push(arena, base, base + 200, parseIpv4(B), 4789, 100)).toBe(true);
      expect(tx.write(list)).toBe(3);
      const batch = new Batch(64, 2048);
      const sizes: number[] = [];
      for (let t = 0; t < 200 && sizes.length < 4; t++) {
        const r = rx.read(batch, 64);
        for (let i = 0; i < r; i++) sizes.push(batch.len(i));
        if (r <= 0) await sleep(5);
      }
      expect(sizes.slice(2)).toEqual([100, 100]);
      expect(udpTx.stats.txPackets).toBeGreaterThanOrEqual(1);
    } finally {
      rx.close();
      tx.close();
    }
  });
});
