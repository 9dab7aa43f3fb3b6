import { describe, expect, it } from 'vitest';
import { UdpPort } from '../../src/wire/consts.js';
import { DecapResult, Decapsulator, VniSet, applyEcnDecap, type DecapPolicy } from '../../src/wire/decap.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import { ecnDecapsulate } from '../../src/wire/encap.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { VXLAN_FLAG_G, VXLAN_GBP_A, VXLAN_GBP_D } from '../../src/wire/vxlan.js';
import { INNER_SRC_MAC, buildInner, encapsulate, validCorpus } from '../support/frames.js';
import { checksumRef, macRef, pseudoHeaderRef, verifiesRef } from '../support/refs.js';

// Offsets in an untagged outer frame.
const IP = 14, UDP = 34, VX = 42, IN = 50;
const OWN_MAC = macRef('0e:00:0a:f4:ff:ff');
/** The policy every fault row runs under: the frame's own VNI and port; a VTEP MAC of our own. */
const POLICY: DecapPolicy = { port: UdpPort.VXLAN, vnis: new VniSet([42]), ownMac: OWN_MAC };

const valid = (udpChecksum: boolean): Buffer => encapsulate(buildInner({ kind: 'icmp', payloadLen: 56 }), { udpChecksum });

function decap(f: Buffer, policy: DecapPolicy = POLICY, out = new DecapResult()): WireDrop {
  return new Decapsulator(policy).decapFrame(f, 0, f.length, out);
}

const dropName = (d: number): string => wireDropName(d) ?? `#${d}`;

/** Edits outer IPv4 header bytes, keeping its checksum exactly as valid (or as wrong) as it was. */
function editIp(f: Buffer, edit: () => void): Buffer {
  const ok = verifiesRef(f.subarray(IP, IP + 20));
  edit();
  f.writeUInt16BE(0, IP + 10);
  const c = checksumRef(f.subarray(IP, IP + 20));
  f.writeUInt16BE(ok ? c : c ^ 0x0100, IP + 10);
  return f;
}

/** The outer UDP datagram's checksum status: 'none', 'good', 'bad', or null when its length does not fit. */
function udpStatus(f: Buffer): 'none' | 'good' | 'bad' | null {
  const len = f.readUInt16BE(UDP + 4);
  const ipEnd = IP + f.readUInt16BE(IP + 2);
  if (len < 8 || UDP + len > Math.min(ipEnd, f.length)) return null;
  if (f.readUInt16BE(UDP + 6) === 0) return 'none';
  return verifiesRef(pseudoHeaderRef(f.readUInt32BE(IP + 12), f.readUInt32BE(IP + 16), 17, len), f.subarray(UDP, UDP + len)) ? 'good' : 'bad';
}

/** Edits UDP header or payload bytes, keeping the UDP checksum as it was: absent, valid or wrong. */
function editUdp(f: Buffer, edit: () => void): Buffer {
  const before = udpStatus(f);
  edit();
  const len = f.readUInt16BE(UDP + 4);
  if (before === 'none' || before === null || udpStatus(f) === null) return f;
  f.writeUInt16BE(0, UDP + 6);
  let c = checksumRef(pseudoHeaderRef(f.readUInt32BE(IP + 12), f.readUInt32BE(IP + 16), 17, len), f.subarray(UDP, UDP + len));
  if (c === 0) c = 0xffff;
  f.writeUInt16BE(before === 'good' ? c : c ^ 0x0100, UDP + 6);
  return f;
}

/**
 * One minimal fault per WireDrop reason decap can return, in the order decap must check them
 * (the order: outer lengths, IPv4 sanity, UDP length, VXLAN I flag, reserved bits, VNI,
 * then the inner Ethernet header). Each takes a valid frame and returns the faulty one.
 */
