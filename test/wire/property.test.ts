/**
 * Property tests (reliability.md §7.2): the decoders are total, stay inside their window, never
 * mutate their input, and always give either a valid parse or exactly one drop reason.
 *
 *   hot path:  Decapsulator.decapFrame under three policies, and every view's length checks
 *   cold path: dissectFrame never throws and emitFrame(dissectFrame(x)) == x for any x
 *
 * Inputs: random bytes; valid frames built by the codec (VXLAN over ARP/ICMP/UDP/TCP, 802.1Q
 * inner and outer, IPv4 options, VXLAN in VXLAN) and the kernel's golden frames, mutated
 * (bit flips, boundary values, truncation, extension, splices); every truncation and every
 * single-bit flip of each of those frames, exhaustively.
 *
 * "Never reads outside the window": each input sits inside a larger buffer between poison bytes.
 * It is decoded, the poison is replaced by its bitwise complement, and it is decoded again:
 * the drop code and every DecapResult field (or the whole FrameRepr) must be identical.
 *
 * Seeds are fixed. FLATNET_FC_SCALE multiplies every run count and FLATNET_FC_SEED replaces the
 * seeds, for long randomized runs outside CI.
 */

import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ArpView, parseArp } from '../../src/wire/arp.js';
import { DecapResult, Decapsulator, VniSet, type DecapPolicy } from '../../src/wire/decap.js';
import { dissectFrame, emitFrame } from '../../src/wire/dissect.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import { EthernetView, parseEthernet } from '../../src/wire/ethernet.js';
import { Icmpv4View, parseIcmpv4Header } from '../../src/wire/icmpv4.js';
import { Ipv4View, parseIpv4Header } from '../../src/wire/ipv4.js';
import { TcpView, parseTcpHeader } from '../../src/wire/tcp.js';
import { UdpView, parseUdpHeader } from '../../src/wire/udp.js';
import { VirtioNetHdrView, parseVirtioNetHdr } from '../../src/wire/virtio-net-hdr.js';
import { VxlanView, parseVxlan } from '../../src/wire/vxlan.js';
import { WireError } from '../../src/errors.js';
import { INNER_SRC_MAC, buildInner, encapsulate, validCorpus, type CorpusFrame } from '../support/frames.js';
import { KERNEL_FIXTURES, kernelFixture, readFrames } from '../support/pcap.js';

const SCALE = Number(process.env.FLATNET_FC_SCALE ?? '1');
const SEED_OVERRIDE = process.env.FLATNET_FC_SEED === undefined ? undefined : Number(process.env.FLATNET_FC_SEED);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
const params = (seed: number, numRuns: number): fc.Parameters<unknown> => ({ seed: SEED_OVERRIDE ?? seed, numRuns: runs(numRuns) });

/** Every input decoded counts as one case (fast-check runs and exhaustive loops alike). */
const counted = { fastCheck: 0, exhaustive: 0 };

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

// ---------------------------------------------------------------------------------------------
// Corpus: the codec's valid frames, the kernel's, and VXLAN in VXLAN.

interface Sample {
  readonly name: string;
  readonly frame: Buffer;
  readonly port: number;
  readonly udpChecksum: boolean;
  readonly ethLen: number;
}

const CODEC: readonly CorpusFrame[] = validCorpus();
const KERNEL: readonly Sample[] = KERNEL_FIXTURES.flatMap((f) =>
  readFrames(kernelFixture(f.file)).map((x, i) => ({ name: `${f.file}#${i + 1}`, frame: x.data, port: f.port, udpChecksum: f.udpcsum, ethLen: 14 })));
const NESTED: readonly Sample[] = [
  { name: 'vxlan in vxlan', frame: encapsulate(encapsulate(buildInner({ kind: 'tcp' }), { vni: 7 })), port: 4789, udpChecksum: false, ethLen: 14 },
  { name: 'vxlan in vxlan, udpcsum', frame: encapsulate(encapsulate(buildInner({ kind: 'icmp' }), { udpChecksum: true }), { udpChecksum: true }), port: 4789, udpChecksum: true, ethLen: 14 },
];
const CORPUS: readonly Sample[] = [...CODEC, ...KERNEL, ...NESTED];

/**
 * Poison: fast-check picks it per case (or, in the exhaustive loops, plausible bytes from a valid
 * frame); the second decode runs over its bitwise complement.
 */
