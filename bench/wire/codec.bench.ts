/**
 * Codec benchmark (issue 2): encap, decap, encap+decap, classify and checksum for a 64-byte
 * inner frame and a 1450-byte inner IPv4 packet (pod MTU on a 1500-byte underlay), in ns/packet,
 * Mpps and heap bytes allocated per packet; and, in the same run, the same outer-header decode
 * and checks done with buffer-layout and with cap's decoders as baselines.
 *
 * Run: node --expose-gc --max-semi-space-size=64 dist/bench/wire/codec.bench.js [--json out.json]
 */

import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Batch } from '../../src/buf/batch.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { fold16, sum16 } from '../../src/wire/checksum.js';
import { EtherType, IpProto } from '../../src/wire/consts.js';
import { DecapResult, Decapsulator, VniSet } from '../../src/wire/decap.js';
import { Drop, DROP_NAMES } from '../../src/pipeline/drop.js';
import { EncapTemplate, VXLAN_HEADROOM, flowHash16 } from '../../src/wire/encap.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { UdpView } from '../../src/wire/udp.js';
import { consume, machine, measure, table, type Result } from '../harness.js';

const require = createRequire(import.meta.url);
const BATCH = 64;
const SLOT = 2048;

/** An inner Ethernet/IPv4/UDP frame of `frameLen` bytes, pod 10.244.1.2 -> 10.244.2.3. */
function innerFrame(b: Buffer, off: number, frameLen: number, srcPort: number): void {
  const eth = new EthernetView().reset(b, off, off + frameLen);
  eth.emit(parseMac('0e:00:0a:f4:02:00'), parseMac('0e:00:0a:f4:01:00'), EtherType.IPV4);
  const ipLen = frameLen - 14;
  const ip = new Ipv4View().reset(b, off + 14, off + frameLen);
  ip.emit(parseIpv4('10.244.1.2'), parseIpv4('10.244.2.3'), IpProto.UDP, ipLen, 63, 0, 1, 0x4000);
  const udp = new UdpView().reset(b, off + 34, off + frameLen);
  udp.emit(srcPort, 5201, ipLen - 20);
  for (let i = off + 42; i < off + frameLen; i++) b[i] = i & 0xff;
  udp.fillChecksum(ip.src, ip.dst);
}

interface Case {
  readonly label: string;
  readonly frameLen: number;
}
const CASES: readonly Case[] = [
  { label: '64 B frame', frameLen: 64 },
  { label: '1450 B packet', frameLen: 1450 + 14 },
];

const tpl = new EncapTemplate({
  srcMac: parseMac('02:00:c6:33:64:01'), dstMac: parseMac('02:00:c6:33:64:02'),
  srcIp: parseIpv4('198.51.100.1'), dstIp: parseIpv4('198.51.100.2'), vni: 1,
});
const tplCsum = new EncapTemplate({
  srcMac: parseMac('02:00:c6:33:64:01'), dstMac: parseMac('02:00:c6:33:64:02'),
  srcIp: parseIpv4('198.51.100.1'), dstIp: parseIpv4('198.51.100.2'), vni: 1, udpChecksum: true,
});
const decap = new Decapsulator({ vnis: new VniSet([1]) });
const res = new DecapResult();

// Baselines: the same decode + checks through buffer-layout and cap (issue 2 asks for both).
const BL = require('buffer-layout') as {
  struct: (fields: unknown[]) => { decode: (b: Buffer, off?: number) => Record<string, unknown> };
  blob: (n: number, p: string) => unknown; u8: (p: string) => unknown; u16be: (p: string) => unknown;
  u24be: (p: string) => unknown; u32be: (p: string) => unknown;
};
const outerLayout = BL.struct([
  BL.blob(6, 'dst'), BL.blob(6, 'src'), BL.u16be('type'),
  BL.u8('vihl'), BL.u8('tos'), BL.u16be('len'), BL.u16be('id'), BL.u16be('frag'), BL.u8('ttl'), BL.u8('proto'),
  BL.u16be('csum'), BL.u32be('saddr'), BL.u32be('daddr'),
  BL.u16be('sport'), BL.u16be('dport'), BL.u16be('ulen'), BL.u16be('ucsum'),
  BL.u8('vflags'), BL.u24be('vrsvd'), BL.u24be('vni'), BL.u8('vrsvd2'),
  BL.blob(6, 'idst'), BL.blob(6, 'isrc'), BL.u16be('itype'),
]);

