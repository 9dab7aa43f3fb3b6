// UdpPort (the overlay socket) between two namespaces this file creates (IPv6 off):
//
//   ns <prefix>-a: va 198.51.100.1/24 ---- veth ---- vb 198.51.100.2/24, 198.51.100.3/24 :ns <prefix>-b
//                  sender UdpPort                    receiver UdpPorts; a Python packet-socket
//                                                    sniffer and a Python UDP sender
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch, FrameList, Meta, META_STRIDE, MetaFlag } from '../../src/buf/batch.js';
import { withNetns } from '../../src/io/netns.js';
import { UdpPort, type UdpPortOptions } from '../../src/io/udp-port.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { python, sleep, sniff } from '../support/capture.js';
import { metaOf, testPayload } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();
const A = '198.51.100.1', B2 = '198.51.100.2', B3 = '198.51.100.3';

interface Datagram { data: Buffer; addr: number; port: number; gso: number; flags: number }

/** Reads `port` until `want` datagrams arrived or `timeoutMs` passed (polling read(), no readiness). */
async function receive(port: UdpPort, batch: Batch, headroom: number, want: number, timeoutMs = 5000): Promise<Datagram[]> {
  const out: Datagram[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < want && Date.now() < deadline) {
    const n = port.read(batch, headroom);
    if (n < 0) throw new Error(`read: ${n}`);
    for (let i = 0; i < n; i++) {
      out.push({
        data: Buffer.from(batch.arena.subarray(batch.start(i), batch.end(i))),
        addr: metaOf(batch, i, Meta.ADDR) >>> 0,
        port: metaOf(batch, i, Meta.PORT),
        gso: metaOf(batch, i, Meta.GSO_SIZE),
        flags: metaOf(batch, i, Meta.FLAGS),
      });
    }
    if (n === 0) await sleep(5);
  }
  return out;
}

/** splitGro turns reads into datagrams: a read with GSO_SIZE g holds datagrams of g bytes (the last may be shorter). */
function splitGro(ds: readonly Datagram[]): Buffer[] {
  const out: Buffer[] = [];
  for (const d of ds) {
    if (d.gso === 0) out.push(d.data);
    else for (let o = 0; o < d.data.length; o += d.gso) out.push(d.data.subarray(o, Math.min(o + d.gso, d.data.length)));
  }
  return out;
}

/** A FrameList over one arena: frame i = payloads[i] to dst[i], with gso[i]. */
function udpList(payloads: readonly Buffer[], dst: readonly (readonly [string, number])[], gso: readonly number[] = []): FrameList {
  const total = payloads.reduce((s, p) => s + p.length + 64, 0);
  const arena = Buffer.alloc(total);
  const list = new FrameList(payloads.length);
  let off = 0;
  payloads.forEach((p, i) => {
    off += 50; // headroom, as the switch leaves it
    p.copy(arena, off);
    const [ip, port] = dst[i % dst.length]!;
    list.push(arena, off, off + p.length, parseIpv4(ip), port, gso[i] ?? 0);
    off += p.length + 14;
  });
  return list;
}