const PLAUSIBLE_POISON = CODEC[0]!.frame.subarray(0, 16);

interface Placed { readonly buf: Buffer; readonly start: number; readonly end: number }

/** place copies `data` into a fresh buffer between `lead` and `trail` (at most 16) bytes of poison. */
function place(data: Uint8Array, lead: number, trail: number, poison: Uint8Array = PLAUSIBLE_POISON): Placed {
  const buf = Buffer.allocUnsafe(lead + data.length + trail);
  for (let i = 0; i < lead; i++) buf[i] = poison[i]!;
  buf.set(data, lead);
  for (let i = 0; i < trail; i++) buf[lead + data.length + i] = poison[15 - i]!;
  return { buf, start: lead, end: lead + data.length };
}

/** repoison flips every bit of the poison around the window. */
function repoison(p: Placed): void {
  for (let i = 0; i < p.start; i++) p.buf[i]! ^= 0xff;
  for (let i = p.end; i < p.buf.length; i++) p.buf[i]! ^= 0xff;
}

// ---------------------------------------------------------------------------------------------
// Hot path: decapFrame.

const OWN_MAC = 0x0e00_0af4_ffff;
const POLICIES: readonly (readonly [string, DecapPolicy])[] = [
  ['strict 4789', {}],
  ['lenient any port GBP', { port: -1, strict: false, gbp: true, verifyUdpChecksum: false }],
  ['strict 8472 VNIs 7 and 42', { port: 8472, vnis: new VniSet([7, 42]), ownMac: OWN_MAC }],
];
const DECAPS = POLICIES.map(([, p]) => new Decapsulator(p));
const DROP_CODES = new Set<number>(Object.values(WireDrop).filter((d) => d !== WireDrop.ECN_CE_NOT_ECT)); // ECN: applyEcnDecap only
const RESULT = new DecapResult();
const RESULT_KEYS = Object.keys(RESULT) as (keyof DecapResult)[];

/** decapSnapshot: the code and every result field (reset to -1 first, so stale values cannot match). */
function decapSnapshot(d: Decapsulator, p: Placed): number[] {
  for (const k of RESULT_KEYS) RESULT[k] = -1;
  const code = d.decapFrame(p.buf, p.start, p.end, RESULT);
  const out: number[] = [code];
  for (const k of RESULT_KEYS) out.push(RESULT[k]);
  return out;
}

/**
 * checkDecap: for each policy, decapFrame returns a known code; an accepted frame has a sane
 * inner window inside [start, end); the input is not modified; and the result is the same when
 * the poison around the window changes. Returns the first policy's code.
 */
function checkDecap(data: Uint8Array, lead: number, trail: number, count: keyof typeof counted = 'fastCheck', poison?: Uint8Array): number {
  const p = place(data, lead, trail, poison);
  const before = Buffer.from(p.buf);
  const first: number[][] = DECAPS.map((d) => decapSnapshot(d, p));
  for (const snap of first) {
    const code = snap[0]!;
    check(DROP_CODES.has(code), `unknown drop code ${code}`);
    if (code === WireDrop.NONE) {
      for (const v of snap) check(Number.isInteger(v) && v >= 0, `result field ${v}`);
      const innerStart = snap[1 + RESULT_KEYS.indexOf('innerStart')]!;
      const innerEnd = snap[1 + RESULT_KEYS.indexOf('innerEnd')]!;
      const vni = snap[1 + RESULT_KEYS.indexOf('vni')]!;
      check(innerStart >= p.start + 50 && innerStart + 14 <= innerEnd && innerEnd <= p.end, `inner window [${innerStart}, ${innerEnd}) of [${p.start}, ${p.end})`);
      check(vni <= 0xffffff, `vni ${vni}`);
    }
  }
  check(p.buf.equals(before), 'decapFrame modified its input');
  repoison(p);
  DECAPS.forEach((d, i) => {
    const again = decapSnapshot(d, p);
    check(again.every((v, j) => v === first[i]![j]), `${POLICIES[i]![0]}: ${first[i]!.join(',')} became ${again.join(',')} when only the poison changed`);
  });
  counted[count]++;
  return first[0]![0]!;
}

// ---------------------------------------------------------------------------------------------
// Views: after a passing length check, every accessor stays inside the window.

