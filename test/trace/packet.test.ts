/**
 * `flatnet trace` packets (src/trace/packet.ts): descriptions built into frames, checked field
 * by field by three independent dissectors (tshark, scapy and our dissectFrame, on the flat
 * schema of test/support/fields.ts) and, for overlay frames, by the strict Decapsulator; the
 * defaults per ingress role; every way of writing a description wrong (ERR_TRACE_PACKET with the
 * word it is about); hex input. The oracle part skips, saying why, without tshark or scapy
 * (unless FLATNET_REQUIRE_ORACLES=1).
 *
 * Pod and host frames are checked inside a fixed VXLAN wrapper, so that their layers land on
 * the schema's inner keys (`i.`) for all three dissectors alike.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TracePacketError } from '../../src/errors.js';
import { DEFAULT_ICMP_PAYLOAD, MAX_FRAME_LEN, type PacketDefaults, buildPacket, buildTracePacket, parseHexFrame, parsePacketSpec, parseTcpFlags, parseVnet } from '../../src/trace/packet.js';
import { formatVirtioNetHdr, VirtioGso, VirtioNetFlag } from '../../src/wire/virtio-net-hdr.js';
import { l4ChecksumOk, partialSumRef } from '../support/l4-frames.js';
import { formatMac, parseIpv4, parseMac } from '../../src/wire/addr.js';
import { icmpv4Frame, vxlanFrame } from '../../src/wire/build.js';
import { DecapResult, Decapsulator } from '../../src/wire/decap.js';
import { dissectFrame } from '../../src/wire/dissect.js';
import { wireDropName } from '../../src/wire/drop.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { TcpFlag } from '../../src/wire/tcp.js';
import { fieldsOfRepr, type Fields } from '../support/fields.js';
import { scapyDissect, scapyMissing, type ScapyFrame } from '../support/scapy.js';
import { ExpertSeverity, Tshark, tsharkMissing, writePcap, type TsharkFrame } from '../support/tshark.js';
import { N1, POD_DEFAULTS as POD } from '../support/trace-results.js';

const HOST_MAC = parseMac('02:00:0a:f4:01:fe');
const HOST: PacketDefaults = { role: 'host', srcMac: HOST_MAC, dstMac: N1.vtepMac, srcIp: null, overlay: null };
const net24 = (ip: number): number => ip >>> 8;
const OVERLAY_SRC_MAC = parseMac('02:00:00:00:00:99');
const OVERLAY: PacketDefaults = {
  role: 'overlay', srcMac: OVERLAY_SRC_MAC, dstMac: N1.vtepMac, srcIp: null,
  overlay: {
    localUnderlay: N1.underlay, port: 4789, vni: 1,
    peerFor: (ip) => N1.peers.find((p) => net24(p.net) === net24(ip)) ?? null,
    peerAt: (ip) => N1.peers.find((p) => p.underlayIp === ip) ?? null,
  },
};
/** A node on the kernel's port and another VNI, whose defaults know no peer by address. */
const OVERLAY_8472: PacketDefaults = {
  ...OVERLAY,
  overlay: { localUnderlay: N1.underlay, port: 8472, vni: 42, peerFor: OVERLAY.overlay!.peerFor, underlayMac: 0x02_00_00_00_00_01, nextHopMac: 0x02_00_00_00_00_02 },
};

const mac = (m: number): string => formatMac(m);
const POD_MAC = mac(N1.pod.mac), VTEP_MAC = mac(N1.vtepMac), N2_MAC = mac(N1.peers[0].mac), N3_MAC = mac(N1.peers[1].mac);
const BCAST = 'ff:ff:ff:ff:ff:ff';

interface Row {
  readonly name: string;
  readonly spec: string;
  readonly d: PacketDefaults;
  readonly len: number;
  /** Fields every dissector must report (a subset of the schema). */
  readonly want: Fields;
  /** Keys no dissector may report. */
  readonly absent?: readonly string[];
  /** Checksums that must read 'bad' (all others read 'good' or 'none'). */
  readonly bad?: readonly string[];
  /** Overlay frames: the strict Decapsulator's verdict on port `dport`. */
  readonly decap?: { readonly port: number; readonly drop: string };
}

const TCP_SYN_IP = { 'i.ip.src': '10.244.1.10', 'i.ip.dst': '10.244.2.10', 'i.ip.ttl': 64, 'i.ip.id': 1, 'i.ip.df': true, 'i.ip.mf': false, 'i.ip.dscp': 0, 'i.ip.ecn': 0, 'i.ip.hdr_len': 20 };