/** decapFrame's checks, on buffer-layout's decoded object. */
function blDecap(b: Buffer, start: number, end: number): number {
  if (end - start < 64) return Drop.ETH_TRUNCATED;
  const h = outerLayout.decode(b, start) as Record<string, number | Buffer>;
  if (h.type !== EtherType.IPV4) return Drop.OUTER_NOT_IPV4;
  const vihl = h.vihl as number;
  if (vihl >>> 4 !== 4) return Drop.IPV4_BAD_VERSION;
  if ((vihl & 15) < 5) return Drop.IPV4_BAD_IHL;
  if ((h.len as number) > end - start - 14) return Drop.IPV4_TRUNCATED;
  if (fold16(sum16(b, start + 14, 20)) !== 0xffff) return Drop.IPV4_BAD_CHECKSUM;
  if (((h.frag as number) & 0x3fff) !== 0) return Drop.IPV4_FRAGMENT;
  if (h.proto !== IpProto.UDP) return Drop.OUTER_NOT_UDP;
  if ((h.ulen as number) < 8 || (h.ulen as number) > (h.len as number) - 20) return Drop.UDP_BAD_LEN;
  if (h.dport !== 4789) return Drop.UDP_PORT_MISMATCH;
  if (((h.vflags as number) & 8) === 0) return Drop.VXLAN_NO_I_FLAG;
  if ((h.vflags as number) !== 8 || h.vrsvd !== 0 || h.vrsvd2 !== 0) return Drop.VXLAN_RESERVED_SET;
  if (h.vni !== 1) return Drop.VXLAN_VNI_UNKNOWN;
  if (((h.isrc as Buffer)[0]! & 1) !== 0) return Drop.INNER_SRC_MAC_INVALID;
  return Drop.NONE;
}

type CapDecoders = {
  Ethernet: (b: Buffer, off?: number) => { info: { type: number }; offset: number };
  IPV4: (b: Buffer, off: number) => { info: { protocol: number; totallen: number; flags: number; fragoffset: number }; offset: number };
  UDP: (b: Buffer, off: number) => { info: { dstport: number; length: number }; offset: number };
};
let capDecoders: CapDecoders | null = null;
try {
  capDecoders = (require('cap') as { decoders: CapDecoders }).decoders;
} catch {
  capDecoders = null;
}

/** decapFrame's checks on cap's decoders (no VXLAN decoder in cap: that part by hand). */
function capDecap(d: CapDecoders, b: Buffer, start: number, end: number): number {
  const slice = b.subarray(start, end); // cap decodes from offset 0 of a Buffer
  const eth = d.Ethernet(slice);
  if (eth.info.type !== EtherType.IPV4) return Drop.OUTER_NOT_IPV4;
  const ip = d.IPV4(slice, eth.offset);
  if (fold16(sum16(slice, 14, 20)) !== 0xffff) return Drop.IPV4_BAD_CHECKSUM;
  if (ip.info.protocol !== IpProto.UDP) return Drop.OUTER_NOT_UDP;
  if ((ip.info.flags & 1) !== 0 || ip.info.fragoffset !== 0) return Drop.IPV4_FRAGMENT;
  const udp = d.UDP(slice, ip.offset);
  if (udp.info.dstport !== 4789) return Drop.UDP_PORT_MISMATCH;
  const v = udp.offset;
  if ((slice[v]! & 8) === 0) return Drop.VXLAN_NO_I_FLAG;
  if (slice[v] !== 8 || slice[v + 1] !== 0 || slice[v + 2] !== 0 || slice[v + 3] !== 0 || slice[v + 7] !== 0) return Drop.VXLAN_RESERVED_SET;
  if (((slice[v + 4]! << 16) | (slice[v + 5]! << 8) | slice[v + 6]!) !== 1) return Drop.VXLAN_VNI_UNKNOWN;
  const inner = d.Ethernet(slice, v + 8);
  return inner.offset > 0 ? Drop.NONE : Drop.INNER_ETH_TRUNCATED;
}