const eth = new EthernetView(), arp = new ArpView(), ip = new Ipv4View(), icmp = new Icmpv4View();
const udp = new UdpView(), tcp = new TcpView(), vx = new VxlanView(), vnet = new VirtioNetHdrView();
const VIEW_KINDS = ['eth', 'arp', 'ipv4', 'icmp', 'udp', 'tcp', 'vxlan', 'virtio'] as const;
type ViewKind = (typeof VIEW_KINDS)[number];

/** viewSnapshot: the check's verdict and, when it passes, every accessor; then the cold parser's result or error code. */
function viewSnapshot(kind: ViewKind, p: Placed): string {
  const { buf: b, start: s, end: e } = p;
  let fields: unknown[] = [];
  let parsed: unknown;
  const parse = (fn: () => unknown): void => {
    try {
      parsed = fn();
    } catch (err) {
      check(err instanceof WireError && (err.code === 'ERR_WIRE_TRUNCATED' || err.code === 'ERR_WIRE_MALFORMED'), `${kind} parser threw ${String(err)}`);
      parsed = { error: (err as WireError).code };
    }
  };
  switch (kind) {
    case 'eth': {
      const v = eth.reset(b, s, e);
      if (v.checkLen()) fields = [v.dst, v.src, v.typeField, v.hasVlan, v.hasVlan ? v.tci : 0, v.hasVlan ? v.vid : 0, v.etherType, v.headerLen, v.payloadOff];
      parse(() => parseEthernet(v));
      break;
    }
    case 'arp': {
      const v = arp.reset(b, s, e);
      if (v.checkLen()) fields = [v.htype, v.ptype, v.hlen, v.plen, v.oper, v.sha, v.spa, v.tha, v.tpa, v.isEthernetIpv4()];
      parse(() => parseArp(v));
      break;
    }
    case 'ipv4': {
      const v = ip.reset(b, s, e);
      const d = v.validate();
      check(DROP_CODES.has(d), `ipv4 validate ${d}`);
      fields = [d];
      if (d === WireDrop.NONE) {
        fields.push(v.version, v.ihl, v.headerLen, v.tos, v.totalLen, v.ident, v.flagsFrag, v.isFragment(), v.ttl, v.protocol, v.checksum, v.src, v.dst, v.payloadOff, v.payloadEnd, v.verifyChecksum());
        check(v.payloadOff <= v.payloadEnd && v.payloadEnd <= e, 'ipv4 payload outside the window');
      }
      parse(() => parseIpv4Header(v));
      break;
    }
    case 'icmp': {
      const v = icmp.reset(b, s, e);
      if (v.checkLen()) fields = [v.type, v.code, v.checksum, v.rest, v.ident, v.seq, v.nextHopMtu, v.verifyChecksum()];
      parse(() => parseIcmpv4Header(v));
      break;
    }
    case 'udp': {
      const v = udp.reset(b, s, e);
      if (v.checkLen()) {
        fields = [v.srcPort, v.dstPort, v.length, v.checksum];
        // verifyChecksum's precondition: the datagram fits the window.
        if (v.length >= 8 && v.length <= e - s) fields.push(v.verifyChecksum(0x0af4_0101, 0x0af4_0102), v.checksumStatus(1, 2));
      }
      parse(() => parseUdpHeader(v));
      break;
    }
    case 'tcp': {
      const v = tcp.reset(b, s, e);
      if (v.checkLen()) fields = [v.srcPort, v.dstPort, v.seq, v.ack, v.dataOffset, v.flags, v.window, v.checksum, v.urgent, v.payloadOff, v.mssOptionOff(), v.mss(), v.verifyChecksum(1, 2)];
      parse(() => parseTcpHeader(v));
      break;
    }
    case 'vxlan': {
      const v = vx.reset(b, s, e);
      if (v.checkLen()) fields = [v.flags, v.flagI, v.flagG, v.reserved24, v.gbpFlags, v.groupPolicyId, v.vni, v.reserved8, v.reservedZero(false), v.reservedZero(true)];
      parse(() => parseVxlan(v));
      break;
    }
    case 'virtio': {
      const v = vnet.reset(b, s, e);
      if (v.checkLen()) fields = [v.flags, v.gsoType, v.hdrLen, v.gsoSize, v.csumStart, v.csumOffset, v.numBuffers];
      parse(() => parseVirtioNetHdr(v));
      break;
    }
  }
  for (const f of fields) {
    check(typeof f === 'boolean' || typeof f === 'string' || (Number.isInteger(f) && (f as number) >= -1), `${kind}: accessor gave ${String(f)}`);
  }
  return JSON.stringify([fields, parsed]);
}