const FAULTS: readonly (readonly [WireDrop, (f: Buffer) => Buffer])[] = [
  [WireDrop.ETH_TRUNCATED, (f) => f.subarray(0, 13)],
  [WireDrop.OUTER_NOT_IPV4, (f) => { f.writeUInt16BE(0x86dd, 12); return f; }],
  [WireDrop.IPV4_TRUNCATED, (f) => f.subarray(0, IP + 19)],
  [WireDrop.IPV4_BAD_VERSION, (f) => editIp(f, () => { f[IP] = 0x65; })],
  [WireDrop.IPV4_BAD_IHL, (f) => editIp(f, () => { f[IP] = (f[IP]! & 0xf0) | 4; })],
  [WireDrop.IPV4_BAD_TOTAL_LEN, (f) => editIp(f, () => { f.writeUInt16BE(19, IP + 2); })],
  [WireDrop.IPV4_BAD_CHECKSUM, (f) => { f[IP + 11]! ^= 0x01; return f; }],
  [WireDrop.IPV4_FRAGMENT, (f) => editIp(f, () => { f[IP + 6]! |= 0x20; })],
  [WireDrop.OUTER_NOT_UDP, (f) => editIp(f, () => { f[IP + 9] = 6; })],
  [WireDrop.UDP_TRUNCATED, (f) => editIp(f, () => { f.writeUInt16BE(20 + 7, IP + 2); })],
  [WireDrop.UDP_BAD_LEN, (f) => editUdp(f, () => { f.writeUInt16BE(7, UDP + 4); })],
  [WireDrop.UDP_BAD_CHECKSUM, (f) => { const c = f.readUInt16BE(UDP + 6); f.writeUInt16BE((c ^ 0x8000) || 0x4000, UDP + 6); return f; }],
  [WireDrop.UDP_PORT_MISMATCH, (f) => editUdp(f, () => { f.writeUInt16BE(UdpPort.VXLAN_GPE, UDP + 2); })],
  [WireDrop.VXLAN_TRUNCATED, (f) => editUdp(f, () => { f.writeUInt16BE(8 + 7, UDP + 4); })],
  [WireDrop.VXLAN_NO_I_FLAG, (f) => editUdp(f, () => { f[VX]! &= ~0x08; })],
  [WireDrop.VXLAN_RESERVED_SET, (f) => editUdp(f, () => { f[VX + 7] = 0x01; })],
  [WireDrop.VXLAN_VNI_UNKNOWN, (f) => editUdp(f, () => { f[VX + 6] = 43; })],
  [WireDrop.INNER_ETH_TRUNCATED, (f) => editUdp(f, () => { f.writeUInt16BE(8 + 8 + 13, UDP + 4); })],
  [WireDrop.INNER_SRC_MAC_INVALID, (f) => editUdp(f, () => { f.writeUIntBE(macRef('01:00:5e:00:00:01'), IN + 6, 6); })],
  [WireDrop.INNER_SRC_MAC_OURS, (f) => editUdp(f, () => { f.writeUIntBE(OWN_MAC, IN + 6, 6); })],
];

const fault = (d: WireDrop): ((f: Buffer) => Buffer) => FAULTS.find(([r]) => r === d)![1];
const withFaults = (f: Buffer, ...ds: WireDrop[]): Buffer => ds.reduce<Buffer>((acc, d) => fault(d)(acc), Buffer.from(f));