function run(): { rows: Result[]; ratios: Record<string, number> } {
  const rows: Result[] = [];
  const ratios: Record<string, number> = {};
  for (const c of CASES) {
    const batch = new Batch(BATCH, SLOT);
    const b = batch.arena;
    for (let i = 0; i < BATCH; i++) innerFrame(b, batch.slotOff(i) + VXLAN_HEADROOM, c.frameLen, 40000 + i);
    const inner = (i: number): number => batch.slotOff(i) + VXLAN_HEADROOM;
    // Encapsulated copies for the decode-only cases.
    const enc = new Batch(BATCH, SLOT);
    b.copy(enc.arena);
    for (let i = 0; i < BATCH; i++) tpl.encap(enc.arena, inner(i), inner(i) + c.frameLen);
    const encCsum = new Batch(BATCH, SLOT);
    b.copy(encCsum.arena);
    for (let i = 0; i < BATCH; i++) tplCsum.encap(encCsum.arena, inner(i), inner(i) + c.frameLen);
    const outerEnd = (i: number): number => inner(i) + c.frameLen;
    for (let i = 0; i < BATCH; i++) {
      { const d = decap.decapFrame(enc.arena, batch.slotOff(i), outerEnd(i), res); if (d !== Drop.NONE) throw new Error(`bench frame does not decap: ${DROP_NAMES[d]}`); }
      if (blDecap(enc.arena, batch.slotOff(i), outerEnd(i)) !== Drop.NONE) throw new Error('buffer-layout baseline disagrees');
      if (capDecoders && capDecap(capDecoders, enc.arena, batch.slotOff(i), outerEnd(i)) !== Drop.NONE) throw new Error('cap baseline disagrees');
    }
    const eth = new EthernetView();
    const ip = new Ipv4View();

    const encap = measure(`encap, ${c.label}`, BATCH, () => {
      for (let i = 0; i < BATCH; i++) consume(tpl.encap(b, inner(i), inner(i) + c.frameLen));
    });
    const encapCsum = measure(`encap + outer UDP checksum, ${c.label}`, BATCH, () => {
      for (let i = 0; i < BATCH; i++) consume(tplCsum.encap(b, inner(i), inner(i) + c.frameLen));
    });
    const dec = measure(`decap, ${c.label}`, BATCH, () => {
      const a = enc.arena;
      for (let i = 0; i < BATCH; i++) consume(decap.decapFrame(a, i * SLOT, outerEnd(i), res));
    });
    const decCsum = measure(`decap + verify outer UDP checksum, ${c.label}`, BATCH, () => {
      const a = encCsum.arena;
      for (let i = 0; i < BATCH; i++) consume(decap.decapFrame(a, i * SLOT, outerEnd(i), res));
    });
    const both = measure(`encap+decap, ${c.label}`, BATCH, () => {
      for (let i = 0; i < BATCH; i++) {
        const o = tpl.encap(b, inner(i), inner(i) + c.frameLen);
        consume(decap.decapFrame(b, o, inner(i) + c.frameLen, res));
      }
    });
    const classify = measure(`classify, ${c.label}`, BATCH, () => {
      for (let i = 0; i < BATCH; i++) {
        const s = inner(i), e = s + c.frameLen;
        if (!eth.reset(b, s, e).checkLen() || eth.etherType !== EtherType.IPV4) continue;
        if (ip.reset(b, s + 14, e).validate() !== Drop.NONE) continue;
        consume(ip.dst ^ ip.protocol ^ flowHash16(b, s, e));
      }
    });
    const csum = measure(`checksum (RFC 1071) over the frame, ${c.label}`, BATCH, () => {
      for (let i = 0; i < BATCH; i++) consume(fold16(sum16(b, inner(i), c.frameLen)));
    });
    const bl = measure(`buffer-layout decode + same checks, ${c.label}`, BATCH, () => {
      const a = enc.arena;
      for (let i = 0; i < BATCH; i++) consume(blDecap(a, i * SLOT, outerEnd(i)));
    }, { samples: 5, allocPackets: 200_000 });
    rows.push(encap, encapCsum, dec, decCsum, both, classify, csum, bl);
    ratios[`decap vs buffer-layout, ${c.label}`] = bl.nsPerPacket / dec.nsPerPacket;
    if (capDecoders !== null) {
      const d = capDecoders;
      const cp = measure(`cap decoders + same checks, ${c.label}`, BATCH, () => {
        const a = enc.arena;
        for (let i = 0; i < BATCH; i++) consume(capDecap(d, a, i * SLOT, outerEnd(i)));
      }, { samples: 5, allocPackets: 200_000 });
      rows.push(cp);
      ratios[`decap vs cap decoders, ${c.label}`] = cp.nsPerPacket / dec.nsPerPacket;
    }
  }
  return { rows, ratios };
}

const { rows, ratios } = run();
process.stdout.write(`codec benchmark: ${machine()}\n\n${table(rows)}\n\n`);
for (const [k, v] of Object.entries(ratios)) process.stdout.write(`${k}: ${v.toFixed(0)}x\n`);
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0 && process.argv[jsonAt + 1] !== undefined) {
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ machine: machine(), rows, ratios }, null, 2));
}
