/**
 * The connection table's batch pre-pass (ConnTable.prepass, native/src/conntrack.cc) against the
 * table's own code: the same batches through a table that counts every packet in JS and through
 * one whose pre-pass counts the established connections' packets first must leave the same
 * entries (counters, flags, states, expiries, LRU order) and the same statistics. And the one
 * rewrite it makes, a Service connection's packet translated to or from its backend, must write
 * the bytes the NAT stage would (natRewrite).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { META_STRIDE, Meta, MetaFlag } from '../../src/buf/batch.js';
import { ConnTable, CtProto, MARK_POLICY_EGRESS, MARK_POLICY_INGRESS, MARK_PREPASS_DNAT, MARK_PREPASS_REPLY, PREPASS_MISS, PREPASS_NAT, PREPASS_NODE, PREPASS_PASS_EGRESS, PREPASS_PASS_INGRESS, PrepassFraming, packPorts } from '../../src/conntrack/table.js';
import { TcpFlag } from '../../src/conntrack/tcp.js';
import { Errno } from '../../src/io/errno.js';
import { nativeUnavailableReason } from '../../src/io/native.js';
import { FrameLayout } from '../../src/mtu/layout.js';
import { MARK_NAT, natRewrite, natSums } from '../../src/service/nat.js';
import { icmpEcho, ip, mac, tcp, udp } from '../support/pod-frames.js';

const { SYN, ACK, FIN, RST, PSH } = TcpFlag;
const POD = ip('10.244.1.2'), PEER = ip('10.244.2.7'), OTHER = ip('10.244.3.9');
const MAC_A = mac('02:00:0a:f4:01:02'), MAC_B = mac('0e:00:0a:f4:01:00');

/** One packet of a test batch: its headers, and what is wrong with its frame, if anything. */
interface Pkt {
  readonly proto: number;
  readonly src: number;
  readonly dst: number;
  readonly sport: number;
  readonly dport: number;
  readonly flags: number;
  readonly payload: number;
  /** 'frag': a later fragment (no ports); 'vlan': 802.1Q-tagged; 'bad': IPv4 total length beyond the frame; 'trunc': cut by the port. */
  readonly kind: 'ok' | 'frag' | 'vlan' | 'bad' | 'trunc';
}

function frameOf(p: Pkt): Buffer {
  const l3 = { srcMac: MAC_A, dstMac: MAC_B, src: p.src, dst: p.dst };
  let b = p.proto === CtProto.TCP ? tcp({ ...l3, sport: p.sport, dport: p.dport, flags: p.flags, payload: p.payload })
    : p.proto === CtProto.UDP ? udp({ ...l3, sport: p.sport, dport: p.dport, payload: p.payload })
      : icmpEcho({ ...l3, id: p.sport, payload: p.payload });
  if (p.kind === 'frag') b.writeUInt16BE(0x0010, 14 + 6); // fragment offset 128 bytes
  if (p.kind === 'bad') b.writeUInt16BE(b.length, 14 + 2); // total length past the frame's end
  if (p.kind === 'vlan') b = Buffer.concat([b.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x05]), b.subarray(12)]);
  return b;
}

/** A batch as a port reads it: frames in one arena, a meta row each (START, END, FLAGS). */
function batchOf(frames: readonly Buffer[], truncated: readonly boolean[] = []): { arena: Buffer; meta: Int32Array } {
  const arena = Buffer.alloc(frames.reduce((s, f) => s + f.length + 64, 0));
  const meta = new Int32Array(frames.length * META_STRIDE);
  let at = 32;
  frames.forEach((f, i) => {
    f.copy(arena, at);
    meta[i * META_STRIDE + Meta.START] = at;
    meta[i * META_STRIDE + Meta.END] = at + f.length;
    if (truncated[i] === true) meta[i * META_STRIDE + Meta.FLAGS] = MetaFlag.TRUNCATED;
    at += f.length + 64;
  });
  return { arena, meta };
}

/** The key the stages look a packet up by (enforcer.ts tuple()): a later fragment has no ports and no flags. */
function key(p: Pkt): { ports: number; flags: number } {
  if (p.kind === 'frag') return { ports: 0, flags: 0 };
  if (p.proto === CtProto.ICMP) return { ports: packPorts(p.sport, 0), flags: 0 };
  return { ports: packPorts(p.sport, p.dport), flags: p.proto === CtProto.TCP ? p.flags & (SYN | ACK | FIN | RST) : 0 };
}

