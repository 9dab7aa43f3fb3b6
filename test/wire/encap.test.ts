import { describe, expect, it } from 'vitest';
import { EtherType, UdpPort } from '../../src/wire/consts.js';
import { DecapResult, Decapsulator } from '../../src/wire/decap.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import {
  DfPolicy, EncapTemplate, OUTER_IP_OFF, OUTER_UDP_OFF, SRC_PORT_RANGE_LINUX, SRC_PORT_RANGE_RFC, VXLAN_HEADROOM, VXLAN_IP_HEADROOM, VXLAN_OFF,
  VXLAN_OVERHEAD, ecnEncapsulate, flowHash, flowHash16, srcPortFor, type EncapOptions,
} from '../../src/wire/encap.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Ecn, Ipv4View } from '../../src/wire/ipv4.js';
import { UdpView } from '../../src/wire/udp.js';
import { VxlanView } from '../../src/wire/vxlan.js';
import { buildInner, outerOptions, type InnerSpec } from '../support/frames.js';
import { checksumRef, ipRef, onesSumRef, prng, pseudoHeaderRef, verifiesRef } from '../support/refs.js';

const BASE: EncapOptions = outerOptions();

/** A slot: `head` poison bytes, the inner frame, `tail` poison bytes. */
function slot(inner: Buffer, head = VXLAN_HEADROOM, tail = 0): { b: Buffer; start: number; end: number } {
  const b = Buffer.alloc(head + inner.length + tail, 0xa5);
  inner.copy(b, head);
  return { b, start: head, end: head + inner.length };
}

/** encapOnce: a fresh template, one frame; returns the outer frame. */
function encapOnce(inner: Buffer, o: Partial<EncapOptions> = {}): Buffer {
  const { b, start, end } = slot(inner);
  const t = new EncapTemplate({ ...BASE, ...o });
  return b.subarray(t.encap(b, start, end), end);
}

const ip4 = (frame: Buffer): Buffer => frame.subarray(OUTER_IP_OFF, OUTER_UDP_OFF);

describe('encapsulation layout', () => {
  it('reserves the kernel\'s VXLAN_HEADROOM (20 + 8 + 8 + 14 = 50)', () => {
    expect(VXLAN_HEADROOM).toBe(20 + 8 + 8 + 14);
    expect([OUTER_IP_OFF, OUTER_UDP_OFF, VXLAN_OFF, VXLAN_HEADROOM, VXLAN_OVERHEAD, VXLAN_IP_HEADROOM]).toEqual([14, 34, 42, 50, 50, 36]);
  });
});