describe.skipIf(skip !== null)(`UdpPort between namespaces${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('up');
  let a = '', b = '';
  const ports: UdpPort[] = [];
  const inA = (o: UdpPortOptions): UdpPort => { const p = withNetns(a, () => UdpPort.open(o)); ports.push(p); return p; };
  const inB = (o: UdpPortOptions): UdpPort => { const p = withNetns(b, () => UdpPort.open(o)); ports.push(p); return p; };

  beforeAll(() => {
    a = netns.add('a');
    b = netns.add('b');
    netns.noIpv6(a, b);
    netns.veth(a, 'va', b, 'vb');
    netns.addr(a, 'va', `${A}/24`);
    netns.addr(b, 'vb', `${B2}/24`);
    netns.ip(b, 'addr', 'add', `${B3}/24`, 'dev', 'vb');
  });
  afterAll(() => {
    for (const p of ports) p.close();
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('a batch of 64 datagrams arrives intact, each at its own destination, with the sender as source', async () => {
    const tx = inA({ address: A });
    const dsts = [[B2, 4789], [B2, 4790], [B3, 4789], [B3, 8472]] as const;
    const rx = dsts.map(([ip, port]) => inB({ address: ip, port }));
    const payloads = Array.from({ length: 64 }, (_, i) => testPayload(i, 1 + ((i * 211) % 1400)));
    const wire = await sniff(netns, b, 'vb', 64, 0x0800, 'in');
    expect(tx.write(udpList(payloads, dsts))).toBe(64);
    expect(tx.stats).toMatchObject({ txPackets: 64, txBatches: 1, txErrors: 0, txDropped: 0 });
    const batch = new Batch(64, 2048);
    for (let r = 0; r < 4; r++) {
      const got = await receive(rx[r]!, batch, 50, 16);
      expect(got.map((d) => d.data)).toEqual(payloads.filter((_, i) => i % 4 === r));
      for (const d of got) expect([d.addr, d.port, d.gso, d.flags]).toEqual([parseIpv4(A), tx.localPort, 0, 0]);
    }
    // Independently, on the wire: 64 IPv4/UDP packets, destinations and payloads in order.
    const frames = await wire.frames;
    expect(frames.map((f) => [f.readUInt32BE(30), f.readUInt16BE(36), f.subarray(42, 42 + f.readUInt16BE(38) - 8).toString('hex')])).toEqual(
      payloads.map((p, i) => [parseIpv4(dsts[i % 4]![0]), dsts[i % 4]![1], p.toString('hex')]),
    );
  });

  it('receives what an independent sender sends, with its address and port', async () => {
    const rx = inB({ address: B2, port: 5000 });
    python(netns, a, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${A}', 40000))
for i in range(64):
    b = bytearray(100 + i)
    b[0:4] = i.to_bytes(4, 'big')
    for j in range(4, len(b)): b[j] = (i * 13 + j * 5) & 0xff
    s.sendto(bytes(b), ('${B2}', 5000))
`);
    const got = await receive(rx, new Batch(16, 2048), 50, 64);
    expect(got.map((d) => d.data)).toEqual(Array.from({ length: 64 }, (_, i) => testPayload(i, 100 + i)));
    for (const d of got) expect([d.addr, d.port, d.gso]).toEqual([parseIpv4(A), 40000, 0]);
    expect(rx.stats.rxPackets).toBe(64);
  });

  it("reports each datagram's outer TOS byte (IP_RECVTOS), ECN bits included", async () => {
    const rx = inB({ address: B2, port: 5010 });
    python(netns, a, `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for tos in (0x00, 0x01, 0x02, 0x03, 0xb8, 0xbb):
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    s.sendto(bytes([tos]) * 20, ('${B2}', 5010))
`);
    const batch = new Batch(16, 2048);
    const got: number[] = [];
    const deadline = Date.now() + 5000;
    while (got.length < 6 && Date.now() < deadline) {
      const n = rx.read(batch, 50);
      for (let i = 0; i < n; i++) {
        const tos = batch.meta[i * META_STRIDE + Meta.TOS]!;
        expect(batch.arena[batch.meta[i * META_STRIDE + Meta.START]!]).toBe(tos); // the datagram names the TOS it was sent with
        got.push(tos);
      }
      if (n <= 0) await sleep(20);
    }
    expect(got).toEqual([0x00, 0x01, 0x02, 0x03, 0xb8, 0xbb]);
  });

  it('skips and counts a datagram the kernel refuses, and sends the rest', async () => {
    const tx = inA({ address: A });
    const rx = inB({ address: B2, port: 5001 });
    const ok1 = testPayload(1, 50), bad = testPayload(2, 50), tooBig = testPayload(3, 2000), ok2 = testPayload(4, 50);
    const list = udpList([ok1, bad, tooBig, ok2], [[B2, 5001], [B2, 0], [B2, 5001], [B2, 5001]]);
    expect(tx.write(list)).toBe(2); // port 0: EINVAL; 2000 bytes with DF on a 1500 MTU: EMSGSIZE
    expect(tx.stats.txErrors).toBe(2);
    expect(tx.stats.txPackets).toBe(2);
    // Which ones: the refused frames are flagged, so the switch can charge them to their peer.
    expect([0, 1, 2, 3].map((i) => (list.meta[i * META_STRIDE + Meta.FLAGS]! & MetaFlag.TX_FAILED) !== 0)).toEqual([false, true, true, false]);
    const got = await receive(rx, new Batch(8, 4096), 0, 2);
    expect(got.map((d) => d.data)).toEqual([ok1, ok2]);
  });

  it('cuts a datagram longer than the slot and flags it TRUNCATED', async () => {
    const tx = inA({ address: A });
    const rx = inB({ address: B2, port: 5002 });
    const big = testPayload(7, 300);
    expect(tx.write(udpList([big], [[B2, 5002]]))).toBe(1);
    const [d] = await receive(rx, new Batch(2, 128), 28, 1); // 100 bytes of room
    expect(d!.data).toEqual(big.subarray(0, 100));
    expect(d!.flags & MetaFlag.TRUNCATED).toBe(MetaFlag.TRUNCATED);
    expect(rx.stats.rxErrors).toBe(1);
  });

  it('GSO send delivers the same datagrams as single sends (and as the split fallback)', async (ctx) => {
    if (!UdpPort.probe().gso) ctx.skip();
    const rx = inB({ address: B2, port: 5003 });
    const seg = 100;
    const parts = Array.from({ length: 11 }, (_, i) => testPayload(i, i === 10 ? 37 : seg)); // last shorter
    const single = testPayload(99, 80);
    const wire = await sniff(netns, b, 'vb', 26, 0x0800, 'in');
    for (const gso of [true, false]) {
      const tx = inA({ address: A, gso });
      expect(tx.features.gso).toBe(gso);
      expect(tx.write(udpList([Buffer.concat(parts), single], [[B2, 5003]], [seg, 0]))).toBe(2);
      const got = await receive(rx, new Batch(32, 2048), 0, 12);
      expect(got.map((d) => d.data)).toEqual([...parts, single]);
      for (const d of got) expect(d.port).toBe(tx.localPort);
    }
    // Singles, for reference: the same 12 datagrams one message each.
    const ref = inA({ address: A, gso: false });
    expect(ref.write(udpList([...parts, single], [[B2, 5003]]))).toBe(12);
    const got = await receive(rx, new Batch(32, 2048), 0, 12);
    expect(got.map((d) => d.data)).toEqual([...parts, single]);
    // On the veth, the GSO run is one super-packet (veth passes GSO skbs whole; the receiving
    // socket segments it), the split run and the singles are 12 packets each: GSO was used.
    const frames = await wire.frames;
    const payloadOf = (f: Buffer): string => f.subarray(42, 42 + f.readUInt16BE(38) - 8).toString('hex');
    const expected = [...parts, single].map((p) => p.toString('hex'));
    expect(frames.map(payloadOf)).toEqual([Buffer.concat(parts).toString('hex'), single.toString('hex'), ...expected, ...expected]);
  });

  it('a train in pieces (headers here, payloads there) arrives as the same datagrams, with GSO and split, and bad ones are refused', async (ctx) => {
    if (!UdpPort.probe().gso) ctx.skip();
    const rx = inB({ address: B2, port: 5005 });
    // 7 datagrams: a 30-byte header each (its index in every byte), payloads of 90 bytes (the last 41).
    const hl = 30, seg = 90, n = 7, payLen = 6 * seg + 41;
    const arena = Buffer.alloc(4096, 0xee);
    const hdrAt = 100, payAt = 2000;
    for (let k = 0; k < n; k++) arena.fill(k, hdrAt + k * hl, hdrAt + (k + 1) * hl);
    for (let i = 0; i < payLen; i++) arena[payAt + i] = (i * 7 + 3) & 0xff;
    const want = Array.from({ length: n }, (_, k) => Buffer.concat([arena.subarray(hdrAt + k * hl, hdrAt + (k + 1) * hl), arena.subarray(payAt + k * seg, payAt + Math.min((k + 1) * seg, payLen))]));
    for (const gso of [true, false]) {
      const tx = inA({ address: A, gso });
      const list = new FrameList(4, arena);
      list.pushTrain(arena, hdrAt, hl, n, parseIpv4(B2), 5005, hl + seg, payAt, payLen);
      expect(tx.write(list)).toBe(1);
      expect(tx.stats).toMatchObject({ txPackets: 1, txBytes: n * hl + payLen, txErrors: 0 });
      const got = await receive(rx, new Batch(32, 2048), 0, n);
      expect(got.map((d) => d.data)).toEqual(want);
      // Bad trains: a header block that is not n whole headers, payload bytes that n datagrams do
      // not carry, a payload outside the arena: refused (EINVAL, counted), the good one still sent.
      const bad = new FrameList(8, arena);
      bad.pushTrain(arena, hdrAt, hl, n, parseIpv4(B2), 5005, hl + seg, payAt, payLen);
      bad.meta[1] = bad.meta[1]! - 1; // END: not n whole headers
      bad.pushTrain(arena, hdrAt, hl, n, parseIpv4(B2), 5005, hl + seg, payAt, n * seg + 1);
      bad.pushTrain(arena, hdrAt, hl, n, parseIpv4(B2), 5005, hl + seg, arena.length - 10, payLen);
      bad.pushTrain(arena, 0, 1, 3000, parseIpv4(B2), 5005, 2, 0, 3000); // more pieces than a send can gather
      bad.pushTrain(arena, hdrAt, hl, n, parseIpv4(B2), 5005, hl + seg, payAt, payLen);
      expect(tx.write(bad)).toBe(1);
      expect(tx.stats.txErrors).toBe(4);
      expect((await receive(rx, new Batch(32, 2048), 0, n)).map((d) => d.data)).toEqual(want);
    }
  });

  it('GRO receive coalesces a GSO send; split by GSO_SIZE it is the same bytes', async (ctx) => {
    const probe = UdpPort.probe();
    if (!probe.gso || !probe.gro) ctx.skip();
    const rx = inB({ address: B2, port: 5004, gro: true });
    expect(rx.features.gro).toBe(true);
    const tx = inA({ address: A });
    const parts = Array.from({ length: 20 }, (_, i) => testPayload(i, 1000));
    const batch = new Batch(4, 65536 + 64);
    expect(() => rx.read(new Batch(1, 2048), 0)).toThrow(expect.objectContaining({ code: 'ERR_IO_SLOT_TOO_SMALL' }));
    expect(tx.write(udpList([Buffer.concat(parts)], [[B2, 5004]], [1000]))).toBe(1);
    const got = await receive(rx, batch, 64, 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.gso).toBe(1000); // one read, 20 datagrams
    expect(got[0]!.data.length).toBe(20_000);
    expect(splitGro(got)).toEqual(parts);
    // Single sends to the GRO socket come out the same once split.
    const tx2 = inA({ address: A, gso: false });
    expect(tx2.write(udpList(parts, [[B2, 5004]]))).toBe(20);
    const got2: Datagram[] = [];
    while (splitGro(got2).length < 20) {
      const more = await receive(rx, batch, 64, 1, 2000);
      if (more.length === 0) break;
      got2.push(...more);
    }
    expect(splitGro(got2)).toEqual(parts);
  });
});