const ROWS: readonly Row[] = [
  {
    name: 'tcp: a SYN with every default', spec: 'tcp 10.244.1.10:40000 -> 10.244.2.10:80', d: POD, len: 58,
    want: {
      'i.eth.src': POD_MAC, 'i.eth.dst': VTEP_MAC, 'i.eth.type': 0x0800, ...TCP_SYN_IP, 'i.ip.len': 44, 'i.ip.proto': 6,
      'i.tcp.sport': 40000, 'i.tcp.dport': 80, 'i.tcp.seq': 1000, 'i.tcp.ack': 0, 'i.tcp.flags': TcpFlag.SYN, 'i.tcp.win': 64240,
      'i.tcp.hdr_len': 24, 'i.tcp.len': 0, 'i.tcp.opts': '2', 'i.tcp.mss': 1460,
    },
  },
  {
    name: "tcp: no source (the pod's), 'to', PA, len, ttl, tos, ipid, no-df", spec: 'tcp to 10.244.2.10:8080 flags PA len 100 ttl 5 tos 0xb8 ipid 4660 no-df', d: POD, len: 114,
    want: {
      'i.ip.src': '10.244.1.10', 'i.ip.len': 100, 'i.ip.ttl': 5, 'i.ip.dscp': 46, 'i.ip.ecn': 0, 'i.ip.id': 4660, 'i.ip.df': false,
      'i.tcp.sport': 40000, 'i.tcp.dport': 8080, 'i.tcp.flags': TcpFlag.PSH | TcpFlag.ACK, 'i.tcp.ack': 1, 'i.tcp.hdr_len': 20, 'i.tcp.len': 60,
    },
    absent: ['i.tcp.mss', 'i.tcp.opts'],
  },
  {
    name: 'tcp: flags by name, seq, ack, win, mss on a non-SYN; glued ->', spec: 'tcp 10.244.1.10:1->10.244.3.10:2 flags fin,ack seq 4294967295 ack 7 win 0 mss 1200', d: POD, len: 58,
    want: { 'i.ip.dst': '10.244.3.10', 'i.tcp.flags': TcpFlag.FIN | TcpFlag.ACK, 'i.tcp.seq': 4294967295, 'i.tcp.ack': 7, 'i.tcp.win': 0, 'i.tcp.mss': 1200, 'i.tcp.sport': 1, 'i.tcp.dport': 2 },
  },
  {
    name: 'tcp: a SYN without its MSS option, DF said twice over', spec: 'tcp 10.244.1.10:1 -> 10.244.2.10:2 mss none df', d: POD, len: 54,
    want: { 'i.tcp.flags': TcpFlag.SYN, 'i.tcp.hdr_len': 20, 'i.ip.df': true },
    absent: ['i.tcp.mss'],
  },
  {
    name: 'udp: payload, an 802.1Q tag', spec: 'udp 10.244.1.10:5000 -> 10.244.2.10:53 payload 20 vlan 100', d: POD, len: 66,
    want: { 'i.vlan.id': 100, 'i.vlan.pcp': 0, 'i.eth.type': 0x0800, 'i.ip.len': 48, 'i.ip.proto': 17, 'i.udp.sport': 5000, 'i.udp.dport': 53, 'i.udp.len': 28 },
  },
  {
    name: "udp: size (len's other name), source without a port, '>'", spec: 'udp 10.244.1.10 > 10.244.2.10:9000 size 60', d: POD, len: 74,
    want: { 'i.ip.len': 60, 'i.udp.sport': 40000, 'i.udp.dport': 9000, 'i.udp.len': 40 },
  },
  {
    name: "icmp: an echo request like ping's", spec: 'icmp 10.244.1.10 -> 10.244.2.10', d: POD, len: 98,
    want: { 'i.ip.len': 84, 'i.ip.proto': 1, 'i.ip.df': true, 'i.icmp.type': 8, 'i.icmp.code': 0, 'i.icmp.ident': 1, 'i.icmp.seq': 1 },
  },
  {
    name: 'icmp: an echo reply with id, seq and the smallest len', spec: 'icmp 10.244.1.10 → 10.244.2.10 echo-reply id 0x1234 seq 9 len 28', d: POD, len: 42,
    want: { 'i.ip.len': 28, 'i.icmp.type': 0, 'i.icmp.ident': 0x1234, 'i.icmp.seq': 9 },
  },
  {
    name: "arp: a request, the sender the pod's", spec: 'arp who-has 10.244.1.1', d: POD, len: 42,
    want: { 'i.eth.src': POD_MAC, 'i.eth.dst': BCAST, 'i.eth.type': 0x0806, 'i.arp.op': 1, 'i.arp.sha': POD_MAC, 'i.arp.spa': '10.244.1.10', 'i.arp.tha': '00:00:00:00:00:00', 'i.arp.tpa': '10.244.1.1' },
  },
  {
    name: 'arp: a unicast request from a forged sender', spec: 'arp who-has 10.244.1.1 tell 10.244.1.11 sha 02:00:0a:f4:01:99 dst-mac 0e:00:0a:f4:01:00', d: POD, len: 42,
    want: { 'i.eth.src': POD_MAC, 'i.eth.dst': VTEP_MAC, 'i.arp.op': 1, 'i.arp.sha': '02:00:0a:f4:01:99', 'i.arp.spa': '10.244.1.11', 'i.arp.tpa': '10.244.1.1' },
  },
  {
    name: 'arp: a reply to the gateway', spec: 'arp 10.244.1.10 is-at 02:00:0a:f4:01:0a to 10.244.1.1', d: POD, len: 42,
    want: { 'i.eth.dst': VTEP_MAC, 'i.arp.op': 2, 'i.arp.sha': POD_MAC, 'i.arp.spa': '10.244.1.10', 'i.arp.tha': VTEP_MAC, 'i.arp.tpa': '10.244.1.1' },
  },
  {
    name: 'arp: a gratuitous reply, tagged', spec: 'arp 10.244.1.10 is-at 02:00:0a:f4:01:0b vlan 3', d: POD, len: 46,
    want: { 'i.eth.dst': BCAST, 'i.vlan.id': 3, 'i.arp.op': 2, 'i.arp.sha': '02:00:0a:f4:01:0b', 'i.arp.spa': '10.244.1.10', 'i.arp.tha': '00:00:00:00:00:00', 'i.arp.tpa': '10.244.1.10' },
  },
  {
    name: "host: the host stack's MAC, the source as written", spec: 'udp 10.244.1.0:33000 -> 10.244.1.10:53 src-mac 02:00:0a:f4:01:fd', d: HOST, len: 42,
    want: { 'i.eth.src': '02:00:0a:f4:01:fd', 'i.eth.dst': VTEP_MAC, 'i.ip.src': '10.244.1.0', 'i.udp.sport': 33000 },
  },
  {
    name: 'bad-csum: the IPv4 header checksum is wrong, the TCP one right', spec: 'tcp 10.244.1.10:1 -> 10.244.2.10:2 bad-csum', d: POD, len: 58,
    want: { 'i.ip.csum': 'bad', 'i.tcp.csum': 'good' }, bad: ['i.ip.csum'],
  },
  {
    name: 'overlay: a ping from a pod of n2, every outer default', spec: 'icmp 10.244.2.10 -> 10.244.1.10', d: OVERLAY, len: 148,
    want: {
      'o.eth.src': '02:00:c6:33:64:fe', 'o.eth.dst': '02:00:c6:33:64:01', 'o.ip.src': '198.51.100.2', 'o.ip.dst': '198.51.100.1', 'o.ip.ttl': 64,
      'o.ip.df': false, 'o.ip.ecn': 0, 'o.ip.proto': 17, 'o.ip.len': 134, 'o.udp.dport': 4789, 'o.udp.len': 114, 'o.udp.csum': 'none',
      'vx.flags': 0x08, 'vx.i': true, 'vx.vni': 1, 'vx.b1': 0, 'vx.b23': 0, 'vx.rsvd8': 0,
      'i.eth.src': N2_MAC, 'i.eth.dst': VTEP_MAC, 'i.ip.src': '10.244.2.10', 'i.ip.dst': '10.244.1.10', 'i.ip.ttl': 64, 'i.icmp.type': 8,
    },
    decap: { port: 4789, drop: 'none' },
  },
  {
    name: 'overlay: every outer option', spec: 'udp 10.244.3.10:5000 -> 10.244.1.10:53 vni 42 dport 8472 sport 50000 outer-ttl 9 outer-tos 0x02 udp-csum vxlan-flags 0x08 outer-src-mac 02:00:00:00:00:0a outer-dst-mac 02:00:00:00:00:0b',
    d: OVERLAY, len: 92,
    want: {
      'o.eth.src': '02:00:00:00:00:0a', 'o.eth.dst': '02:00:00:00:00:0b', 'o.ip.src': '198.51.100.3', 'o.ip.ttl': 9, 'o.ip.ecn': 2, 'o.ip.dscp': 0,
      'o.udp.sport': 50000, 'o.udp.dport': 8472, 'o.udp.csum': 'good', 'vx.vni': 42, 'vx.flags': 0x08, 'i.eth.src': N3_MAC,
    },
    decap: { port: 8472, drop: 'none' },
  },
  {
    name: "overlay: 'from' names the sender, whose VTEP MAC is the inner source", spec: 'tcp 10.244.9.9:1 -> 10.244.1.10:2 from 198.51.100.3 flags R', d: OVERLAY, len: 104,
    want: { 'o.ip.src': '198.51.100.3', 'i.eth.src': N3_MAC, 'i.ip.src': '10.244.9.9', 'i.tcp.flags': TcpFlag.RST },
    decap: { port: 4789, drop: 'none' },
  },
  {
    name: 'overlay: the VNI and port of the defaults; ECN copied outward (RFC 6040)', spec: 'udp 10.244.2.10:1 -> 10.244.1.10:2 tos 0x01', d: OVERLAY_8472, len: 92,
    want: { 'o.udp.dport': 8472, 'vx.vni': 42, 'o.ip.ecn': 1, 'i.ip.ecn': 1, 'o.eth.dst': '02:00:00:00:00:01', 'o.eth.src': '02:00:00:00:00:02', 'i.eth.src': N2_MAC },
    decap: { port: 8472, drop: 'none' },
  },
  {
    name: 'overlay: a reserved VXLAN flag, the outer UDP checksum still right', spec: 'icmp 10.244.2.10 -> 10.244.1.10 vxlan-flags 0x0c udp-csum', d: OVERLAY, len: 148,
    want: { 'vx.flags': 0x0c, 'vx.i': true, 'o.udp.csum': 'good' },
    decap: { port: 4789, drop: 'vxlan_reserved_set' },
  },
  {
    name: 'overlay: the I flag clear', spec: 'icmp 10.244.2.10 -> 10.244.1.10 vxlan-flags 0', d: OVERLAY, len: 148,
    want: { 'vx.flags': 0, 'vx.i': false },
    decap: { port: 4789, drop: 'vxlan_no_i_flag' },
  },
  {
    name: 'overlay: outer-bad-csum', spec: 'icmp 10.244.2.10 -> 10.244.1.10 outer-bad-csum', d: OVERLAY, len: 148,
    want: { 'o.ip.csum': 'bad', 'i.ip.csum': 'good' }, bad: ['o.ip.csum'],
    decap: { port: 4789, drop: 'ipv4_bad_checksum' },
  },
  {
    name: 'overlay: bad-csum is the inner header', spec: 'icmp 10.244.2.10 -> 10.244.1.10 bad-csum', d: OVERLAY, len: 148,
    want: { 'o.ip.csum': 'good', 'i.ip.csum': 'bad' }, bad: ['i.ip.csum'],
    decap: { port: 4789, drop: 'none' },
  },
];