describe('EncapTemplate.encap', () => {
  const inner = buildInner({ kind: 'icmp', payloadLen: 56 }); // 98 bytes, like a default ping

  it('writes every outer field where RFC 7348 and the kernel put it', () => {
    const f = encapOnce(inner);
    expect(f.length).toBe(50 + 98);
    // Ethernet
    expect(f.toString('hex', 0, 6)).toBe('0200c6336402');
    expect(f.toString('hex', 6, 12)).toBe('0200c6336401');
    expect(f.readUInt16BE(12)).toBe(0x0800);
    // IPv4
    expect(f[14]).toBe(0x45);
    expect(f[15]).toBe(0); // TOS: DSCP 0, inner Not-ECT
    expect(f.readUInt16BE(16)).toBe(20 + 8 + 8 + 98);
    expect(f.readUInt16BE(18)).toBe(0); // first identification
    expect(f.readUInt16BE(20)).toBe(0); // DF clear by default, not a fragment
    expect(f[22]).toBe(64);
    expect(f[23]).toBe(17);
    expect(verifiesRef(ip4(f))).toBe(true);
    expect(f.readUInt32BE(26)).toBe(ipRef('198.51.100.1'));
    expect(f.readUInt32BE(30)).toBe(ipRef('198.51.100.2'));
    // UDP
    const sport = f.readUInt16BE(34);
    expect(sport).toBeGreaterThanOrEqual(49152);
    expect(f.readUInt16BE(36)).toBe(4789);
    expect(f.readUInt16BE(38)).toBe(8 + 8 + 98);
    expect(f.readUInt16BE(40)).toBe(0); // no UDP checksum by default (RFC 7348 §5)
    // VXLAN: I flag, VNI 42, reserved zero
    expect(f.toString('hex', 42, 50)).toBe('0800000000002a00');
    expect(f.subarray(50)).toEqual(inner);
  });

  it.each<[string, Partial<EncapOptions>, InnerSpec]>([
    ['defaults', {}, { kind: 'icmp' }],
    ['DF set, TTL 1, DSCP 46, port 8472', { df: DfPolicy.SET, ttl: 1, dscp: 46, dstPort: 8472 }, { kind: 'udp' }],
    ['VNI 0xffffff over an ARP frame', { vni: 0xffffff }, { kind: 'arp' }],
    ['a big frame', { ttl: 255 }, { kind: 'tcp', payloadLen: 1400 }],
  ])('equals an independent build with the views: %s', (_name, o, spec) => {
    const inner = buildInner(spec);
    const f = encapOnce(inner, o);
    const opts = { ...BASE, ...o };
    const h = Buffer.alloc(VXLAN_HEADROOM);
    new EthernetView().reset(h, 0, 50).emit(opts.dstMac, opts.srcMac, EtherType.IPV4);
    new Ipv4View().reset(h, 14, 50).emit(opts.srcIp, opts.dstIp, 17, inner.length + 36, opts.ttl ?? 64, (opts.dscp as number ?? 0) << 2, 0, opts.df === DfPolicy.SET ? 0x4000 : 0);
    new UdpView().reset(h, 34, 50).emit(f.readUInt16BE(34), opts.dstPort ?? 4789, inner.length + 16);
    new VxlanView().reset(h, 42, 50).emit(opts.vni);
    expect(f.subarray(0, 50)).toEqual(h);
  });

  it('writes in front of the frame: the frame neither moves nor changes, nothing else is touched', () => {
    const { b, start, end } = slot(inner, 64, 16);
    const before = Buffer.from(b);
    const o = new EncapTemplate(BASE).encap(b, start, end);
    expect(o).toBe(start - VXLAN_HEADROOM);
    expect(b.subarray(start, end)).toEqual(inner);
    expect(b.subarray(0, o)).toEqual(before.subarray(0, o));
    expect(b.subarray(end)).toEqual(before.subarray(end));
  });

  it('works with exactly 50 bytes of headroom and with a minimal 14-byte frame', () => {
    const tiny = buildInner({ kind: 'arp' }).subarray(0, 14);
    const { b, start, end } = slot(tiny, 50);
    expect(new EncapTemplate(BASE).encap(b, start, end)).toBe(0);
    expect(b.readUInt16BE(16)).toBe(14 + 36);
    expect(b.readUInt16BE(38)).toBe(14 + 16);
  });

  it.each<[string, InnerSpec, Partial<EncapOptions>]>([
    ['ARP', { kind: 'arp' }, {}],
    ['ICMP with IPv4 options', { kind: 'icmp', ipOptions: Buffer.from('94040000', 'hex') }, {}],
    ['UDP, outer UDP checksum on', { kind: 'udp' }, { udpChecksum: true }],
    ['TCP over 802.1Q, port 8472', { kind: 'tcp', vlan: 5 }, { dstPort: 8472 }],
    ['a jumbo frame', { kind: 'udp', payloadLen: 8900 }, { udpChecksum: true }],
  ])('decap(encap(x)) returns x\'s window: %s', (_name, spec, o) => {
    const inner = buildInner(spec);
    const { b, start, end } = slot(inner, 80, 7);
    const t = new EncapTemplate({ ...BASE, ...o });
    const outer = t.encap(b, start, end);
    const r = new DecapResult();
    const d = new Decapsulator({ port: o.dstPort ?? UdpPort.VXLAN });
    expect(d.decapFrame(b, outer, end, r)).toBe(WireDrop.NONE);
    expect([r.innerStart, r.innerEnd, r.vni, r.outerSrcIp, r.outerDstIp, r.dstPort]).toEqual([start, end, 42, BASE.srcIp, BASE.dstIp, o.dstPort ?? 4789]);
    expect(r.srcPort).toBe(b.readUInt16BE(outer + 34));
    expect(b.subarray(r.innerStart, r.innerEnd)).toEqual(inner);
  });

  it('always writes a valid IPv4 header checksum (random frames, TOS and options)', () => {
    const rand = prng(6040);
    for (let n = 0; n < 500; n++) {
      const o: Partial<EncapOptions> = {
        ttl: Math.floor(rand() * 256),
        df: [DfPolicy.SET, DfPolicy.UNSET, DfPolicy.INHERIT][n % 3]!,
        dscp: rand() < 0.5 ? 'inherit' : Math.floor(rand() * 64),
        srcIp: Math.floor(rand() * 2 ** 32),
        dstIp: Math.floor(rand() * 2 ** 32),
      };
      const t = new EncapTemplate({ ...BASE, ...o });
      for (let k = 0; k < 4; k++) {
        const inner = buildInner({ kind: 'udp', tos: Math.floor(rand() * 256), df: rand() < 0.5, payloadLen: Math.floor(rand() * 1500) });
        const { b, start, end } = slot(inner);
        const outer = t.encap(b, start, end);
        expect(verifiesRef(b.subarray(outer + 14, outer + 34))).toBe(true);
      }
    }
  });

  it('increments the identification per packet and wraps at 65535', () => {
    const t = new EncapTemplate(BASE);
    const { b, start, end } = slot(inner);
    const ids: number[] = [];
    for (let i = 0; i < 65538; i++) {
      const o = t.encap(b, start, end);
      if (i < 3 || i >= 65534) ids.push(b.readUInt16BE(o + 18));
    }
    expect(ids).toEqual([0, 1, 2, 65534, 65535, 0, 1]);
    expect(verifiesRef(b.subarray(14, 34))).toBe(true);
  });

  it('keeps one identification counter per template', () => {
    const a = new EncapTemplate(BASE), c = new EncapTemplate({ ...BASE, dstIp: ipRef('198.51.100.3') });
    const { b, start, end } = slot(inner);
    const id = (t: EncapTemplate): number => b.readUInt16BE(t.encap(b, start, end) + 18);
    expect([id(a), id(a), id(c), id(a), id(c)]).toEqual([0, 1, 0, 2, 1]);
  });

  it.each([
    [undefined, 64],
    [1, 1],
    [255, 255],
  ])('TTL option %s gives TTL %i', (ttl, want) => {
    expect(encapOnce(inner, ttl === undefined ? {} : { ttl })[22]).toBe(want);
  });

  it.each<[DfPolicy | undefined, string, InnerSpec, number]>([
    [undefined, 'an inner DF packet', { kind: 'udp', df: true }, 0],
    [DfPolicy.UNSET, 'an inner DF packet', { kind: 'udp', df: true }, 0],
    [DfPolicy.SET, 'an inner packet without DF', { kind: 'udp', df: false }, 0x4000],
    [DfPolicy.SET, 'an ARP frame', { kind: 'arp' }, 0x4000],
    [DfPolicy.INHERIT, 'an inner DF packet', { kind: 'udp', df: true }, 0x4000],
    [DfPolicy.INHERIT, 'an inner packet without DF', { kind: 'udp', df: false }, 0],
    [DfPolicy.INHERIT, 'an ARP frame', { kind: 'arp' }, 0],
  ])('DF policy %s over %s gives flags %i', (df, _what, spec, want) => {
    const f = encapOnce(buildInner(spec), df === undefined ? {} : { df });
    expect(f.readUInt16BE(20)).toBe(want);
    expect(verifiesRef(ip4(f))).toBe(true);
  });

  // RFC 6040 §4.1, normal mode: the outer ECN field is a copy of the inner one, for all four
  // codepoints; a non-IP inner frame is Not-ECT. DSCP is either fixed or the inner one.
  const ECN_CASES = [
    ['Not-ECT', 0b00],
    ['ECT(1)', 0b01],
    ['ECT(0)', 0b10],
    ['CE', 0b11],
  ] as const;

  it.each(ECN_CASES)('copies inner ECN %s to the outer header (RFC 6040 normal mode)', (_name, ecn) => {
    const f = encapOnce(buildInner({ kind: 'tcp', tos: (10 << 2) | ecn }));
    expect(f[15]).toBe(ecn); // DSCP 0 (fixed default), ECN copied
    expect(ecnEncapsulate(ecn)).toBe(ecn);
  });

  it.each(ECN_CASES)('with a fixed DSCP 46, inner ECN %s still comes through', (_name, ecn) => {
    const f = encapOnce(buildInner({ kind: 'udp', tos: (10 << 2) | ecn }), { dscp: 46 });
    expect(f[15]).toBe((46 << 2) | ecn);
    expect(verifiesRef(ip4(f))).toBe(true);
  });

  it.each(ECN_CASES)('with DSCP inherit, the outer TOS is the inner TOS (ECN %s)', (_name, ecn) => {
    const f = encapOnce(buildInner({ kind: 'udp', tos: (34 << 2) | ecn }), { dscp: 'inherit' });
    expect(f[15]).toBe((34 << 2) | ecn);
    expect(verifiesRef(ip4(f))).toBe(true);
  });

  it.each<[string, Partial<EncapOptions>, number]>([
    ['default', {}, 0],
    ['DSCP 46', { dscp: 46 }, 46 << 2],
    ['DSCP inherit', { dscp: 'inherit' }, 0],
  ])('an ARP frame gets the %s TOS with Not-ECT', (_name, o, tos) => {
    expect(encapOnce(buildInner({ kind: 'arp' }), o)[15]).toBe(tos);
  });

  it.each([
    [undefined, 4789],
    [UdpPort.VXLAN_LINUX, 8472],
  ])('destination port option %s gives %i', (dstPort, want) => {
    expect(encapOnce(inner, dstPort === undefined ? {} : { dstPort }).readUInt16BE(36)).toBe(want);
  });
});