function checkView(kind: ViewKind, data: Uint8Array, lead: number, trail: number, poison: Uint8Array): void {
  const p = place(data, lead, trail, poison);
  const before = Buffer.from(p.buf);
  const first = viewSnapshot(kind, p);
  check(p.buf.equals(before), `${kind}: a read modified the buffer`);
  repoison(p);
  const again = viewSnapshot(kind, p);
  check(again === first, `${kind}: ${first} became ${again} when only the poison changed`);
  counted.fastCheck++;
}

// ---------------------------------------------------------------------------------------------
// Cold path: dissectFrame / emitFrame.

function checkDissect(data: Uint8Array, lead: number, trail: number, count: keyof typeof counted = 'fastCheck', poison?: Uint8Array): void {
  const p = place(data, lead, trail, poison);
  const before = Buffer.from(p.buf);
  const repr = dissectFrame(p.buf, p.start, p.end);
  check(p.buf.equals(before), 'dissectFrame modified its input');
  const out = emitFrame(repr);
  check(out.equals(p.buf.subarray(p.start, p.end)), `emitFrame(dissectFrame(x)) != x for ${Buffer.from(data).toString('hex')}`);
  const json = JSON.stringify(repr);
  repoison(p);
  const again = JSON.stringify(dissectFrame(p.buf, p.start, p.end));
  check(again === json, 'the FrameRepr changed when only the poison changed');
  counted[count]++;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.

const pad = fc.nat(8);
const poisonArb = fc.uint8Array({ minLength: 16, maxLength: 16 });
const randomFrame = fc.uint8Array({ maxLength: 256 });

type Mutation =
  | { readonly k: 'flip'; readonly at: number; readonly bit: number }
  | { readonly k: 'byte'; readonly at: number; readonly v: number }
  | { readonly k: 'word'; readonly at: number; readonly v: number }
  | { readonly k: 'cut'; readonly at: number }
  | { readonly k: 'append'; readonly bytes: Uint8Array }
  | { readonly k: 'splice'; readonly at: number; readonly del: number; readonly bytes: Uint8Array };

const BOUNDARY_BYTES = [0x00, 0x01, 0x04, 0x05, 0x06, 0x08, 0x0c, 0x0f, 0x11, 0x40, 0x44, 0x45, 0x46, 0x4f, 0x80, 0x81, 0x88, 0xff];
const BOUNDARY_WORDS = [0, 1, 7, 8, 13, 14, 15, 16, 19, 20, 21, 59, 60, 0x0800, 0x0806, 0x8100, 0x88a8, 4789, 8472, 0x7fff, 0xfffe, 0xffff];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant('byte' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...BOUNDARY_BYTES), fc.nat(255)) }),
  fc.record({ k: fc.constant('word' as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...BOUNDARY_WORDS), fc.nat(0xffff)) }),
  fc.record({ k: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ k: fc.constant('splice' as const), at: fc.nat(), del: fc.nat(8), bytes: fc.uint8Array({ maxLength: 8 }) }),
);
const mutated = fc.record({ i: fc.nat(CORPUS.length - 1), muts: fc.array(mutation, { minLength: 1, maxLength: 4 }), lead: pad, trail: pad, poison: poisonArb });

function applyMutations(frame: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(frame);
  for (const m of muts) {
    const n = b.length;
    switch (m.k) {
      case 'flip': if (n > 0) b[m.at % n]! ^= 1 << m.bit; break;
      case 'byte': if (n > 0) b[m.at % n] = m.v; break;
      case 'word': if (n > 1) b.writeUInt16BE(m.v, m.at % (n - 1)); break;
      case 'cut': b = b.subarray(0, m.at % (n + 1)); break;
      case 'append': b = Buffer.concat([b, m.bytes]); break;
      case 'splice': {
        const at = m.at % (n + 1);
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(Math.min(n, at + m.del))]);
        break;
      }
    }
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Exhaustive models: what a truncation or a single-bit flip of a valid frame must give.