/** Pod and host frames go inside this wrapper for the dissectors (see the module doc). */
const WRAP = new EncapTemplate({ srcMac: 1, dstMac: 2, srcIp: parseIpv4('198.51.100.7'), dstIp: parseIpv4('198.51.100.8'), vni: 5 });
const built = ROWS.map((r) => buildPacket(r.spec, r.d));
const forOracles = built.map((b, i) => (ROWS[i]!.d.role === 'overlay' ? b : vxlanFrame(WRAP, b)));

describe('buildPacket: the frame as it arrives', () => {
  it.each(ROWS.map((r, i) => [r.name, i] as const))('%s: length and our own dissector', (_name, i) => {
    const r = ROWS[i]!;
    const b = built[i]!;
    expect(b.length).toBe(r.len);
    const ours = fieldsOfRepr(dissectFrame(forOracles[i]!));
    expect(dissectFrame(forOracles[i]!).malformed).toBeUndefined();
    checkFields(ours, r);
  });

  it.each(ROWS.filter((r) => r.decap !== undefined).map((r) => [r.name, r] as const))('%s: the strict Decapsulator', (_name, r) => {
    const b = buildPacket(r.spec, r.d);
    const res = new DecapResult();
    const drop = new Decapsulator({ port: r.decap!.port, strict: true, verifyUdpChecksum: true }).decapFrame(b, 0, b.length, res);
    expect(wireDropName(drop)).toBe(r.decap!.drop);
    if (r.decap!.drop === 'none') expect([res.innerStart, res.innerEnd]).toEqual([VXLAN_HEADROOM, b.length]);
  });
});