describe('Decapsulator drop reasons', () => {
  it('covers every reason decap can return, in the order it checks them', () => {
    const reasons = FAULTS.map(([d]) => d);
    const all = Object.values(WireDrop).filter((d) => d !== WireDrop.NONE && d <= WIRE_DROP_MAX && d !== WireDrop.ECN_CE_NOT_ECT); // ECN: applyEcnDecap, below
    expect(reasons).toEqual(all);
    expect([...reasons].sort((a, b) => a - b)).toEqual(reasons); // counter indexes follow the check order
  });

  it('accepts the valid frames the faults start from', () => {
    expect(decap(valid(false))).toBe(WireDrop.NONE);
    expect(decap(valid(true))).toBe(WireDrop.NONE);
  });

  it.each(FAULTS.filter(([d]) => d !== WireDrop.UDP_BAD_CHECKSUM).map(([d]) => [dropName(d), d] as const))(
    '%s from one minimal fault (no UDP checksum)', (_name, d) => {
      expect(dropName(decap(withFaults(valid(false), d)))).toBe(dropName(d));
    });

  it.each(FAULTS.map(([d]) => [dropName(d), d] as const))('%s from one minimal fault (UDP checksum on)', (_name, d) => {
    expect(dropName(decap(withFaults(valid(true), d)))).toBe(dropName(d));
  });

  // Apply the later fault first, then the earlier one (some faults cut the frame): decap must
  // report the earlier one. The two inner source MAC faults share a field, so no frame has both.
  const pairs: [string, WireDrop, WireDrop][] = [];
  for (let i = 0; i < FAULTS.length; i++) {
    for (let j = i + 1; j < FAULTS.length; j++) {
      const a = FAULTS[i]![0], b = FAULTS[j]![0];
      if (a === WireDrop.INNER_SRC_MAC_INVALID && b === WireDrop.INNER_SRC_MAC_OURS) continue;
      pairs.push([`${dropName(a)} before ${dropName(b)}`, a, b]);
    }
  }

  it.each(pairs)('reports %s', (_name, first, second) => {
    expect(dropName(decap(withFaults(valid(true), second, first)))).toBe(dropName(first));
    if (first !== WireDrop.UDP_BAD_CHECKSUM && second !== WireDrop.UDP_BAD_CHECKSUM) {
      expect(dropName(decap(withFaults(valid(false), second, first)))).toBe(dropName(first));
    }
  });

  it('calls a zero source MAC invalid even when it is configured as our own', () => {
    const f = valid(true);
    editUdp(f, () => { f.fill(0, IN + 6, IN + 12); });
    expect(decap(f, { ...POLICY, ownMac: 0 })).toBe(WireDrop.INNER_SRC_MAC_INVALID);
  });

  it.each<[string, WireDrop, (f: Buffer) => Buffer]>([
    ['a total length one beyond the frame', WireDrop.IPV4_TRUNCATED, (f) => editIp(f, () => { f.writeUInt16BE(f.length - IP + 1, IP + 2); })],
    ['IHL 15 with a 60-byte header the frame cannot hold', WireDrop.IPV4_TRUNCATED, (f) => editIp(f.subarray(0, IP + 40), () => { f[IP] = 0x4f; })],
    ['a last fragment (offset only)', WireDrop.IPV4_FRAGMENT, (f) => editIp(f, () => { f.writeUInt16BE(0x0010, IP + 6); })],
    ['a UDP length beyond the IPv4 payload', WireDrop.UDP_BAD_LEN, (f) => editUdp(f, () => { f.writeUInt16BE(f.length - UDP + 1, UDP + 4); })],
    ['a flipped inner payload bit', WireDrop.UDP_BAD_CHECKSUM, (f) => { f[f.length - 1]! ^= 0x10; return f; }],
    ['reserved flag 0x04 (VXLAN-GPE\'s P bit)', WireDrop.VXLAN_RESERVED_SET, (f) => editUdp(f, () => { f[VX]! |= 0x04; })],
    ['a broadcast inner source', WireDrop.INNER_SRC_MAC_INVALID, (f) => editUdp(f, () => { f.fill(0xff, IN + 6, IN + 12); })],
    ['a zero inner source', WireDrop.INNER_SRC_MAC_INVALID, (f) => editUdp(f, () => { f.fill(0, IN + 6, IN + 12); })],
    ['a VXLAN header of 0 bytes', WireDrop.VXLAN_TRUNCATED, (f) => editUdp(f, () => { f.writeUInt16BE(8, UDP + 4); })],
    ['an inner frame of 0 bytes', WireDrop.INNER_ETH_TRUNCATED, (f) => editUdp(f, () => { f.writeUInt16BE(16, UDP + 4); })],
  ])('more faults: %s', (_name, want, mutate) => {
    expect(dropName(decap(mutate(valid(true))))).toBe(dropName(want));
  });

  it.each([0, 1, 12, 13, 14, 17])('drops an outer-tagged frame cut to %i bytes as ETH_TRUNCATED', (len) => {
    const f = encapsulate(buildInner({ kind: 'arp' }), { outerVlan: 5 });
    expect(decap(f.subarray(0, len))).toBe(WireDrop.ETH_TRUNCATED);
  });
});