/** The drop codes a single-bit flip at (byte, bit) of a valid frame may give under the strict policy on its port. */
function flipOutcomes(s: Sample, byte: number, bit: number): readonly number[] {
  const e = s.ethLen, ipOff = e, udpOff = e + 20, vxOff = e + 28, inner = e + 36;
  const IPV4 = [WireDrop.IPV4_TRUNCATED, WireDrop.IPV4_BAD_VERSION, WireDrop.IPV4_BAD_IHL, WireDrop.IPV4_BAD_TOTAL_LEN, WireDrop.IPV4_BAD_CHECKSUM];
  if (byte < 12) return [WireDrop.NONE]; // outer MACs: not decap's business
  if (byte < e) {
    if (e === 18 && (byte === 14 || byte === 15)) return [WireDrop.NONE]; // the VLAN TCI
    return [WireDrop.OUTER_NOT_IPV4]; // TPID or EtherType
  }
  if (byte < udpOff) return IPV4; // the ones'-complement checksum catches every single-bit error
  const udpCsum = s.frame.readUInt16BE(udpOff + 6);
  if (s.udpChecksum) {
    // Every single-bit error in the datagram fails the UDP checksum (or the length check first),
    // except turning a one-bit checksum into 0, which means "no checksum".
    const isCsumByte = byte === udpOff + 6 || byte === udpOff + 7;
    const flipped = udpCsum ^ ((byte === udpOff + 6 ? 0x100 : 1) << bit);
    if (isCsumByte && flipped === 0) return [WireDrop.NONE];
    return [WireDrop.UDP_BAD_LEN, WireDrop.UDP_BAD_CHECKSUM];
  }
  if (byte < udpOff + 2) return [WireDrop.NONE]; // source port
  if (byte < udpOff + 4) return [WireDrop.UDP_PORT_MISMATCH];
  if (byte < udpOff + 6) return [WireDrop.NONE, WireDrop.UDP_BAD_LEN, WireDrop.VXLAN_TRUNCATED, WireDrop.INNER_ETH_TRUNCATED]; // length
  if (byte < vxOff) return [WireDrop.UDP_BAD_CHECKSUM]; // 0 -> a one-bit checksum, which cannot verify
  if (byte === vxOff && bit === 3) return [WireDrop.VXLAN_NO_I_FLAG];
  if (byte >= vxOff + 4 && byte < vxOff + 7) return [WireDrop.NONE]; // VNI: the strict policy serves any
  if (byte < inner) return [WireDrop.VXLAN_RESERVED_SET];
  if (byte === inner + 6 && bit === 0) return [WireDrop.INNER_SRC_MAC_INVALID]; // the group bit of the source MAC
  return [WireDrop.NONE]; // the rest of the inner frame is the pod's business
}

