/**
 * Differential tests: our codec against two independent dissectors, tshark and scapy.
 *
 *   (a) random valid frames built by our codec (test/support/gen.ts): tshark, scapy and our own
 *       dissectFrame must all decode the values the generator intended, every checksum good (or
 *       'none' for a zero UDP checksum), tshark must see nothing malformed and no expert error,
 *       and the strict Decapsulator must accept every frame with the same outer/VXLAN values.
 *   (b) random valid frames built by scapy (test/support/scapy_build.py): our dissectFrame,
 *       our Decapsulator, and tshark as a second opinion decode what scapy intended.
 *   (c) deliberately broken frames: tshark flags the malformation or bad checksum, our
 *       dissector agrees, and the Decapsulator returns the matching Drop. For the I flag and
 *       reserved bits tshark and scapy are field oracles, not policy oracles (both decode such
 *       frames happily; Linux drops them): only what they decode is asserted there.
 *
 * One tshark process and one scapy process per batch; they run in parallel. The seed is random
 * per run and printed in every failure; replay with FLATNET_DIFF_SEED=<seed>. FLATNET_DIFF_FRAMES
 * raises the batch size for a longer soak. The suite skips itself (saying why) without tshark or
 * /usr/bin/python3 + scapy, unless FLATNET_REQUIRE_ORACLES=1. Files only: nothing is sent.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcapReader } from '../../src/pcap/pcap.js';
import {
  wireDropName,
  DecapResult,
  Decapsulator,
  WireDrop,
  EncapTemplate,
  EtherType,
  EthernetView,
  Icmpv4View,
  IpProto,
  Ipv4View,
  OUTER_IP_OFF,
  OUTER_UDP_OFF,
  UdpView,
  VXLAN_HEADROOM,
  VXLAN_OFF,
  dissectFrame,
  formatIpv4,
  parseIpv4,
  parseMac,
} from '../../src/wire/index.js';
import { diffFields, fieldsOfRepr, summarize, type Fields } from '../support/fields.js';
import { FrameGenerator, seedFromEnv } from '../support/gen.js';
import { scapyBuild, scapyDissect, scapyMissing, type ScapyFrame } from '../support/scapy.js';
import { ExpertSeverity, Tshark, tsharkMissing, writePcap, type TsharkFrame } from '../support/tshark.js';

const SEED = seedFromEnv();
const FRAMES = Number(process.env['FLATNET_DIFF_FRAMES'] ?? 1000);

const missing = (await Promise.all([tsharkMissing(), scapyMissing()])).filter((m): m is string => m !== null);
// FLATNET_REQUIRE_ORACLES=1 (for CI, where .ci/setup installs both) turns a skip into a failure.
const REQUIRE = process.env['FLATNET_REQUIRE_ORACLES'] === '1';
const SKIP = missing.length > 0 && !REQUIRE;
if (SKIP) console.warn(`[differential] skipped: ${missing.join('; ')}`);

/**
 * tshark expert *warnings* that are about TCP semantics of a lone random segment, never about
 * the bytes being malformed: an RST, an MSS option outside a SYN, and the "reset cause" text
 * tshark reads from an RST's payload ("Trailing stray characters" in random bytes). Any other
 * warning, and every error, fails the test.
 */
const ALLOWED_WARNINGS: readonly RegExp[] = [
  /^Connection reset \(RST\)$/,
  /^The non-SYN packet does contain a MSS option$/,
  /^Trailing stray characters$/,
];

/** The tshark verdict problems of one frame that should be clean. */
function tsharkVerdict(i: number, ctx: string, t: TsharkFrame | undefined): string[] {
  if (t === undefined) return [];
  const out: string[] = [];
  if (t.malformed) out.push(`frame #${i} (${ctx}): tshark: malformed packet (${t.protocols})`);
  for (const e of t.experts) {
    if (e.severity >= ExpertSeverity.ERROR) out.push(`frame #${i} (${ctx}): tshark expert error: ${e.message}`);
    else if (e.severity >= ExpertSeverity.WARN && !ALLOWED_WARNINGS.some((re) => re.test(e.message))) {
      out.push(`frame #${i} (${ctx}): tshark expert warning: ${e.message}`);
    }
  }
  return out;
}