describe('Decapsulator on valid frames', () => {
  it('has the kernel\'s defaults: port 4789, strict, no GBP, any VNI, UDP checksums verified', () => {
    const d = new Decapsulator();
    expect([d.port, d.strict, d.gbp, d.vnis, d.verifyUdpChecksum, d.ownMac]).toEqual([4789, true, false, null, true, -1]);
    expect({ ...new DecapResult() }).toEqual({
      outerSrcIp: 0, outerDstIp: 0, outerTos: 0, outerTtl: 0, srcPort: 0, dstPort: 0, vxlanFlags: 0, groupPolicyId: 0, vni: 0, innerStart: 0, innerEnd: 0,
    });
  });

  it.each(validCorpus().map((c) => [c.name, c] as const))('accepts %s and returns the inner window', (_name, c) => {
    const r = new DecapResult();
    expect(new Decapsulator({ port: c.port }).decapFrame(c.frame, 0, c.frame.length, r)).toBe(WireDrop.NONE);
    const ip = c.ethLen;
    expect({ ...r }).toEqual({
      outerSrcIp: c.frame.readUInt32BE(ip + 12), outerDstIp: c.frame.readUInt32BE(ip + 16), outerTos: c.frame[ip + 1], outerTtl: 64,
      srcPort: c.frame.readUInt16BE(ip + 20), dstPort: c.port, vxlanFlags: 0x08, groupPolicyId: 0, vni: 42,
      innerStart: c.innerOff, innerEnd: c.frame.length,
    });
  });

  it('decodes a window inside a larger buffer and reports absolute offsets', () => {
    const f = valid(true);
    const b = Buffer.concat([Buffer.alloc(100, 0xee), f, Buffer.alloc(30, 0xee)]);
    const r = new DecapResult();
    expect(new Decapsulator().decapFrame(b, 100, 100 + f.length, r)).toBe(WireDrop.NONE);
    expect([r.innerStart, r.innerEnd]).toEqual([100 + IN, 100 + f.length]);
  });

  it('accepts trailing Ethernet padding and leaves it out of the inner window', () => {
    const f = Buffer.concat([valid(true), Buffer.alloc(6)]);
    const r = new DecapResult();
    expect(decap(f, POLICY, r)).toBe(WireDrop.NONE);
    expect(r.innerEnd).toBe(f.length - 6);
  });

  it('ends the inner frame at the UDP length when it is shorter than the IPv4 payload (as the kernel trims)', () => {
    const f = valid(true);
    const udpLen = f.readUInt16BE(UDP + 4);
    editUdp(f, () => { f.writeUInt16BE(udpLen - 4, UDP + 4); });
    const r = new DecapResult();
    expect(decap(f, POLICY, r)).toBe(WireDrop.NONE);
    expect(r.innerEnd).toBe(f.length - 4);
  });

  it('accepts any port with port -1, and any other port when configured', () => {
    const f = encapsulate(buildInner({ kind: 'udp' }), { dstPort: 9999 });
    expect(decap(f, { port: -1 })).toBe(WireDrop.NONE);
    expect(decap(f, { port: 9999 })).toBe(WireDrop.NONE);
    expect(decap(f, { port: 4789 })).toBe(WireDrop.UDP_PORT_MISMATCH);
  });

  it('skips UDP checksum verification when told to', () => {
    const f = withFaults(valid(true), WireDrop.UDP_BAD_CHECKSUM);
    expect(decap(f, { ...POLICY, verifyUdpChecksum: false })).toBe(WireDrop.NONE);
  });

  it('decapVxlan starts at the VXLAN header and leaves the outer fields as the caller set them', () => {
    const f = valid(false);
    const r = new DecapResult();
    r.outerSrcIp = 1; r.outerTos = 2; r.srcPort = 3;
    expect(new Decapsulator(POLICY).decapVxlan(f, VX, f.length, r)).toBe(WireDrop.NONE);
    expect([r.outerSrcIp, r.outerTos, r.srcPort, r.vni, r.innerStart, r.innerEnd]).toEqual([1, 2, 3, 42, IN, f.length]);
    expect(new Decapsulator(POLICY).decapVxlan(f, VX, VX + 7, r)).toBe(WireDrop.VXLAN_TRUNCATED);
  });
});