describe('UDP source port (flow entropy)', () => {
  /** The outer source port for an inner UDP flow, through a given template. */
  const portOf = (t: EncapTemplate, spec: InnerSpec): number => {
    const { b, start, end } = slot(buildInner(spec));
    return b.readUInt16BE(t.encap(b, start, end) + 34);
  };

  it.each<[string, readonly [number, number] | undefined, number, number]>([
    ['the RFC 7348 default 49152-65535', undefined, 49152, 65535],
    ['Linux\'s ip_local_port_range 32768-60999', SRC_PORT_RANGE_LINUX, 32768, 60999],
    ['a 4-port range', [4000, 4003], 4000, 4003],
    ['a single port', [1000, 1000], 1000, 1000],
  ])('always falls in %s', (_name, range, min, max) => {
    const t = new EncapTemplate(range === undefined ? BASE : { ...BASE, srcPortRange: range });
    const rand = prng(min);
    const seen = new Set<number>();
    for (let n = 0; n < 3000; n++) {
      const p = portOf(t, { kind: 'udp', srcPort: Math.floor(rand() * 65536), dstPort: Math.floor(rand() * 65536), srcIp: Math.floor(rand() * 2 ** 32) });
      expect(p).toBeGreaterThanOrEqual(min);
      expect(p).toBeLessThanOrEqual(max);
      seen.add(p);
    }
    if (max - min < 8) expect(seen.size).toBe(max - min + 1); // a small range is fully used
  });

  it.each<[string, readonly [number, number]]>([
    ['RFC', SRC_PORT_RANGE_RFC], ['Linux', SRC_PORT_RANGE_LINUX], ['4-port', [4000, 4003]], ['single-port', [1000, 1000]],
  ])('writes srcPortFor(h ^ (h << 16)) of flowHash() of the inner frame (%s range)', (_name, range) => {
    const t = new EncapTemplate({ ...BASE, srcPortRange: range });
    const rand = prng(range[0]);
    const kinds = ['udp', 'tcp', 'icmp', 'arp'] as const;
    for (let n = 0; n < 2000; n++) {
      const { b, start, end } = slot(buildInner({ kind: kinds[n % 4]!, srcPort: Math.floor(rand() * 65536), srcIp: Math.floor(rand() * 2 ** 32), srcMac: Math.floor(rand() * 2 ** 40) * 2 }));
      const h = flowHash(b, start, end);
      expect(flowHash16(b, start, end)).toBe((h ^ (h << 16)) >>> 16);
      expect(b.readUInt16BE(t.encap(b, start, end) + 34)).toBe(srcPortFor(h ^ (h << 16), range[0], range[1]));
    }
  });

  it('uses the RFC range by default and exports both ranges', () => {
    expect(SRC_PORT_RANGE_RFC).toEqual([49152, 65535]);
    expect(SRC_PORT_RANGE_LINUX).toEqual([32768, 60999]);
  });

  it('gives the same flow the same port, whatever the payload, TTL, TOS or IP ID', () => {
    const t = new EncapTemplate(BASE);
    const ports = new Set<number>();
    for (let n = 0; n < 50; n++) ports.add(portOf(t, { kind: 'tcp', payloadLen: n * 7, tos: n & 3, df: n % 2 === 0 }));
    expect(ports.size).toBe(1);
  });

  it('gives the same non-IP flow (MACs + EtherType) the same port', () => {
    const t = new EncapTemplate(BASE);
    const a = portOf(t, { kind: 'arp' });
    const { b, start, end } = slot(buildInner({ kind: 'arp' }));
    b[end - 1] = 0x77; // a different ARP target: not part of the flow
    expect(b.readUInt16BE(t.encap(b, start, end) + 34)).toBe(a);
  });

  it.each<[string, (n: number) => InnerSpec]>([
    ['inner UDP source ports', (n) => ({ kind: 'udp', srcPort: 1024 + n })],
    ['inner TCP destination ports', (n) => ({ kind: 'tcp', dstPort: 1024 + n })],
    ['inner source addresses', (n) => ({ kind: 'udp', srcIp: ipRef('10.244.0.0') + n })],
    ['inner destination addresses', (n) => ({ kind: 'icmp', dstIp: ipRef('10.244.0.0') + n })],
    ['inner MACs of non-IP frames', (n) => ({ kind: 'arp', srcMac: 0x0e00_0000_0000 + n })],
  ])('spreads flows that differ only in %s over the range', (_name, spec) => {
    const t = new EncapTemplate(BASE);
    const ports = new Set<number>();
    let low = 0;
    for (let n = 0; n < 1000; n++) {
      const p = portOf(t, spec(n));
      ports.add(p);
      if (p < 49152 + 8192) low++;
    }
    // 1000 flows over 16384 ports: a uniform hash leaves about 970 distinct ports, half in each half.
    expect(ports.size).toBeGreaterThan(900);
    expect(low).toBeGreaterThan(400);
    expect(low).toBeLessThan(600);
  });

  it('hashes the 5-tuple, so the protocol alone changes the port', () => {
    const t = new EncapTemplate(BASE);
    const { b, start, end } = slot(buildInner({ kind: 'udp', srcPort: 7000, dstPort: 7001 }));
    const ports = new Set<number>();
    for (const proto of [17, 6, 132, 136]) {
      b[start + 14 + 9] = proto;
      ports.add(b.readUInt16BE(t.encap(b, start, end) + 34));
    }
    expect(ports.size).toBe(4);
  });

  it('ignores the bytes where ports would be in non-first fragments', () => {
    const t = new EncapTemplate(BASE);
    const portWith = (fragWord: number, l4: number): number => {
      const { b, start, end } = slot(buildInner({ kind: 'udp' }));
      b.writeUInt16BE(fragWord, start + 14 + 6);
      b.writeUInt32BE(l4, start + 34);
      return b.readUInt16BE(t.encap(b, start, end) + 34);
    };
    expect(portWith(0x0010, 0x11112222)).toBe(portWith(0x0010, 0x33334444)); // offset 128: no ports
    expect(portWith(0x2000, 0x11112222)).not.toBe(portWith(0x2000, 0x33334444)); // first fragment: ports
  });

  it('flowHash reads only inside [start, end)', () => {
    for (const spec of [{ kind: 'udp' }, { kind: 'arp' }, { kind: 'tcp', ipOptions: Buffer.from('94040000', 'hex') }] as InnerSpec[]) {
      const inner = buildInner(spec);
      const a = Buffer.concat([Buffer.alloc(9, 0x00), inner, Buffer.alloc(9, 0x00)]);
      const c = Buffer.concat([Buffer.alloc(9, 0xff), inner, Buffer.alloc(9, 0xff)]);
      for (let end = 9; end <= 9 + inner.length; end++) expect(flowHash(a, 9, end)).toBe(flowHash(c, 9, end));
    }
  });

  it('srcPortFor maps the whole 32-bit hash space monotonically onto [min, max]', () => {
    expect(srcPortFor(0, 49152, 65535)).toBe(49152);
    expect(srcPortFor(0xffff_ffff, 49152, 65535)).toBe(65535);
    expect(srcPortFor(0x8000_0000, 49152, 65535)).toBe(49152 + 8192);
    expect(srcPortFor(-1, 32768, 60999)).toBe(60999); // a signed int32 hash is taken as unsigned
    let prev = 0;
    for (let h = 0; h < 2 ** 32; h += 999_983) {
      const p = srcPortFor(h, 32768, 60999);
      expect(p).toBeGreaterThanOrEqual(prev);
      prev = p;
    }
  });
});