/**
 * track: what the stages do with a packet's connection (lookup, a closed one reopened, seen or
 * create); a new connection gets policy mark bits from its source port (none, either or both).
 */
function track(ct: ConnTable, p: Pkt, now: number): void {
  const { ports, flags } = key(p), len = frameOf({ ...p, kind: 'ok' }).length - 14;
  let n = ct.lookup(p.proto, p.src, p.dst, ports, now);
  if (n >= 0 && ct.reopens(n, flags)) { ct.remove(n); n = -1; }
  if (n >= 0) { ct.seen(n, flags, len, now); return; }
  const rports = p.proto === CtProto.ICMP ? ports : packPorts(ports & 0xffff, ports >>> 16);
  const r = ct.create(p.proto, p.src, p.dst, ports, p.dst, p.src, rports, flags, len, now);
  if (r >= 0) ct.setMark(r, (ports >>> 16) & (MARK_POLICY_EGRESS | MARK_POLICY_INGRESS));
}

/** The policy stages a taken packet of node `n` passes (enforcer.ts): a reply, or a connection that stage allowed. */
const passBits = (ct: ConnTable, n: number): number => {
  const m = (n & 1) === 1 ? MARK_POLICY_EGRESS | MARK_POLICY_INGRESS : ct.mark(n);
  return ((m & MARK_POLICY_EGRESS) !== 0 ? PREPASS_PASS_EGRESS : 0) | ((m & MARK_POLICY_INGRESS) !== 0 ? PREPASS_PASS_INGRESS : 0);
};

/**
 * run: one batch both ways. `js` counts every packet itself; `pre` runs the pre-pass and counts
 * the packets it left, taking each slot when it gets to its packet (as processBatch does).
 * Returns the pre-pass's result and, per packet, the node it took, PREPASS_MISS when the
 * stages would skip the lookup (ConnTable.missed, checked against the lookup), or -1.
 */
function run(js: ConnTable, pre: ConnTable, pkts: readonly Pkt[], now: number, podIp = 0): { r: number; slots: number[] } {
  const { arena, meta } = batchOf(pkts.map(frameOf), pkts.map((p) => p.kind === 'trunc'));
  const out = new Int32Array(pkts.length);
  const r = pre.prepass(arena, meta, pkts.length, now, PrepassFraming.POD, 0, podIp, 0, out);
  const slots: number[] = [];
  let k = 0;
  for (const p of pkts) {
    if (p.kind === 'trunc') continue;
    const slot = pre.wroteSlots ? out[k]! : -1;
    k++;
    const tracked = p.kind === 'ok' || p.kind === 'frag';
    if (tracked) track(js, p, now);
    // A miss holds when the stages get to the packet: the lookup they skip would find nothing.
    const missed = pre.missed(slot);
    if (missed) expect(pre.lookup(p.proto, p.src, p.dst, key(p).ports, now)).toBe(-1);
    const n = pre.take(slot);
    slots.push(missed ? PREPASS_MISS : n);
    // A taken packet's slot says which policy stages pass it, as the entry's mark says.
    if (n >= 0) expect(slot & (PREPASS_PASS_EGRESS | PREPASS_PASS_INGRESS)).toBe(passBits(pre, n));
    if (n < 0 && tracked) track(pre, p, now);
  }
  return { r, slots };
}

const same = (a: ConnTable, b: ConnTable, now: number): void => {
  expect(b.list(now)).toEqual(a.list(now));
  expect({ ...b.stats, prepassed: 0 }).toEqual({ ...a.stats, prepassed: 0 });
};

const pkt = (o: Partial<Pkt>): Pkt => ({ proto: CtProto.UDP, src: POD, dst: PEER, sport: 40000, dport: 5201, flags: 0, payload: 18, kind: 'ok', ...o });
const reply = (p: Pkt, o: Partial<Pkt> = {}): Pkt => ({ ...p, src: p.dst, dst: p.src, sport: p.dport, dport: p.sport, ...o });