/** want holds, `absent` keys are absent, and every checksum is good or none unless listed in `bad`. */
function checkFields(f: Fields | undefined, r: Row, who = 'ours'): void {
  expect(f, `${who} produced no fields`).toBeDefined();
  const got: Fields = {};
  for (const k of Object.keys(r.want)) if (f![k] !== undefined) got[k] = f![k]!;
  expect(got, `${who}: ${r.spec}`).toEqual(r.want);
  for (const k of r.absent ?? []) expect(f![k], `${who}: ${k} should be absent`).toBeUndefined();
  for (const [k, v] of Object.entries(f!)) {
    if (!k.endsWith('.csum')) continue;
    if (r.bad?.includes(k)) expect(v, `${who}: ${k}`).toBe('bad');
    else expect(['good', 'none'], `${who}: ${k} = ${String(v)}`).toContain(v);
  }
}

const missing = (await Promise.all([tsharkMissing(), scapyMissing()])).filter((m): m is string => m !== null);
const REQUIRE = process.env['FLATNET_REQUIRE_ORACLES'] === '1';
const SKIP = missing.length > 0 && !REQUIRE;
if (SKIP) console.warn(`[trace packet oracles] skipped: ${missing.join('; ')}`);

describe.skipIf(SKIP)(`buildPacket against tshark and scapy${SKIP ? ` [SKIPPED: ${missing.join('; ')}]` : ''}`, () => {
  let dir = '';
  let ts: TsharkFrame[] = [];
  let sc: ScapyFrame[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flatnet-trace-packet-'));
    const tshark = await Tshark.create();
    try {
      const pcap = join(dir, 'packets.pcap');
      writePcap(pcap, forOracles);
      [ts, sc] = await Promise.all([tshark.dissect(pcap), scapyDissect(pcap)]);
    } finally {
      tshark.close();
    }
  });
  afterAll(() => { if (dir !== '') rmSync(dir, { recursive: true, force: true }); });

  it('both dissected every frame', () => {
    expect([ts.length, sc.length]).toEqual([ROWS.length, ROWS.length]);
  });

  it.each(ROWS.map((r, i) => [r.name, i] as const))('%s', (_name, i) => {
    const r = ROWS[i]!;
    const t = ts[i]!, s = sc[i]!;
    expect(s.error, 'scapy raised').toBeUndefined();
    checkFields(t.fields, r, 'tshark');
    checkFields(s.fields, r, 'scapy');
    expect(t.malformed, `tshark: malformed (${t.protocols})`).toBe(false);
    const errors = t.experts.filter((e) => e.severity >= ExpertSeverity.ERROR && !/checksum/i.test(e.message));
    expect(errors, 'tshark expert errors other than the bad checksums asked for').toEqual([]);
  });
});