function scapyProblems(i: number, ctx: string, s: ScapyFrame | undefined): string[] {
  return s?.error !== undefined ? [`frame #${i} (${ctx}): scapy: raised ${s.error}`] : [];
}

/** One strict Decapsulator per (port, GBP) policy, as a VTEP configured for that frame would run. */
class Decaps {
  private readonly cache = new Map<string, Decapsulator>();
  readonly res = new DecapResult();
  get(port: number, gbp: boolean): Decapsulator {
    const k = `${port}/${gbp}`;
    let d = this.cache.get(k);
    if (d === undefined) this.cache.set(k, (d = new Decapsulator({ port, gbp, strict: true, verifyUdpChecksum: true })));
    return d;
  }
}

/** What the Decapsulator must report for a valid frame, from the intended fields. */
function decapIntended(f: Fields, gbp: boolean): Fields {
  const pick = ['o.ip.src', 'o.ip.dst', 'o.ip.ttl', 'o.ip.dscp', 'o.ip.ecn', 'o.udp.sport', 'o.udp.dport', 'vx.flags', 'vx.vni'];
  const out: Fields = {};
  for (const k of pick) if (f[k] !== undefined) out[k] = f[k]!;
  out['decap.drop'] = wireDropName(WireDrop.NONE);
  out['decap.inner'] = `${VXLAN_HEADROOM}-${String(f['frame.len'])}`;
  out['decap.gpid'] = gbp ? f['vx.b23']! : 0;
  return out;
}

function decapFields(drop: number, r: DecapResult): Fields {
  if (drop !== WireDrop.NONE) return { 'decap.drop': wireDropName(drop) };
  return {
    'decap.drop': wireDropName(drop), 'o.ip.src': formatIpv4(r.outerSrcIp), 'o.ip.dst': formatIpv4(r.outerDstIp),
    'o.ip.ttl': r.outerTtl, 'o.ip.dscp': r.outerTos >>> 2, 'o.ip.ecn': r.outerTos & 3, 'o.udp.sport': r.srcPort,
    'o.udp.dport': r.dstPort, 'vx.flags': r.vxlanFlags, 'vx.vni': r.vni, 'decap.inner': `${r.innerStart}-${r.innerEnd}`,
    'decap.gpid': r.groupPolicyId,
  };
}

/** Checks a valid frame against our Decapsulator: accepted with the intended values. */
function decapCheck(i: number, ctx: string, bytes: Buffer, f: Fields, port: number, gbp: boolean, decaps: Decaps): string[] {
  const drop = decaps.get(port, gbp).decapFrame(bytes, 0, bytes.length, decaps.res);
  // A drop is one line (the reason), not one line per field it did not fill in.
  const out = drop === WireDrop.NONE
    ? diffFields(i, ctx, decapIntended(f, gbp), { decap: decapFields(drop, decaps.res) })
    : [`frame #${i} (${ctx}): decap.drop: intended="none" decap=${JSON.stringify(wireDropName(drop))}`];
  if (gbp) {
    // Without the GBP extension enabled, G/D/A and the group id are reserved bits: strict mode drops.
    const d2 = decaps.get(port, false).decapFrame(bytes, 0, bytes.length, decaps.res);
    if (d2 !== WireDrop.VXLAN_RESERVED_SET) out.push(`frame #${i} (${ctx}): decap without GBP: returned ${wireDropName(d2)}, expected vxlan_reserved_set`);
  }
  return out;
}

/**
 * RFC 768: a UDP checksum that computes to zero is sent as 0xffff (a 0 would mean "no
 * checksum"). Both generators steer a few percent of the checksums to zero; tshark must read
 * 0xffff there (and the field comparison already requires 'good', not 'none').
 */