describe.skipIf(nativeUnavailableReason() !== null)('ConnTable.prepass: the batch pre-pass counts as the table does', () => {
  const FLOWS: readonly Pkt[] = [
    pkt({}), pkt({ sport: 40001, dst: OTHER }), pkt({ proto: CtProto.TCP, sport: 40002, dport: 80 }),
    pkt({ proto: CtProto.TCP, sport: 40003, dport: 443, dst: OTHER }), pkt({ proto: CtProto.ICMP, sport: 7, dport: 0 }), pkt({ proto: CtProto.TCP, sport: 40004, dport: 22 }),
  ];
  const event = fc.record({
    flow: fc.integer({ min: 0, max: FLOWS.length - 1 }),
    reply: fc.boolean(),
    flags: fc.constantFrom(ACK, ACK, ACK, ACK, ACK, ACK | PSH, ACK | PSH, ACK | PSH, SYN, SYN | ACK, FIN | ACK, RST),
    payload: fc.integer({ min: 0, max: 40 }),
    kind: fc.oneof({ arbitrary: fc.constant<Pkt['kind']>('ok'), weight: 16 }, { arbitrary: fc.constantFrom<Pkt['kind']>('frag', 'vlan', 'bad', 'trunc'), weight: 1 }),
  });
  const batches = fc.array(fc.record({ advance: fc.constantFrom(0, 0, 1, 999, 40_000, 200_000), events: fc.array(event, { minLength: 1, maxLength: 16 }) }), { minLength: 1, maxLength: 30 });

  it('random batches leave the same entries, counters, expiries and LRU order as counting in JS', () => {
    let taken = 0, packets = 0, misses = 0;
    fc.assert(fc.property(batches, fc.integer({ min: 4, max: 40 }), (list, capacity) => {
      const js = new ConnTable({ capacity, seed: 5, prepass: false }), pre = new ConnTable({ capacity, seed: 5 });
      let now = 1000;
      for (const b of list) {
        now += b.advance;
        const pkts = b.events.map((e) => {
          const f = FLOWS[e.flow]!, p = e.reply ? reply(f) : f;
          return { ...p, flags: e.flags, payload: e.payload, kind: e.kind };
        });
        const { r, slots } = run(js, pre, pkts, now);
        expect(r).toBeGreaterThanOrEqual(0);
        misses += slots.filter((x) => x === PREPASS_MISS).length;
        same(js, pre, now);
        if (js.size > 0 && now % 7 === 0) { js.sweep(now); pre.sweep(now); }
        packets += pkts.length;
      }
      taken += pre.stats.prepassed;
      expect(js.stats.prepassed).toBe(0);
    }), { numRuns: 300, seed: 20261205 });
    // Random TCP flags rarely make a connection ESTABLISHED, and a flow's first packet is new: the
    // pre-pass takes about one packet in six here (fixed seed), near 2,000 in all.
    expect(taken).toBeGreaterThan(1000);
    expect(taken / packets).toBeGreaterThan(0.1);
    // And the misses the stages would not look up (a flow's first packet, one after a timeout).
    expect(misses).toBeGreaterThan(300);
  });

  // Each row: the connections set up first (through the table's own code), the batch, and the
  // slot each packet gets ('n': a node, PREPASS_MISS: no connection, the stages skip the lookup,
  // -1: left to the stages).
  const udpFlow = pkt({}), tcpFlow = pkt({ proto: CtProto.TCP, dport: 80 });
  const established = [tcpFlow, reply(tcpFlow, { flags: SYN | ACK }), { ...tcpFlow, flags: ACK }].map((p) => ({ ...p, flags: p.flags === 0 ? SYN : p.flags }));
  const M = PREPASS_MISS;
  const rows: ReadonlyArray<[string, readonly Pkt[], readonly Pkt[], ReadonlyArray<'n' | -1 | -2>]> = [
    ['a tracked UDP flow, each way', [udpFlow], [udpFlow, reply(udpFlow), udpFlow], ['n', 'n', 'n']],
    ['a new connection', [], [udpFlow], [M]],
    ['a new connection\'s second packet in the batch is looked up (the first opened it)', [], [udpFlow, udpFlow, pkt({ sport: 40001 })], [M, -1, -1]],
    ['a new TCP connection: the SYN', [], [{ ...tcpFlow, flags: SYN }], [M]],
    ['TCP data on an ESTABLISHED connection', established, [{ ...tcpFlow, flags: ACK | PSH, payload: 100 }, reply(tcpFlow, { flags: ACK })], ['n', 'n']],
    ['TCP: a FIN after data is left to the stages', established, [{ ...tcpFlow, flags: ACK }, { ...tcpFlow, flags: FIN | ACK }], ['n', -1]],
    ['TCP: once a packet is left to the stages, so are its connection\'s later ones', established, [{ ...tcpFlow, flags: FIN | ACK }, reply(tcpFlow, { flags: ACK }), udpFlow], [-1, -1, M]],
    ['TCP: RST and SYN on an ESTABLISHED connection', established, [{ ...tcpFlow, flags: RST }], [-1]],
    ['TCP before ESTABLISHED (SYN_SENT)', [{ ...tcpFlow, flags: SYN }], [{ ...tcpFlow, flags: ACK }], [-1]],
    ['an ICMP echo of a tracked ping', [pkt({ proto: CtProto.ICMP, sport: 7, dport: 0 })], [pkt({ proto: CtProto.ICMP, sport: 7, dport: 0 })], [-1]],
    ['a later fragment (no ports: another tuple)', [udpFlow], [{ ...udpFlow, kind: 'frag' }], [-1]],
    ['a VLAN-tagged frame, an IPv4 header longer than the frame', [udpFlow], [{ ...udpFlow, kind: 'vlan' }, { ...udpFlow, kind: 'bad' }], [-1, -1]],
    ['a truncated frame gets no slot', [udpFlow], [{ ...udpFlow, kind: 'trunc' }, udpFlow], ['n']],
  ];
  it.each(rows)('%s', (_name, setup, batch, want) => {
    const js = new ConnTable({ capacity: 16, seed: 9, prepass: false }), pre = new ConnTable({ capacity: 16, seed: 9 });
    for (const p of setup) { track(js, p, 1000); track(pre, p, 1000); }
    const { slots } = run(js, pre, batch, 1001);
    expect(slots.map((s) => (s >= 0 ? 'n' : s))).toEqual(want);
    same(js, pre, 1001);
  });

  it('leaves an expired connection, and a source other than the pod\'s, to the stages', () => {
    const js = new ConnTable({ capacity: 16, seed: 9, prepass: false }), pre = new ConnTable({ capacity: 16, seed: 9, timeouts: { udp: 10 } });
    track(pre, udpFlow, 1000);
    expect(run(js, pre, [udpFlow], 1011).slots).toEqual([PREPASS_MISS]); // expired: as good as none
    const other = new ConnTable({ capacity: 16, seed: 9 });
    track(other, udpFlow, 1000);
    track(other, reply(udpFlow), 1000);
    expect(run(new ConnTable({ capacity: 16, prepass: false }), other, [udpFlow, reply(udpFlow)], 1001, POD).slots).toEqual([expect.any(Number), -1]);
  });

  it('does not run with fewer free entries than packets (a new connection might evict one), nor with too few slots, nor when told not to', () => {
    const ct = new ConnTable({ capacity: 2, seed: 1 });
    track(ct, udpFlow, 1000);
    const { arena, meta } = batchOf([udpFlow, udpFlow].map(frameOf));
    const out = new Int32Array(2);
    out.fill(7);
    expect(ct.prepass(arena, meta, 2, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(0);
    expect([ct.wroteSlots, ...out]).toEqual([true, -1, -1]); // every packet to the stages
    expect(ct.prepass(arena, meta, 1, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(1);
    expect(ct.prepass(arena, meta, 2, 1000, PrepassFraming.POD, 0, 0, 0, new Int32Array(1))).toBe(Errno.ENOSPC);
    expect(ct.prepass(arena, meta, 3, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(Errno.EINVAL); // more frames than meta rows
    const off = new ConnTable({ capacity: 2, seed: 1, prepass: false });
    track(off, udpFlow, 1000);
    out.fill(7);
    expect(off.prepass(arena, meta, 1, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(0);
    expect([off.wroteSlots, ...out]).toEqual([false, 7, 7]);
  });

  it('take: -1 for a node whose entry went after the pre-pass (its slot may hold another connection)', () => {
    const ct = new ConnTable({ capacity: 16, seed: 1 });
    const flows = [udpFlow, pkt({ sport: 40001 })];
    for (const p of flows) track(ct, p, 1000);
    const { arena, meta } = batchOf(flows.map(frameOf));
    const out = new Int32Array(2);
    expect(ct.prepass(arena, meta, 2, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(2);
    const first = out[0]! & PREPASS_NODE;
    ct.remove(first);
    expect([ct.take(out[0]!), ct.take(out[1]!)]).toEqual([-1, out[1]! & PREPASS_NODE]);
  });

  it('overlay framings: one slot per datagram of a UDP GRO read; a VXLAN header the overlay would refuse is left to the stages', () => {
    const ct = new ConnTable({ capacity: 16, seed: 1 });
    const inbound = reply(udpFlow);
    track(ct, udpFlow, 1000);
    const vx = (vni: number, flags = 0x08): Buffer => Buffer.concat([Buffer.from([flags, 0, 0, 0, vni >> 16, (vni >> 8) & 255, vni & 255, 0]), frameOf(inbound)]);
    const d = vx(1), g = d.length;
    // frame 0: three datagrams read together (GSO_SIZE g); frame 1: VNI 2; frame 2: a reserved flag bit.
    const { arena, meta } = batchOf([Buffer.concat([d, d, d]), vx(2), vx(1, 0x0c)]);
    meta[Meta.GSO_SIZE] = g;
    const out = new Int32Array(5);
    expect(ct.prepass(arena, meta, 3, 1000, PrepassFraming.VXLAN_UDP, 1, 0, 0, out)).toBe(3);
    expect([...out].map((s) => ct.take(s) >= 0)).toEqual([true, true, true, false, false]);
    expect(ct.list(1000)[0]!.reply.packets).toBe(3);
    // The same inner frame in a whole underlay frame (Ethernet, IPv4, UDP, VXLAN).
    const outer = Buffer.alloc(14 + 20 + 8);
    outer.writeUInt16BE(0x0800, 12);
    outer[14] = 0x45;
    outer[14 + 9] = 17;
    const { arena: a2, meta: m2 } = batchOf([Buffer.concat([outer, d])]);
    expect(ct.prepass(a2, m2, 1, 1000, PrepassFraming.VXLAN_FRAME, 1, 0, 0, out)).toBe(1);
  });
});

describe.skipIf(nativeUnavailableReason() !== null)('ConnTable.prepass translates the packets of a Service connection, both ways (MARK_PREPASS_DNAT, MARK_PREPASS_REPLY)', () => {
  const VIP = ip('10.96.0.10'), BE = ip('10.244.2.5');
  const BOTH = MARK_NAT | MARK_PREPASS_DNAT | MARK_PREPASS_REPLY;

  /**
   * svc: a translated connection client:sport -> vip:dport, answered by be:bport -> client:nsport
   * (nsport: the source port the NAT gave it), set up as ServiceNat.act does: marked, with its
   * checksum changes stored per direction. TCP is taken to ESTABLISHED.
   */
  function svc(ct: ConnTable, proto: number, client: number, sport: number, vip: number, dport: number, be: number, bport: number, nsport = sport, mark = BOTH): number {
    const ports = packPorts(sport, dport), np = packPorts(nsport, bport);
    const n = ct.create(proto, client | 0, vip | 0, ports, be | 0, client | 0, packPorts(bport, nsport), proto === CtProto.TCP ? SYN : 0, 60, 1000);
    if (n < 0) return n;
    if (proto === CtProto.TCP) { ct.seen(n + 1, SYN | ACK, 60, 1000); ct.seen(n, ACK, 60, 1000); }
    ct.setMark(n, mark);
    ct.setNodeAux(n, natSums(client, vip, ports, client, be, np));
    ct.setNodeAux(n + 1, natSums(be, client, packPorts(bport, nsport), vip, client, packPorts(dport, sport)));
    return n;
  }

  /** A batch of `frames` with a virtio-net header of `vlen` bytes in front of each (flags byte: `vflags`). */
  function batchWithVnet(frames: readonly Buffer[], vlen: number, vflags: number): { arena: Buffer; meta: Int32Array } {
    const b = batchOf(frames);
    for (let i = 0; i < frames.length; i++) if (vlen > 0) b.arena[b.meta[i * META_STRIDE + Meta.START]! - vlen] = vflags;
    return b;
  }
  const frameAt = (b: { arena: Buffer; meta: Int32Array }, i: number): Buffer => b.arena.subarray(b.meta[i * META_STRIDE + Meta.START]!, b.meta[i * META_STRIDE + Meta.END]!);
  const VXLAN_VNI1 = Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]);
  /** The pseudo-header sum a sender with checksum offload leaves in the field (ingress-overlay.ts offloadState). */
  const pseudo = (f: Buffer): number => {
    const src = f.readUInt32BE(26), dst = f.readUInt32BE(30), room = f.readUInt16BE(16) - (f[14]! & 0x0f) * 4;
    let ps = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + f[23]! + room;
    ps = (ps >>> 16) + (ps & 0xffff);
    return (ps >>> 16) + (ps & 0xffff);
  };

  it('any tuple, checksum, offload state, direction and framing: the bytes natRewrite writes, and the slot says it translated', () => {
    const u32 = fc.integer({ min: 1, max: 0xffff_fffe }), u16 = fc.integer({ min: 1, max: 0xffff });
    const csum = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0xffff));
    let translated = 0;
    fc.assert(fc.property(
      fc.constantFrom(CtProto.TCP, CtProto.UDP), fc.constantFrom('pod', 'pod-vnet', 'overlay'), fc.boolean(), fc.boolean(), fc.tuple(u32, u16, u32, u16, u32, u16), fc.option(u16), csum, fc.integer({ min: 0, max: 60 }),
      (proto, framing, isReply, partialFlag, [client, sport, vip, dport, be, bport], newSport, sum, payload) => {
        const ct = new ConnTable({ capacity: 8, seed: 3 });
        const nsport = newSport ?? sport;
        fc.pre(svc(ct, proto, client, sport, vip, dport, be, bport, nsport) >= 0);
        // The packet as it comes, and where the translation takes it (the other tuple, inverted).
        const [src, sp, dst, dp] = isReply ? [be, bport, client, nsport] : [client, sport, vip, dport];
        const [ns, nsp, nd, ndp] = isReply ? [vip, dport, client, sport] : [client, nsport, be, bport];
        const l3 = { srcMac: MAC_A, dstMac: MAC_B, src, dst, sport: sp, dport: dp, payload };
        const f = proto === CtProto.TCP ? tcp({ ...l3, flags: ACK | PSH }) : udp(l3);
        const at = 34 + (proto === CtProto.TCP ? 16 : 6);
        const partial = framing === 'pod-vnet' ? partialFlag : framing === 'overlay' ? partialFlag && pseudo(f) !== 0 : false;
        f.writeUInt16BE(framing === 'overlay' && partial ? pseudo(f) : sum, at);
        // Over the overlay a field that happens to equal the pseudo-header sum is partial (as offloadState takes it).
        fc.pre(framing !== 'overlay' || partial || f.readUInt16BE(at) !== pseudo(f) || f.readUInt16BE(at) === 0);
        const want = Buffer.from(f), L = FrameLayout.of(want);
        L.l4();
        natRewrite(L, partial, ns, nd, nsp, ndp);
        const vlen = framing === 'pod-vnet' ? 12 : 0, out = new Int32Array(1);
        const b = framing === 'overlay' ? batchOf([Buffer.concat([VXLAN_VNI1, f])]) : batchWithVnet([f], vlen, partial ? 1 : 0);
        const r = framing === 'overlay' ? ct.prepass(b.arena, b.meta, 1, 1000, PrepassFraming.VXLAN_UDP, 1, 0, 0, out)
          : ct.prepass(b.arena, b.meta, 1, 1000, PrepassFraming.POD, 0, src, vlen, out);
        expect(r).toBe(1);
        expect((out[0]! & PREPASS_NAT) !== 0).toBe(true);
        expect(frameAt(b, 0).subarray(framing === 'overlay' ? 8 : 0).toString('hex')).toBe(want.toString('hex'));
        expect(ct.take(out[0]!)).toBe(ct.lookup(proto, src | 0, dst | 0, packPorts(sp, dp), 1000));
        translated++;
      }), { numRuns: 3000, seed: 20261206 });
    expect(translated).toBeGreaterThan(2500);
  });

  it('translates only the directions an entry is marked for, and not what it leaves to the stages', () => {
    const CLIENT = POD, ct = new ConnTable({ capacity: 16, seed: 3 });
    svc(ct, CtProto.UDP, CLIENT, 40000, VIP, 53, BE, 5353);
    svc(ct, CtProto.UDP, CLIENT, 40001, VIP, 53, BE, 5353, 40001, MARK_NAT); // translated, not for the pre-pass (hairpin, or on the overlay's port)
    svc(ct, CtProto.UDP, CLIENT, 40003, VIP, 53, BE, 5353, 40003, MARK_NAT | MARK_PREPASS_DNAT); // one way only
    svc(ct, CtProto.TCP, CLIENT, 40002, VIP, 80, BE, 8080);
    const l3 = { srcMac: MAC_A, dstMac: MAC_B };
    const frames = [
      udp({ ...l3, src: CLIENT, dst: VIP, sport: 40000, dport: 53, payload: 20 }), // to the backend
      udp({ ...l3, src: BE, dst: CLIENT, sport: 5353, dport: 40000, payload: 20 }), // its reply
      udp({ ...l3, src: CLIENT, dst: VIP, sport: 40001, dport: 53, payload: 20 }), // not marked for the pre-pass
      udp({ ...l3, src: BE, dst: CLIENT, sport: 5353, dport: 40003, payload: 20 }), // a reply of a connection marked one way
      tcp({ ...l3, src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: FIN | ACK, payload: 0 }), // a FIN: the stages' (state)
      tcp({ ...l3, src: CLIENT, dst: VIP, sport: 40002, dport: 80, flags: ACK, payload: 5 }), // after it: the stages' too
    ];
    const before = frames.map((f) => f.toString('hex'));
    const b = batchOf(frames), out = new Int32Array(frames.length);
    expect(ct.prepass(b.arena, b.meta, frames.length, 1000, PrepassFraming.POD, 0, 0, 0, out)).toBe(4);
    expect([...out].map((s) => (s < 0 ? 'js' : (s & PREPASS_NAT) !== 0 ? 'nat' : 'seen'))).toEqual(['nat', 'nat', 'seen', 'seen', 'js', 'js']);
    expect(frames.map((_, i) => frameAt(b, i).toString('hex') !== before[i])).toEqual([true, true, false, false, false, false]);
    expect([flowOf(frameAt(b, 0)), flowOf(frameAt(b, 1))]).toEqual(['10.244.1.2:40000 > 10.244.2.5:5353', '10.96.0.10:53 > 10.244.1.2:40000']);
    // The same reply through the overlay (VXLAN in UDP, and a whole underlay frame): translated too.
    const vx = Buffer.concat([VXLAN_VNI1, udp({ ...l3, src: BE, dst: CLIENT, sport: 5353, dport: 40000, payload: 20 })]);
    const ov = batchOf([vx]);
    expect(ct.prepass(ov.arena, ov.meta, 1, 1000, PrepassFraming.VXLAN_UDP, 1, 0, 0, out)).toBe(1);
    expect([(out[0]! & PREPASS_NAT) !== 0, flowOf(frameAt(ov, 0).subarray(8))]).toEqual([true, '10.96.0.10:53 > 10.244.1.2:40000']);
    // A virtio-net header length with an overlay framing is refused.
    expect(ct.prepass(ov.arena, ov.meta, 1, 1000, PrepassFraming.VXLAN_UDP, 1, 0, 10, out)).toBe(Errno.EINVAL);
  });
});

/** "src:sport > dst:dport" of an Ethernet + IPv4 (20 bytes) + TCP/UDP frame. */
function flowOf(f: Buffer): string {
  const at = (o: number, p: number): string => `${[...f.subarray(o, o + 4)].join('.')}:${f.readUInt16BE(p)}`;
  return `${at(26, 34)} > ${at(30, 36)}`;
}