describe('buildPacket: defaults', () => {
  it("an echo request is ping's: DF, TTL 64, id 1, 56 payload bytes counting up, id 1 seq 1", () => {
    const payload = Buffer.from([...Array(DEFAULT_ICMP_PAYLOAD).keys()]);
    const want = icmpv4Frame({ srcMac: N1.pod.mac, dstMac: N1.vtepMac, src: N1.pod.ip, dst: parseIpv4('10.244.2.10'), type: 8, code: 0, rest: 0x0001_0001, payload });
    expect(buildPacket('icmp -> 10.244.2.10', POD).toString('hex')).toBe(want.toString('hex'));
  });

  it('an overlay frame is EncapTemplate around the inner frame: its source port, IPv4 id 0, no UDP checksum', () => {
    const b = buildPacket('udp 10.244.2.10:7 -> 10.244.1.10:7', OVERLAY);
    const inner = b.subarray(VXLAN_HEADROOM);
    const t = new EncapTemplate({ srcMac: parseMac('02:00:c6:33:64:fe'), dstMac: parseMac('02:00:c6:33:64:01'), srcIp: N1.peers[0].underlayIp, dstIp: N1.underlay, vni: 1 });
    expect(b.toString('hex')).toBe(vxlanFrame(t, inner).toString('hex'));
  });

  it('ICMP other than echo: the rest-of-header word zero, no payload', () => {
    const b = buildPacket('icmp -> 10.244.2.10 type 3 code 4', POD);
    expect(b.length).toBe(14 + 20 + 8);
    expect(dissectFrame(b).layers[2]).toMatchObject({ layer: 'icmp', type: 3, code: 4, unused: 0, nextHopMtu: 0, checksumStatus: 'good' });
  });

  it("overlay: with 'from' and no peerAt, the inner source MAC is the defaults' srcMac", () => {
    const b = buildPacket('udp 10.244.9.9:1 -> 10.244.1.10:2 from 198.51.100.9', OVERLAY_8472);
    const [outer, , , , inner] = dissectFrame(b, 0, b.length, { vxlanPorts: [8472] }).layers;
    expect(outer).toMatchObject({ layer: 'eth', src: '02:00:00:00:00:02', dst: '02:00:00:00:00:01' });
    expect(inner).toMatchObject({ layer: 'eth', src: formatMac(OVERLAY_SRC_MAC), dst: VTEP_MAC });
  });

  it('payload bytes count up from 0 and wrap at 256', () => {
    const b = buildPacket('udp -> 10.244.2.10:9 payload 300', POD);
    const p = b.subarray(14 + 20 + 8);
    expect([p.length, p[0], p[255], p[256], p[299]]).toEqual([300, 0, 255, 0, 43]);
  });

  it('the largest IPv4 packet is 65535 bytes', () => {
    expect(buildPacket('udp -> 10.244.2.10:9 len 65535', POD).length).toBe(14 + 65535);
  });
});