describe('reserved VXLAN bits', () => {
  /** All 39 reserved bits of RFC 7348 §5, as (byte, mask), derived from the header layout. */
  const RESERVED: [number, number][] = [];
  for (let byte = 0; byte < 8; byte++) {
    for (let bit = 7; bit >= 0; bit--) {
      if ((byte === 0 && bit === 3) || (byte >= 4 && byte <= 6)) continue; // the I flag, the VNI
      RESERVED.push([byte, 1 << bit]);
    }
  }
  const GBP_DEFINED = (byte: number, mask: number): boolean =>
    (byte === 0 && mask === VXLAN_FLAG_G) || (byte === 1 && (mask === VXLAN_GBP_D || mask === VXLAN_GBP_A)) || byte === 2 || byte === 3;
  const rows = RESERVED.map(([byte, mask]) => [`byte ${byte} mask 0x${mask.toString(16).padStart(2, '0')}`, byte, mask] as const);

  const withBit = (byte: number, mask: number): Buffer => {
    const f = valid(true);
    return editUdp(f, () => { f[VX + byte]! |= mask; });
  };

  it('are 39', () => {
    expect(RESERVED).toHaveLength(39);
    expect(RESERVED.filter(([b, m]) => GBP_DEFINED(b, m))).toHaveLength(19);
  });

  it.each(rows)('%s: strict drops with VXLAN_RESERVED_SET, lenient accepts', (_name, byte, mask) => {
    const f = withBit(byte, mask);
    expect(dropName(decap(f, { ...POLICY, strict: true }))).toBe('vxlan_reserved_set');
    const r = new DecapResult();
    expect(dropName(decap(f, { ...POLICY, strict: false }, r))).toBe('none');
    expect([r.vni, r.innerStart, r.innerEnd, r.vxlanFlags]).toEqual([42, IN, f.length, f[VX]]);
  });

  it.each(rows)('%s with GBP: accepted if GBP defines it, else still dropped', (_name, byte, mask) => {
    const f = withBit(byte, mask);
    const r = new DecapResult();
    const got = decap(f, { ...POLICY, gbp: true }, r);
    expect(dropName(got)).toBe(GBP_DEFINED(byte, mask) ? 'none' : 'vxlan_reserved_set');
    expect(decap(f, { ...POLICY, gbp: true, strict: false })).toBe(WireDrop.NONE);
  });

  it('reports the group policy id only in GBP mode with G set', () => {
    const f = valid(true);
    editUdp(f, () => { f[VX] = 0x88; f[VX + 1] = 0x48; f.writeUInt16BE(0x1234, VX + 2); });
    const r = new DecapResult();
    expect(decap(f, { ...POLICY, gbp: true }, r)).toBe(WireDrop.NONE);
    expect([r.vxlanFlags, r.groupPolicyId]).toEqual([0x88, 0x1234]);
    expect(decap(f, { ...POLICY, gbp: false, strict: false }, r)).toBe(WireDrop.NONE);
    expect(r.groupPolicyId).toBe(0);
    editUdp(f, () => { f[VX] = 0x08; }); // group id without G: accepted (as Linux), but not reported
    expect(decap(f, { ...POLICY, gbp: true }, r)).toBe(WireDrop.NONE);
    expect(r.groupPolicyId).toBe(0);
  });

  it('still requires the I flag in lenient mode', () => {
    const f = withFaults(valid(true), WireDrop.VXLAN_NO_I_FLAG);
    expect(decap(f, { ...POLICY, strict: false })).toBe(WireDrop.VXLAN_NO_I_FLAG);
    expect(decap(f, { ...POLICY, strict: false, gbp: true })).toBe(WireDrop.VXLAN_NO_I_FLAG);
  });
});

describe('VniSet', () => {
  it.each<[string, number[], number[], number[]]>([
    ['one VNI', [42], [42], [0, 41, 43, 0xffffff]],
    ['several VNIs', [1, 42, 0xffffff], [1, 42, 0xffffff], [0, 2, 43]],
    ['duplicates', [7, 7, 7], [7], [0, 6, 8]],
    ['no VNI', [], [], [0, 1, 42]],
  ])('%s', (_name, vnis, yes, no) => {
    const s = new VniSet(vnis);
    for (const v of yes) expect(s.has(v), `has ${v}`).toBe(true);
    for (const v of no) expect(s.has(v), `has ${v}`).toBe(false);
    expect(s.values().sort((a, b) => a - b)).toEqual([...new Set(vnis)].sort((a, b) => a - b));
  });

  it('filters decapsulation: a served VNI passes, another is VXLAN_VNI_UNKNOWN', () => {
    const f = valid(false);
    expect(decap(f, { vnis: new VniSet([7, 42]) })).toBe(WireDrop.NONE);
    expect(decap(f, { vnis: new VniSet([7, 8]) })).toBe(WireDrop.VXLAN_VNI_UNKNOWN);
    expect(decap(f, { vnis: new VniSet([]) })).toBe(WireDrop.VXLAN_VNI_UNKNOWN);
    expect(decap(f, { vnis: null })).toBe(WireDrop.NONE);
  });
});