describe('outer UDP checksum', () => {
  const udpOf = (f: Buffer): Buffer => f.subarray(OUTER_UDP_OFF);
  const pseudo = (f: Buffer): Buffer => pseudoHeaderRef(f.readUInt32BE(26), f.readUInt32BE(30), 17, f.length - OUTER_UDP_OFF);

  it('is zero when off (the default)', () => {
    for (const kind of ['arp', 'icmp', 'udp', 'tcp'] as const) expect(encapOnce(buildInner({ kind })).readUInt16BE(40)).toBe(0);
  });

  it.each(['arp', 'icmp', 'udp', 'tcp'] as const)('verifies when on (inner %s)', (kind) => {
    const f = encapOnce(buildInner({ kind, payloadLen: 33 }), { udpChecksum: true });
    expect(f.readUInt16BE(40)).not.toBe(0);
    expect(verifiesRef(pseudo(f), udpOf(f))).toBe(true);
  });

  it('sends a computed 0 as 0xffff', () => {
    // Find the inner payload word that makes the datagram's sum 0xffff: its checksum computes to
    // 0. The word sits after the inner L4 ports, so the flow hash (and the source port) is unchanged.
    const inner = buildInner({ kind: 'udp', payloadLen: 20 });
    const first = encapOnce(inner, { udpChecksum: true });
    const z = Buffer.from(udpOf(first));
    z.writeUInt16BE(0, 6);
    const at = z.length - 2; // the last inner payload word (at an even offset from the UDP header)
    const s = onesSumRef(pseudo(first), z);
    const w = z.readUInt16BE(at);
    // want s - w + w2 == 0xffff (mod 0xffff): w2 = w - s (mod 0xffff)
    const w2 = ((w - s) % 0xffff + 0xffff) % 0xffff;
    const tuned = Buffer.from(inner);
    tuned.writeUInt16BE(w2, tuned.length - 2);
    const f = encapOnce(tuned, { udpChecksum: true });
    const zz = Buffer.from(udpOf(f));
    zz.writeUInt16BE(0, 6);
    expect(checksumRef(pseudo(f), zz)).toBe(0);
    expect(f.readUInt16BE(40)).toBe(0xffff);
    expect(verifiesRef(pseudo(f), udpOf(f))).toBe(true);
  });
});