describe('buildPacket: errors name the word', () => {
  const OV = OVERLAY;
  it.each([
    ['an empty description', '', POD, null],
    ['an unknown protocol', 'tpc 10.244.1.10:1 -> 10.244.2.10:2', POD, 1],
    ['nothing after the protocol', 'tcp', POD, 2],
    ['no arrow at the end', 'tcp 10.244.1.10:40000', POD, 3],
    ['no arrow', 'tcp 10.244.1.10:40000 10.244.2.10:80', POD, 3],
    ['a short destination address', 'tcp 10.244.1.10:40000 -> 10.244.2:80', POD, 4],
    ['a destination without a port', 'tcp 10.244.1.10:40000 -> 10.244.2.10', POD, 4],
    ['a port beyond 65535', 'tcp 10.244.1.10:40000 -> 10.244.2.10:65536', POD, 4],
    ['a source port that is not a number', 'tcp 10.244.1.10:x -> 10.244.2.10:80', POD, 2],
    ['two arrows', 'tcp 10.244.1.10:40000 -> ->', POD, 4],
    ['nothing after the arrow', 'udp -> ', POD, 3],
    ['icmp with a port', 'icmp 10.244.1.10:1 -> 10.244.2.10', POD, 2],
    ['an option without its value', 'tcp -> 10.244.2.10:80 ttl', POD, 5],
    ['a value out of range', 'tcp -> 10.244.2.10:80 ttl 256', POD, 5],
    ['a value that is not a number', 'tcp -> 10.244.2.10:80 ttl sixty', POD, 5],
    ['an option twice', 'tcp -> 10.244.2.10:80 ttl 1 ttl 2', POD, 6],
    ['an option twice under its two names', 'tcp -> 10.244.2.10:80 size 100 len 100', POD, 6],
    ['len and payload', 'tcp -> 10.244.2.10:80 len 100 payload 3', POD, 6],
    ['df and no-df', 'tcp -> 10.244.2.10:80 df no-df', POD, 5],
    ['an unknown option', 'tcp -> 10.244.2.10:80 frob', POD, 4],
    ['a tcp option on udp', 'udp -> 10.244.2.10:80 flags S', POD, 4],
    ['an IPv4 option on arp', 'arp who-has 10.244.1.1 ttl 3', POD, 4],
    ['id on an ICMP error', 'icmp -> 10.244.2.10 type 3 id 4', POD, 6],
    ['echo-reply and type', 'icmp -> 10.244.2.10 echo-reply type 0', POD, 5],
    ["an ICMP seq beyond 16 bits (TCP's has 32)", 'icmp -> 10.244.2.10 seq 65536', POD, 5],
    ['unknown TCP flags', 'tcp -> 10.244.2.10:80 flags SX', POD, 5],
    ['len shorter than the headers', 'tcp -> 10.244.2.10:80 len 43', POD, 4],
    ['a payload beyond the largest IPv4 packet', 'udp -> 10.244.1.10:53 payload 65508', POD, 4],
    ['a short MAC', 'tcp -> 10.244.2.10:80 src-mac 02:00', POD, 5],
    ['an overlay option on a pod', 'tcp -> 10.244.2.10:80 vni 3', POD, 4],
    ['a VNI beyond 24 bits', 'tcp 10.244.2.10:1 -> 10.244.1.10:80 vni 16777216', OV, 6],
    ['no source on a port without an IP', 'tcp -> 10.244.2.10:80', HOST, 2],
    ['no ARP sender on a port without an IP', 'arp who-has 10.244.1.1', HOST, 3],
    ['who-has without an address', 'arp who-has', POD, 3],
    ['tell without an address', 'arp who-has 10.244.1.1 tell', POD, 5],
    ['arp neither who-has nor is-at', 'arp tell 10.244.1.1', POD, 2],
    ['is-at without a MAC', 'arp 10.244.1.10 is-at', POD, 4],
    ['at instead of is-at', 'arp 10.244.1.10 at 02:00:0a:f4:01:0a', POD, 3],
    ['sha on a reply', 'arp 10.244.1.10 is-at 02:00:0a:f4:01:0a sha 02:00:0a:f4:01:0b', POD, 5],
    ['an inner source no peer owns, and no from', 'tcp 10.244.9.9:1 -> 10.244.1.10:2', OV, 2],
    ['a bad from', 'tcp 10.244.9.9:1 -> 10.244.1.10:2 from 198.51.100', OV, 6],
  ] as const)('%s', (_name, spec, d, word) => {
    let err: unknown;
    try {
      buildPacket(spec, d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TracePacketError);
    expect(err).toMatchObject({ code: 'ERR_TRACE_PACKET', word });
  });

  it.each([
    ['tso on udp', 'udp -> 10.244.2.10:80 tso 1000', POD, 4],
    ['tso 0', 'tcp -> 10.244.2.10:80 tso 0', POD, 5],
    ['partial-csum on icmp', 'icmp -> 10.244.2.10 partial-csum', POD, 4],
    ['tso on a frame from the overlay', 'tcp 10.244.2.10:1 -> 10.244.1.10:80 tso 1000', OV, 5],
  ] as const)('offloads: %s', (_name, spec, d, word) => {
    expect(() => buildTracePacket(spec, d)).toThrow(expect.objectContaining({ code: 'ERR_TRACE_PACKET', word }));
  });

  it('parsePacketSpec catches the syntax without any defaults', () => {
    expect(() => parsePacketSpec('tcp 10.244.1.10:40000 -> 10.244.2:80')).toThrow(TracePacketError);
    expect(parsePacketSpec('tcp -> 10.244.2.10:80 vni 3').options.get('vni')).toMatchObject({ word: 4, value: 3 });
  });
});

describe('buildTracePacket: frames that come with a virtio-net header', () => {
  it('tso N: a TSO super-frame as Linux hands it over (partial checksum, GSO TCPv4, the header length)', () => {
    const plain = buildTracePacket('tcp -> 10.244.2.10:80 flags PA payload 8000', POD);
    expect(plain.vnet).toBeNull();
    expect(l4ChecksumOk(plain.frame)).toBe(true);
    const { frame, vnet } = buildTracePacket('tcp -> 10.244.2.10:80 flags PA payload 8000 tso 1448', POD);
    expect(frame.length).toBe(14 + 20 + 20 + 8000);
    expect(frame.subarray(0, 50)).toEqual(plain.frame.subarray(0, 50)); // the same headers up to the TCP checksum
    expect(frame.readUInt16BE(14 + 20 + 16)).toBe(partialSumRef(frame));
    expect(vnet).toEqual({ flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.TCPV4, gsoSize: 1448, hdrLen: 54, csumStart: 34, csumOffset: 16 });
  });

  it('partial-csum: the checksum left to the device, no GSO; a VLAN tag moves the offsets', () => {
    const { frame, vnet } = buildTracePacket('udp -> 10.244.2.10:53 payload 100 partial-csum vlan 7', POD);
    expect(frame.readUInt16BE(18 + 20 + 6)).not.toBe(0);
    expect(vnet).toEqual({ flags: VirtioNetFlag.NEEDS_CSUM, gsoType: VirtioGso.NONE, gsoSize: 0, hdrLen: 0, csumStart: 38, csumOffset: 6 });
    const tcp = buildTracePacket('tcp -> 10.244.2.10:80 mss none partial-csum', POD);
    expect(tcp.frame.readUInt16BE(34 + 16)).toBe(partialSumRef(tcp.frame));
    expect(tcp.vnet).toMatchObject({ csumStart: 34, csumOffset: 16, gsoType: VirtioGso.NONE });
  });
});

describe('parseVnet and formatVirtioNetHdr: the --vnet syntax', () => {
  it.each([
    ['none', { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, 'none'],
    ['needs-csum,csum-start=34,csum-offset=16', { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 16 }, null],
    ['needs-csum,gso=tcpv4,gso-size=1448,hdr-len=66,csum-start=34,csum-offset=16', { flags: 1, gsoType: 1, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 }, null],
    ['gso=tcpv4+ecn, gso-size=0x5a8', { flags: 0, gsoType: 0x81, hdrLen: 0, gsoSize: 1448, csumStart: 0, csumOffset: 0 }, 'gso=tcpv4+ecn,gso-size=1448'],
    ['data-valid,gso=udp', { flags: 2, gsoType: 3, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, null],
    ['flags=0x10,gso=9', { flags: 0x10, gsoType: 9, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }, 'flags=0x10,gso=9'],
  ] as const)('%s', (text, want, formatted) => {
    expect(parseVnet(text)).toEqual(want);
    expect(formatVirtioNetHdr(want)).toBe(formatted ?? text);
  });

  it.each([
    ['', /empty item/],
    ['needs-csum,needs-csum', /'needs-csum' is given twice/],
    ['gso=tcp', /gso=tcp: expected none, tcpv4, udp, tcpv6, udp-l4/],
    ['gso=tcpv4+ecn+x', /gso=tcpv4\+ecn\+x/],
    ['gso-size=70000', /gso-size=70000: expected a number 0-65535/],
    ['flags=256', /flags=256: expected a number 0-255/],
    ['hdrlen=54', /unknown item 'hdrlen'/],
    ['csum', /unknown item 'csum'/],
  ])('refuses %j', (text, msg) => {
    expect(() => parseVnet(text)).toThrow(expect.objectContaining({ code: 'ERR_TRACE_PACKET', message: expect.stringMatching(msg) }));
  });
});

describe('parseTcpFlags', () => {
  const { SYN, ACK, FIN, RST, PSH, URG, ECE, CWR, AE } = TcpFlag;
  it.each([
    ['S', SYN], ['SA', SYN | ACK], ['S.', SYN | ACK], ['[P.]', PSH | ACK], ['FA', FIN | ACK], ['R', RST], ['sa', SYN | ACK],
    ['UEC', URG | ECE | CWR], ['W', CWR], ['syn,ack', SYN | ACK], ['SYN|ACK', SYN | ACK], ['fin+ack', FIN | ACK], ['ae', AE], ['ns', AE],
    ['none', 0], ['0x12', SYN | ACK], ['18', SYN | ACK], ['511', 0x1ff],
  ] as const)('%s', (text, want) => {
    expect(parseTcpFlags(text)).toBe(want);
  });

  it.each(['', 'SX', 'syn,x', 'syn,', '0x200', '512', '[]'])('refuses %j', (text) => {
    expect(parseTcpFlags(text)).toBeNull();
  });
});

describe('parseHexFrame', () => {
  it.each([
    ['a hex stream', '02000af4010a', '02000af4010a'],
    ['upper case, 0x prefix', '0x02000AF4010A', '02000af4010a'],
    ['spaces and newlines', '0200 0af4\n010a ', '02000af4010a'],
    ['colons', '02:00:0a:f4:01:0a', '02000af4010a'],
    ['tcpdump -xx lines', '\t0x0000:  ffff ffff ffff 0200\n\t0x0010:  0af4 010a', 'ffffffffffff02000af4010a'],
  ])('%s', (_name, text, want) => {
    expect(parseHexFrame(text).toString('hex')).toBe(want);
  });

  it.each([
    ['nothing', ''],
    ['only spaces', '   '],
    ['a letter that is not hex', '02zz'],
    ['a dash', '02-00'],
    ['an odd number of digits', '020'],
    ['more than the largest frame', '00'.repeat(MAX_FRAME_LEN + 1)],
  ])('refuses %s', (_name, text) => {
    expect(() => parseHexFrame(text)).toThrow(expect.objectContaining({ code: 'ERR_TRACE_PACKET', word: null }));
  });

  it('takes the largest frame', () => {
    expect(parseHexFrame('ab'.repeat(MAX_FRAME_LEN)).length).toBe(MAX_FRAME_LEN);
  });
});