describe('ECN decapsulation (RFC 6040 §4.2)', () => {
  const CP = { 'Not-ECT': 0b00, 'ECT(1)': 0b01, 'ECT(0)': 0b10, CE: 0b11 } as const;
  type Cp = keyof typeof CP;
  // RFC 6040 Figure 4: the arriving inner header (rows) under the arriving outer header
  // (columns Not-ECT, ECT(0), ECT(1), CE) gives the departing header.
  const OUTER_COLUMNS: Cp[] = ['Not-ECT', 'ECT(0)', 'ECT(1)', 'CE'];
  const FIGURE_4: Record<Cp, (Cp | 'drop')[]> = {
    'Not-ECT': ['Not-ECT', 'Not-ECT', 'Not-ECT', 'drop'],
    'ECT(0)': ['ECT(0)', 'ECT(0)', 'ECT(1)', 'CE'],
    'ECT(1)': ['ECT(1)', 'ECT(1)', 'ECT(1)', 'CE'],
    CE: ['CE', 'CE', 'CE', 'CE'],
  };
  const rows: [string, Cp, Cp, Cp | 'drop'][] = [];
  for (const inner of Object.keys(FIGURE_4) as Cp[]) {
    OUTER_COLUMNS.forEach((outer, i) => rows.push([`inner ${inner} under outer ${outer}`, inner, outer, FIGURE_4[inner][i]!]));
  }

  it.each(rows)('%s -> %s', (_name, inner, outer, want) => {
    expect(ecnDecapsulate(CP[inner], CP[outer])).toBe(want === 'drop' ? -1 : CP[want]);
  });

  it.each(rows)('applyEcnDecap: %s', (_name, inner, outer, want) => {
    const frame = buildInner({ kind: 'tcp', tos: (26 << 2) | CP[inner] });
    const before = Buffer.from(frame);
    const d = applyEcnDecap(new Ipv4View(), frame, 0, frame.length, (10 << 2) | CP[outer]);
    if (want === 'drop') {
      expect(d).toBe(WireDrop.ECN_CE_NOT_ECT);
      expect(frame).toEqual(before);
      return;
    }
    expect(d).toBe(WireDrop.NONE);
    expect(frame[15]).toBe((26 << 2) | CP[want]); // the inner DSCP is kept
    expect(verifiesRef(frame.subarray(14, 34))).toBe(true); // checksum patched
    const expected = Buffer.from(before);
    expected[15] = (26 << 2) | CP[want];
    expected.writeUInt16BE(frame.readUInt16BE(24), 24);
    expect(frame).toEqual(expected); // only TOS and checksum change
  });

  it('leaves non-IPv4 and too-short inner frames alone, also under CE', () => {
    const arp = buildInner({ kind: 'arp' });
    const copy = Buffer.from(arp);
    expect(applyEcnDecap(new Ipv4View(), arp, 0, arp.length, CP.CE)).toBe(WireDrop.NONE);
    expect(arp).toEqual(copy);
    const ip = buildInner({ kind: 'udp' });
    const ipCopy = Buffer.from(ip);
    expect(applyEcnDecap(new Ipv4View(), ip, 0, 33, CP.CE)).toBe(WireDrop.NONE);
    expect(ip).toEqual(ipCopy);
  });

  it('works on the window decap returns (inner frame in place)', () => {
    const f = encapsulate(buildInner({ kind: 'udp', tos: CP['ECT(0)'] }));
    editIp(f, () => { f[IP + 1] = CP.CE; });
    const r = new DecapResult();
    expect(decap(f, {}, r)).toBe(WireDrop.NONE);
    expect(applyEcnDecap(new Ipv4View(), f, r.innerStart, r.innerEnd, r.outerTos)).toBe(WireDrop.NONE);
    expect(f[r.innerStart + 15]! & 3).toBe(CP.CE);
    expect(INNER_SRC_MAC).toBe(f.readUIntBE(r.innerStart + 6, 6));
  });
});