describe('decoders are total and stay inside their window', () => {
  afterAll(() => {
    process.stdout.write(`property cases: ${counted.fastCheck} fast-check + ${counted.exhaustive} exhaustive = ${counted.fastCheck + counted.exhaustive}\n`);
  });

  it('the corpus is what it claims: every frame decapsulates', () => {
    for (const s of CORPUS) {
      const r = new DecapResult();
      const got = new Decapsulator({ port: s.port }).decapFrame(s.frame, 0, s.frame.length, r);
      expect(wireDropName(got), s.name).toBe('none');
    }
    expect(CORPUS.length).toBeGreaterThan(100);
  });

  it('hot path: decapFrame on random bytes', () => {
    fc.assert(fc.property(randomFrame, pad, pad, poisonArb, (data, lead, trail, poison) => {
      checkDecap(data, lead, trail, 'fastCheck', poison);
    }), params(0x5eed_0001, 300_000));
  });

  it('hot path: decapFrame on random bytes behind a valid prefix', () => {
    const arb = fc.record({ i: fc.nat(CORPUS.length - 1), keep: fc.nat(), tail: fc.uint8Array({ maxLength: 96 }), lead: pad, trail: pad, poison: poisonArb });
    fc.assert(fc.property(arb, ({ i, keep, tail, lead, trail, poison }) => {
      const f = CORPUS[i]!.frame;
      checkDecap(Buffer.concat([f.subarray(0, keep % (f.length + 1)), tail]), lead, trail, 'fastCheck', poison);
    }), params(0x5eed_0002, 100_000));
  });

  it('hot path: decapFrame on mutated valid frames', () => {
    fc.assert(fc.property(mutated, ({ i, muts, lead, trail, poison }) => {
      checkDecap(applyMutations(CORPUS[i]!.frame, muts), lead, trail, 'fastCheck', poison);
    }), params(0x5eed_0003, 300_000));
  });

  it('views: after a passing check, no accessor reads outside the window; parsers throw only WireErrors', () => {
    const arb = fc.record({
      kind: fc.constantFrom(...VIEW_KINDS),
      data: fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.record({ i: fc.nat(CORPUS.length - 1), at: fc.nat(), len: fc.nat(80) })),
      lead: pad,
      trail: pad,
      poison: poisonArb,
    });
    fc.assert(fc.property(arb, ({ kind, data, lead, trail, poison }) => {
      // Either random bytes, or a slice of a real frame (so that checks pass often).
      const bytes = data instanceof Uint8Array ? data : ((f: Buffer) => f.subarray(data.at % f.length, (data.at % f.length) + data.len))(CORPUS[data.i]!.frame);
      checkView(kind, bytes, lead, trail, poison);
    }), params(0x5eed_0004, 200_000));
  });

  it('cold path: dissectFrame never throws and emitFrame(dissectFrame(x)) == x on random bytes', () => {
    fc.assert(fc.property(randomFrame, pad, pad, poisonArb, (data, lead, trail, poison) => {
      checkDissect(data, lead, trail, 'fastCheck', poison);
    }), params(0x5eed_0005, 40_000));
  });

  it('cold path: the same on mutated valid frames', () => {
    fc.assert(fc.property(mutated, ({ i, muts, lead, trail, poison }) => {
      checkDissect(applyMutations(CORPUS[i]!.frame, muts), lead, trail, 'fastCheck', poison);
    }), params(0x5eed_0006, 80_000));
  });

  it('every truncation of every valid frame: a truncation drop at the right layer, and a malformed layer', () => {
    for (const s of CORPUS) {
      for (let cut = 0; cut <= s.frame.length; cut++) {
        const part = s.frame.subarray(0, cut);
        const p = place(part, 3, 3);
        const got = new Decapsulator({ port: s.port }).decapFrame(p.buf, p.start, p.end, RESULT);
        // The outer IPv4 total length covers the whole frame, so any cut past the Ethernet
        // header leaves the IPv4 packet short.
        const want = cut === s.frame.length ? WireDrop.NONE : cut < s.ethLen ? WireDrop.ETH_TRUNCATED : WireDrop.IPV4_TRUNCATED;
        expect(wireDropName(got), `${s.name} cut to ${cut}`).toBe(wireDropName(want));
        checkDecap(part, 3, 3, 'exhaustive');
        const repr = dissectFrame(p.buf, p.start, p.end);
        if (cut < s.frame.length) {
          expect(repr.malformed, `${s.name} cut to ${cut}`).toMatchObject({ layer: cut < s.ethLen ? 'eth' : 'ipv4', code: 'ERR_WIRE_TRUNCATED' });
        } else {
          expect(repr.malformed, s.name).toBeUndefined();
        }
        checkDissect(part, 3, 3, 'exhaustive');
      }
    }
  });

  it('every single-bit flip of every valid frame: the drop the flipped field calls for', () => {
    const strictOn = new Map<number, Decapsulator>();
    for (const s of CORPUS) {
      const d = strictOn.get(s.port) ?? new Decapsulator({ port: s.port });
      strictOn.set(s.port, d);
      const b = Buffer.from(s.frame);
      for (let byte = 0; byte < b.length; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          b[byte]! ^= 1 << bit;
          const got = d.decapFrame(b, 0, b.length, RESULT);
          const allowed = flipOutcomes(s, byte, bit);
          if (!allowed.includes(got)) {
            expect.fail(`${s.name}: flipping byte ${byte} bit ${bit} gave ${wireDropName(got)}, expected one of ${allowed.map((x) => wireDropName(x)).join(', ')}`);
          }
          checkDecap(b, 2, 2, 'exhaustive');
          if (!s.name.includes('.pcap#')) checkDissect(b, 2, 2, 'exhaustive'); // the codec's frames: the cold path too
          b[byte]! ^= 1 << bit;
        }
      }
    }
    expect(Math.floor(INNER_SRC_MAC / 2 ** 40) % 2).toBe(0); // the model's source-MAC rule assumes unicast sources
  });

  it('ran at least 1e6 cases', () => {
    expect(counted.fastCheck + counted.exhaustive).toBeGreaterThanOrEqual(Math.round(1e6 * Math.min(1, SCALE)));
  });
});