function allOnesCheck(
  i: number, ctx: string, which: readonly ('outer' | 'inner')[], t: TsharkFrame | undefined, seen: { outer: number; inner: number },
): string[] {
  const out: string[] = [];
  for (const w of which) {
    const v = t?.raw['udp.checksum']?.[w === 'outer' ? 0 : 1];
    if (v === '0xffff') seen[w]++;
    else out.push(`frame #${i} (${ctx}): ${w} UDP checksum computes to zero: tshark reads ${v}, expected 0xffff`);
  }
  return out;
}

/** With the default batch, some of those frames must have been generated (~2% of frames each). */
function expectAllOnesCoverage(seen: { outer: number; inner: number }): void {
  if (FRAMES < 1000) return;
  expect(Math.min(seen.outer, seen.inner), `all-ones UDP checksums seen ${JSON.stringify(seen)} (seed ${SEED})`).toBeGreaterThan(0);
}

describe.skipIf(SKIP)(`differential: codec vs tshark and scapy${SKIP ? ` [SKIPPED: ${missing.join('; ')}]` : ''}`, () => {
  let dir = '';
  let tshark: Tshark | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flatnet-diff-'));
    tshark = await Tshark.create();
  });

  afterAll(() => {
    tshark?.close();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it(`(a) ${FRAMES} codec-built frames: tshark, scapy and dissectFrame decode the intended values; Decapsulator accepts`, async () => {
    const frames = new FrameGenerator(SEED).frames(FRAMES);
    const pcap = join(dir, 'codec.pcap');
    writePcap(pcap, frames.map((f) => f.bytes));
    const [ts, sc] = await Promise.all([tshark!.dissect(pcap), scapyDissect(pcap)]);
    expect(ts.length, `tshark frames (seed ${SEED})`).toBe(FRAMES);
    expect(sc.length, `scapy frames (seed ${SEED})`).toBe(FRAMES);

    const decaps = new Decaps();
    const problems: string[] = [];
    const allOnesSeen = { outer: 0, inner: 0 };
    for (let i = 0; i < frames.length; i++) {
      const fr = frames[i]!;
      const ctx = `seed ${SEED}; ${fr.desc}`;
      const ours = fieldsOfRepr(dissectFrame(fr.bytes));
      problems.push(...diffFields(i, ctx, fr.fields, { tshark: ts[i]?.fields, scapy: sc[i]?.fields, ours }));
      problems.push(...tsharkVerdict(i, ctx, ts[i]), ...scapyProblems(i, ctx, sc[i]));
      const sport = fr.fields['o.udp.sport'] as number;
      const [lo, hi] = fr.srcPortRange;
      if (sport < lo || sport > hi) problems.push(`frame #${i} (${ctx}): o.udp.sport range: ${sport} outside the configured ${lo}-${hi}`);
      problems.push(...decapCheck(i, ctx, fr.bytes, fr.fields, fr.dstPort, fr.gbp, decaps));
      problems.push(...allOnesCheck(i, ctx, fr.allOnesUdp, ts[i], allOnesSeen));
    }
    expect(problems.length === 0 ? '' : summarize(problems), `seed ${SEED}`).toBe('');
    expectAllOnesCoverage(allOnesSeen);
  });

  it(`(b) ${FRAMES} scapy-built frames: dissectFrame, Decapsulator and tshark decode scapy's intended values`, async () => {
    const pcap = join(dir, 'scapy.pcap');
    const built = await scapyBuild(SEED, FRAMES, pcap, join(dir, 'scapy.json'));
    const ts = await tshark!.dissect(pcap);
    expect(built.length, `scapy-built frames (seed ${SEED})`).toBe(FRAMES);
    expect(ts.length, `tshark frames (seed ${SEED})`).toBe(FRAMES);

    const reader = PcapReader.open(pcap);
    const decaps = new Decaps();
    const problems: string[] = [];
    const allOnesSeen = { outer: 0, inner: 0 };
    let i = 0;
    for (const rec of reader) {
      const spec = built[i];
      if (spec === undefined) { problems.push(`pcap has more records than scapy_build.py reported`); break; }
      const ctx = `seed ${SEED}; scapy ${spec.desc}`;
      const bytes = rec.data.subarray(rec.off, rec.off + rec.capLen);
      const ours = fieldsOfRepr(dissectFrame(bytes));
      problems.push(...diffFields(i, ctx, spec.fields, { ours, tshark: ts[i]?.fields }));
      problems.push(...tsharkVerdict(i, ctx, ts[i]));
      problems.push(...decapCheck(i, ctx, bytes, spec.fields, spec.dport, spec.gbp, decaps));
      problems.push(...allOnesCheck(i, ctx, spec.allOnesUdp, ts[i], allOnesSeen));
      i++;
    }
    expect(i, `pcap records (seed ${SEED})`).toBe(FRAMES);
    expect(problems.length === 0 ? '' : summarize(problems), `seed ${SEED}`).toBe('');
    expectAllOnesCoverage(allOnesSeen);
  });

  describe('(c) broken frames', () => {
    const cases = brokenFrames();
    let ts: TsharkFrame[] = [];
    let sc: ScapyFrame[] = [];

    beforeAll(async () => {
      const pcap = join(dir, 'broken.pcap');
      writePcap(pcap, cases.map((c) => c.bytes));
      [ts, sc] = await Promise.all([tshark!.dissect(pcap), scapyDissect(pcap)]);
    });

    it('every broken frame reached both dissectors', () => {
      expect(ts.length).toBe(cases.length);
      expect(sc.length).toBe(cases.length);
    });

    it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
      const c = cases[i]!;
      const t = ts[i]!, s = sc[i]!;
      const tsharkObjects = t.malformed || t.experts.some((e) => e.severity >= ExpertSeverity.ERROR);
      const ours = dissectFrame(c.bytes);
      const oursFields = fieldsOfRepr(ours);
      const drop = new Decapsulator({ port: c.port, strict: true }).decapFrame(c.bytes, 0, c.bytes.length, new DecapResult());
      const experts = t.experts.map((e) => `${e.severity.toString(16)} ${e.message}`).join(' | ');

      expect(wireDropName(drop), 'our Decapsulator').toBe(wireDropName(c.drop));
      expect(tsharkObjects, `tshark malformed/expert error (${t.protocols}; experts: ${experts})`).toBe(c.tsharkObjects);
      if (c.oursMalformed !== undefined) {
        expect(ours.malformed?.layer, 'our dissectFrame: the layer it calls malformed').toBe(c.oursMalformed);
      }
      // Field oracles: every field listed must read the same in tshark, scapy and our dissector.
      for (const [k, v] of Object.entries(c.fields)) {
        const got = { tshark: t.fields[k], scapy: s.fields?.[k], ours: oursFields[k] };
        expect(got, `field ${k} (scapy ${s.error ?? s.layers})`).toEqual({ tshark: v, scapy: v, ours: v });
      }
      c.extra?.(t, s);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Broken frames: a valid base frame, then exactly one defect (checksums re-filled unless the
// defect is the checksum).

interface BrokenCase {
  readonly name: string;
  readonly bytes: Buffer;
  /** UDP port the Decapsulator is configured for. */
  readonly port: number;
  readonly drop: WireDrop;
  /** Does tshark report a malformed packet or an expert error? */
  readonly tsharkObjects: boolean;
  /** The layer our dissectFrame reports as malformed (undefined: not asserted). */
  readonly oursMalformed?: string;
  /** Fields all three decoders must read the same, with the value given. */
  readonly fields: Fields;
  /** Further dissector-specific assertions. */
  readonly extra?: (t: TsharkFrame, s: ScapyFrame) => void;
}

const SRC_IP = parseIpv4('198.51.100.10');
const DST_IP = parseIpv4('198.51.100.20');

/** A valid frame: an ICMP echo between two pods, VNI 4242, through a fresh template. */
function baseFrame(udpChecksum: boolean, dstPort = 4789): Buffer {
  const payload = 24;
  const innerLen = 14 + 20 + 8 + payload;
  const b = Buffer.alloc(VXLAN_HEADROOM + innerLen);
  const s = VXLAN_HEADROOM;
  new EthernetView().reset(b, s, b.length).emit(parseMac('02:00:0a:f4:01:02'), parseMac('02:00:0a:f4:02:03'), EtherType.IPV4);
  new Ipv4View().reset(b, s + 14, b.length).emit(parseIpv4('10.244.1.2'), parseIpv4('10.244.2.3'), IpProto.ICMP, innerLen - 14, 64, 0, 7, 0x4000);
  for (let i = 0; i < payload; i++) b[s + 42 + i] = i;
  const icmp = new Icmpv4View().reset(b, s + 34, b.length);
  icmp.emitHeader(8, 0, 0x1234_0001);
  icmp.fillChecksum();
  new EncapTemplate({
    srcMac: parseMac('02:00:c6:33:64:0a'), dstMac: parseMac('02:00:c6:33:64:14'), srcIp: SRC_IP, dstIp: DST_IP,
    vni: 4242, dstPort, udpChecksum,
  }).encap(b, s, b.length);
  return b;
}

/** Re-fills the outer IPv4 checksum, and the outer UDP checksum when it is in use. */
function refill(b: Buffer): Buffer {
  new Ipv4View().reset(b, OUTER_IP_OFF, b.length).fillChecksum();
  const u = new UdpView().reset(b, OUTER_UDP_OFF, b.length);
  if (u.checksum !== 0) u.fillChecksum(SRC_IP, DST_IP);
  return b;
}

/** Cuts the frame to `udpPayload` bytes of UDP payload and fixes both lengths. */
function truncateUdpPayload(b: Buffer, udpPayload: number): Buffer {
  const c = Buffer.from(b.subarray(0, OUTER_UDP_OFF + 8 + udpPayload));
  new Ipv4View().reset(c, OUTER_IP_OFF, c.length).totalLen = c.length - OUTER_IP_OFF;
  new UdpView().reset(c, OUTER_UDP_OFF, c.length).length = 8 + udpPayload;
  return refill(c);
}

function brokenFrames(): BrokenCase[] {
  const vni = { 'vx.vni': 4242 };
  const cases: BrokenCase[] = [];

  {
    const b = baseFrame(false);
    b[OUTER_IP_OFF + 10] = b[OUTER_IP_OFF + 10]! ^ 0xff; // header checksum
    cases.push({
      name: 'bad outer IPv4 header checksum', bytes: b, port: 4789, drop: WireDrop.IPV4_BAD_CHECKSUM, tsharkObjects: true,
      fields: { 'o.ip.csum': 'bad', 'o.udp.csum': 'none', ...vni },
    });
  }
  {
    const b = baseFrame(true);
    b[OUTER_UDP_OFF + 6] = b[OUTER_UDP_OFF + 6]! ^ 0x01; // UDP checksum
    cases.push({
      name: 'bad outer UDP checksum', bytes: b, port: 4789, drop: WireDrop.UDP_BAD_CHECKSUM, tsharkObjects: true,
      fields: { 'o.ip.csum': 'good', 'o.udp.csum': 'bad', ...vni },
    });
  }
  {
    // IPv4 total length 8 bytes beyond the frame: a capture cut short, or a lie.
    const b = baseFrame(false);
    const ip = new Ipv4View().reset(b, OUTER_IP_OFF, b.length);
    ip.totalLen = ip.totalLen + 8;
    ip.fillChecksum();
    cases.push({
      name: 'outer IPv4 total length beyond the frame', bytes: b, port: 4789, drop: WireDrop.IPV4_TRUNCATED, tsharkObjects: true,
      oursMalformed: 'ipv4', fields: {},
      extra: (t) => {
        // The complaint is the length, not the (re-filled) checksum.
        expect(t.fields['o.ip.csum'], 'tshark outer IPv4 checksum').toBe('good');
        expect(t.experts.map((e) => e.message).join(' | '), 'tshark expert').toMatch(/total length/i);
      },
    });
  }
  {
    const b = baseFrame(false);
    const u = new UdpView().reset(b, OUTER_UDP_OFF, b.length);
    u.length = u.length + 8;
    cases.push({
      name: 'outer UDP length beyond the IPv4 payload', bytes: b, port: 4789, drop: WireDrop.UDP_BAD_LEN, tsharkObjects: true,
      oursMalformed: 'udp', fields: { 'o.ip.csum': 'good' },
    });
  }
  cases.push({
    name: 'VXLAN header truncated (4 of 8 bytes)', bytes: truncateUdpPayload(baseFrame(false), 4), port: 4789,
    drop: WireDrop.VXLAN_TRUNCATED, tsharkObjects: true, oursMalformed: 'vxlan', fields: { 'o.ip.csum': 'good', 'o.udp.len': 12 },
  });
  cases.push({
    name: 'inner Ethernet truncated (6 bytes after VXLAN)', bytes: truncateUdpPayload(baseFrame(true), 8 + 6), port: 4789,
    drop: WireDrop.INNER_ETH_TRUNCATED, tsharkObjects: true, oursMalformed: 'eth',
    fields: { 'o.udp.csum': 'good', 'vx.i': true, ...vni },
  });
  {
    const b = baseFrame(true);
    b[VXLAN_OFF] = 0x00; // I flag clear
    cases.push({
      name: 'VXLAN I flag clear', bytes: refill(b), port: 4789, drop: WireDrop.VXLAN_NO_I_FLAG, tsharkObjects: false,
      fields: { 'vx.flags': 0, 'vx.i': false, 'o.udp.csum': 'good', 'i.icmp.csum': 'good', ...vni },
    });
  }
  {
    // 0x04 is reserved in RFC 7348 but is VXLAN-GPE's P bit: scapy 2.5 reads the header as GPE
    // ("NextProtocol"), splitting bytes 1-3 differently; the VNI and the flags byte still agree.
    const b = baseFrame(false);
    b[VXLAN_OFF] = 0x0c;
    cases.push({
      name: 'VXLAN reserved flag 0x04 set (scapy: GPE P bit)', bytes: b, port: 4789, drop: WireDrop.VXLAN_RESERVED_SET, tsharkObjects: false,
      fields: { 'vx.flags': 0x0c, 'vx.i': true, ...vni },
      extra: (t, s) => {
        expect(t.raw['vxlan.flags_reserved'], 'tshark vxlan.flags_reserved').toEqual(['0x0400']);
        expect(s.fields?.['vx.gpe_next_protocol'], 'scapy reads the GPE NextProtocol byte').toBe(0);
      },
    });
  }
  {
    const b = baseFrame(false, 8472);
    b[VXLAN_OFF + 7] = 0xff; // the last reserved byte
    cases.push({
      name: 'VXLAN reserved byte 7 = 0xff (port 8472)', bytes: b, port: 8472, drop: WireDrop.VXLAN_RESERVED_SET, tsharkObjects: false,
      fields: { 'vx.rsvd8': 0xff, 'vx.flags': 0x08, 'o.udp.dport': 8472, ...vni },
    });
  }
  {
    const b = baseFrame(false);
    b[VXLAN_OFF + 3] = 0x01; // reserved bytes 1-3 (the GBP group id, but G is clear)
    cases.push({
      name: 'VXLAN reserved bytes 1-3 non-zero without G', bytes: b, port: 4789, drop: WireDrop.VXLAN_RESERVED_SET, tsharkObjects: false,
      fields: { 'vx.b23': 1, 'vx.g': false, 'vx.flags': 0x08, ...vni },
    });
  }
  return cases;
}