describe('EncapTemplate options', () => {
  it.each([
    ['VNI above 24 bits', { vni: 0x100_0000 }],
    ['negative VNI', { vni: -1 }],
    ['inverted source port range', { srcPortRange: [60000, 50000] as const }],
    ['source port 0', { srcPortRange: [0, 10] as const }],
    ['DSCP 64', { dscp: 64 }],
    ['negative DSCP', { dscp: -1 }],
    ['fractional DSCP', { dscp: 1.5 }],
    ['TTL 256', { ttl: 256 }],
    ['negative TTL', { ttl: -1 }],
  ])('rejects %s with a RangeError', (_name, o) => {
    expect(() => new EncapTemplate({ ...BASE, ...o })).toThrow(RangeError);
  });

  // Regression: DSCP 64 used to be accepted, truncated to 0 in the TOS byte but added in full to
  // the pre-summed header checksum, so every packet left with a bad IPv4 checksum.
  it.each([0, 46, 63])('DSCP %i gives a header that verifies', (dscp) => {
    const t = new EncapTemplate({ ...BASE, dscp });
    const b = Buffer.alloc(VXLAN_HEADROOM + 64, 0xa5);
    const o = t.encap(b, VXLAN_HEADROOM, b.length);
    expect(b[o + 15]! >>> 2).toBe(dscp);
    expect(verifiesRef(b.subarray(o + 14, o + 34))).toBe(true);
  });

  it('exposes the configured destination', () => {
    const t = new EncapTemplate({ ...BASE, dstPort: 8472, udpChecksum: true, srcPortRange: SRC_PORT_RANGE_LINUX });
    expect([t.srcIp, t.dstIp, t.vni, t.dstPort, t.udpChecksum, t.srcPortMin, t.srcPortMax]).toEqual([BASE.srcIp, BASE.dstIp, 42, 8472, true, 32768, 60999]);
    expect(t.header.length).toBe(VXLAN_HEADROOM);
  });

  it('Ecn codepoints are RFC 3168\'s', () => {
    expect(Ecn).toEqual({ NOT_ECT: 0, ECT1: 1, ECT0: 2, CE: 3 });
  });
});
