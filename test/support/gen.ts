/**
 * Seeded random *valid* VXLAN frames for the differential tests (test/interop/differential.test.ts).
 *
 * Every frame is built with the codec itself (the header views, the Repr emitters for headers
 * with options, EncapTemplate for the outer 50 bytes, VxlanView.emitGbp for GBP) in a slot
 * pre-filled with 0xa5, so a byte an emitter forgets to write shows up as a field mismatch.
 * Alongside the bytes the generator returns the *intended* field values: what it asked the codec
 * to build, taken from its own random choices, not read back from the frame. The one exception is
 * the outer UDP source port, an implementation-defined hash of the inner flow: it is read back
 * and the test checks it lies inside the configured range.
 *
 * Fields are a flat map with one key schema (test/support/fields.ts) shared by the intended values,
 * tshark's, scapy's and our own dissector's, so that the decoders can be compared key by key.
 *
 * Addresses: underlay 198.51.100.0/24, pods 10.244.0.0/16; MACs are locally administered.
 */

import {
  ArpOp,
  ArpView,
  DfPolicy,
  EncapTemplate,
  EtherType,
  EthernetView,
  ICMPV4_HEADER_LEN,
  Icmpv4Type,
  Icmpv4View,
  IPV4_FLAG_DF,
  IPV4_HEADER_LEN,
  IpProto,
  Ipv4View,
  OUTER_UDP_OFF,
  SRC_PORT_RANGE_LINUX,
  SRC_PORT_RANGE_RFC,
  TCP_HEADER_LEN,
  TcpView,
  UDP_HEADER_LEN,
  UdpPort,
  UdpView,
  VXLAN_GBP_A,
  VXLAN_GBP_D,
  VXLAN_HEADROOM,
  VXLAN_OFF,
  VxlanView,
  emitIpv4Header,
  emitTcpHeader,
  formatIpv4,
  formatMac,
  type DfPolicy as DfPolicyT,
  type EncapOptions,
} from '../../src/wire/index.js';
import { optionKinds, sortKeys, type Fields } from './fields.js';
import { dirty } from './hex.js';

// ---------------------------------------------------------------------------------------------
// PRNG

/**
 * Rng: mulberry32, a 32-bit-state generator that is fast, deterministic and plenty for test
 * data. The same seed gives the same frames on every machine.
 */
export class Rng {
  readonly seed: number;
  private s: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed;
  }

  u32(): number {
    this.s = (this.s + 0x6d2b_79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  float(): number { return this.u32() / 0x1_0000_0000; }
  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)); }
  bool(pTrue = 0.5): boolean { return this.float() < pTrue; }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[this.int(0, xs.length - 1)]!;
  }
  fill(b: Buffer, off: number, len: number): void {
    for (let i = 0; i < len; i++) b[off + i] = this.u32() & 0xff;
  }
  /** A unicast, locally administered MAC (I/G bit clear, U/L bit set) as a 48-bit number. */
  mac(): number {
    const first = (this.int(0, 255) & 0xfc) | 0x02;
    return first * 0x100_0000_0000 + this.int(0, 0xff) * 0x1_0000_0000 + this.u32();
  }
}

/**
 * seedFromEnv: FLATNET_DIFF_SEED when set (to replay a failure), else a fresh random seed.
 * The tests print the seed in every failure message.
 */
export function seedFromEnv(): number {
  const s = process.env['FLATNET_DIFF_SEED'];
  if (s !== undefined && s !== '') {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new Error(`FLATNET_DIFF_SEED=${s} is not a uint32`);
    return n;
  }
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Ports

/**
 * UDP ports some dissector decodes as VXLAN (scapy binds 4789, 4790, 6633, 8472 and 48879 on
 * either port; tshark and flatnet 4789 and 8472): an inner datagram never uses them, or it
 * would be a VXLAN-in-VXLAN frame.
 */
export const VXLAN_LIKE_PORTS: readonly number[] = [UdpPort.VXLAN, UdpPort.VXLAN_GPE, 6633, UdpPort.VXLAN_LINUX, 48879];

// ---------------------------------------------------------------------------------------------
// Frames

export type InnerKind = 'arp' | 'icmp' | 'udp' | 'tcp';

export interface GeneratedFrame {
  /** The whole outer Ethernet frame: a window 0-7 bytes into its own ArrayBuffer. */
  readonly bytes: Buffer;
  /** Intended field values. */
  readonly fields: Fields;
  readonly kind: InnerKind;
  /** Outer UDP destination port, GBP on or off: the Decapsulator policy that must accept it. */
  readonly dstPort: number;
  readonly gbp: boolean;
  /** The source-port range the template was configured with (the port itself is a hash). */
  readonly srcPortRange: readonly [number, number];
  /** UDP datagrams whose checksum was steered to compute to zero: on the wire it must read 0xffff. */
  readonly allOnesUdp: readonly ('outer' | 'inner')[];
  /** One line for failure messages. */
  readonly desc: string;
}

interface TemplateState {
  readonly tpl: EncapTemplate;
  /** A twin with the same options, for dry runs that must not advance tpl's identification. */
  readonly probe: EncapTemplate;
  readonly dscp: number | 'inherit';
  readonly df: DfPolicyT;
  readonly ttl: number;
  readonly srcMac: number;
  readonly dstMac: number;
  readonly range: readonly [number, number];
  /** Frames encapsulated so far: the next IPv4 identification is `sent & 0xffff`. */
  sent: number;
}

const UNDERLAY = 0xc633_6400; // 198.51.100.0/24
const POD_NET = 0x0af4_0000; // 10.244.0.0/16

/**
 * FrameGenerator builds random valid frames. Outer destinations (EncapTemplates) are drawn from
 * a small pool and reused, as a VTEP reuses one template per remote, so the outer IPv4
 * identification counter advances (and, for a few templates warmed up past 65535, wraps).
 */
export class FrameGenerator {
  readonly rng: Rng;
  private readonly templates: TemplateState[] = [];
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  private readonly ip = new Ipv4View();
  private readonly icmp = new Icmpv4View();
  private readonly udp = new UdpView();
  private readonly tcp = new TcpView();
  private readonly vx = new VxlanView();

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** frames: `n` frames, deterministic for the seed. */
  frames(n: number): GeneratedFrame[] {
    const out: GeneratedFrame[] = [];
    for (let i = 0; i < n; i++) out.push(this.frame());
    return out;
  }

  frame(): GeneratedFrame {
    const r = this.rng;
    const f: Fields = {};
    const kind: InnerKind = r.pick(['arp', 'icmp', 'icmp', 'udp', 'udp', 'tcp', 'tcp', 'tcp']);
    const vlan = r.bool(0.2);

    // --- inner frame, built VXLAN_HEADROOM bytes into a dirty slot -----------------------------
    // The slot starts 0-7 bytes into its buffer so that checksums run at every alignment (the
    // codec sums whole 32-bit words where it can). A short inner frame is sometimes padded to
    // the Ethernet minimum of 60 bytes with zeros, as a NIC or bridge may hand it over.
    const plan = this.planInner(kind, vlan);
    const base = r.int(0, 7);
    const start = base + VXLAN_HEADROOM;
    const pad = plan.innerLen < 60 && r.bool(0.3) ? 60 - plan.innerLen : 0;
    const end = start + plan.innerLen + pad;
    const b = dirty(end);
    const innerAllOnes = this.writeInner(b, start, end - pad, plan, f);
    b.fill(0, end - pad, end);

    // --- outer headers -------------------------------------------------------------------------
    const t = this.template();
    const gbp = r.bool(0.2);
    const d = gbp && r.bool(), a = gbp && r.bool();
    const b23 = gbp ? r.int(0, 0xffff) : 0;
    const b1 = (d ? VXLAN_GBP_D : 0) | (a ? VXLAN_GBP_A : 0);
    const allOnesUdp: ('outer' | 'inner')[] = innerAllOnes ? ['inner'] : [];
    // RFC 768: a UDP checksum that computes to zero is sent as 0xffff (0 means "none"). That
    // happens once in 65536 frames by chance, so for a few frames the outer sum is steered to
    // zero: a dry run through an identical twin template gives the sum, and the inner
    // destination MAC's last two bytes absorb it. Only for untagged IPv4 inner frames, whose
    // flow hash (and so the outer source port) does not depend on the MACs.
    if (t.tpl.udpChecksum && plan.ip !== null && !vlan && r.bool(0.05)) {
      const probe = Buffer.from(b);
      t.probe.encap(probe, start, end);
      if (gbp) this.vx.reset(probe, base + VXLAN_OFF, end).emitGbp(t.tpl.vni, b23, d, a);
      const udp = base + OUTER_UDP_OFF, udpLen = end - udp;
      probe[udp + 6] = 0;
      probe[udp + 7] = 0;
      steerToZero(b, start + 4, refSum(probe, udp, udpLen, refPseudo(t.tpl.srcIp, t.tpl.dstIp, IpProto.UDP, udpLen)));
      f['i.eth.dst'] = formatMac(b.readUIntBE(start, 6));
      allOnesUdp.push('outer');
    }
    const o = t.tpl.encap(b, start, end);
    if (o !== base) throw new Error(`encap returned ${o}, expected ${base}`);
    const ident = t.sent & 0xffff;
    t.sent++;
    if (gbp) {
      this.vx.reset(b, base + VXLAN_OFF, end).emitGbp(t.tpl.vni, b23, d, a);
      // The VXLAN header is covered by the UDP checksum: recompute it after rewriting.
      if (t.tpl.udpChecksum) this.udp.reset(b, base + OUTER_UDP_OFF, end).fillChecksum(t.tpl.srcIp, t.tpl.dstIp);
    }
    const bytes = b.subarray(base, end);
    const len = end - base;

    // Outer fields the template inherits from an *untagged* inner IPv4 header: ECN always
    // (RFC 6040 normal mode), DSCP and DF by policy. EncapTemplate looks at the EtherType at
    // offset 12 only, so a VLAN-tagged inner frame inherits nothing. (Linux differs here: since
    // 2022 ip_tunnel_get_dsfield() uses skb_protocol(skb, true), which looks through VLAN tags.
    // If EncapTemplate follows it, change `!vlan` below; the test will point here.)
    const inheritFrom = plan.ip !== null && !vlan ? plan.ip : null;
    const outerDscp = t.dscp === 'inherit' ? (inheritFrom?.dscp ?? 0) : t.dscp;
    const outerEcn = inheritFrom?.ecn ?? 0;
    const outerDf = t.df === DfPolicy.SET || (t.df === DfPolicy.INHERIT && (inheritFrom?.df ?? false));

    f['frame.len'] = len;
    f['o.eth.src'] = formatMac(t.srcMac);
    f['o.eth.dst'] = formatMac(t.dstMac);
    f['o.eth.type'] = EtherType.IPV4;
    Object.assign(f, {
      'o.ip.src': formatIpv4(t.tpl.srcIp), 'o.ip.dst': formatIpv4(t.tpl.dstIp), 'o.ip.ttl': t.ttl, 'o.ip.id': ident,
      'o.ip.df': outerDf, 'o.ip.mf': false, 'o.ip.dscp': outerDscp, 'o.ip.ecn': outerEcn, 'o.ip.hdr_len': IPV4_HEADER_LEN,
      'o.ip.len': len - 14, 'o.ip.proto': IpProto.UDP, 'o.ip.csum': 'good',
    });
    const sport = this.udp.reset(bytes, OUTER_UDP_OFF, len).srcPort; // the flow hash: read back, range-checked by the test
    Object.assign(f, {
      'o.udp.sport': sport, 'o.udp.dport': t.tpl.dstPort, 'o.udp.len': len - OUTER_UDP_OFF,
      'o.udp.csum': t.tpl.udpChecksum ? 'good' : 'none',
    });
    Object.assign(f, {
      'vx.flags': gbp ? 0x88 : 0x08, 'vx.i': true, 'vx.g': gbp, 'vx.d': (b1 & VXLAN_GBP_D) !== 0, 'vx.a': (b1 & VXLAN_GBP_A) !== 0,
      'vx.b1': b1, 'vx.b23': b23, 'vx.vni': t.tpl.vni, 'vx.rsvd8': 0,
    });

    const desc = `${kind}${vlan ? '+vlan' : ''}${plan.ip?.opts.length ? '+ipopts' : ''} vni=${t.tpl.vni} dport=${t.tpl.dstPort}`
      + ` udpcsum=${t.tpl.udpChecksum ? 'on' : 'off'}${gbp ? ' gbp' : ''}${allOnesUdp.map((w) => ` ${w}-csum-ffff`).join('')}`
      + `${pad > 0 ? ` pad=${pad}` : ''} len=${len} at +${base}`;
    return { bytes, fields: sortKeys(f), kind, dstPort: t.tpl.dstPort, gbp, srcPortRange: t.range, allOnesUdp, desc };
  }

  // --- outer destinations ------------------------------------------------------------------------

  private template(): TemplateState {
    const r = this.rng;
    if (this.templates.length < 8 || r.bool(0.1)) {
      const vni = r.pick([0, 1, 0xff_ffff, r.int(0, 0xff), r.int(0, 0xff_ffff), r.int(0, 0xff_ffff)]);
      const srcIp = (UNDERLAY | r.int(1, 254)) >>> 0;
      let dstIp = (UNDERLAY | r.int(1, 254)) >>> 0;
      if (dstIp === srcIp) dstIp = (UNDERLAY | ((srcIp & 0xff) % 254) + 1) >>> 0;
      const dscp: number | 'inherit' = r.bool(0.3) ? 'inherit' : r.pick([0, r.int(0, 63)]);
      const df = r.pick<DfPolicyT>([DfPolicy.UNSET, DfPolicy.SET, DfPolicy.INHERIT]);
      const ttl = r.pick([64, r.int(1, 255)]);
      const lo = r.int(1, 65535);
      const range = r.pick<readonly [number, number]>([SRC_PORT_RANGE_RFC, SRC_PORT_RANGE_LINUX, [lo, r.int(lo, 65535)]]);
      const srcMac = r.mac(), dstMac = r.mac();
      const opts: EncapOptions = {
        srcMac, dstMac, srcIp, dstIp, vni, ttl, dscp, df, srcPortRange: range,
        dstPort: r.pick([UdpPort.VXLAN, UdpPort.VXLAN_LINUX]),
        udpChecksum: r.bool(),
      };
      const tpl = new EncapTemplate(opts);
      const t: TemplateState = { tpl, probe: new EncapTemplate(opts), dscp, df, ttl, srcMac, dstMac, range, sent: 0 };
      // Advance the identification counter: usually a little, sometimes to just before the wrap.
      const warm = r.bool(0.1) ? 0x1_0000 - r.int(0, 4) : r.int(0, 3000);
      const scratch = Buffer.alloc(VXLAN_HEADROOM + 14);
      for (let i = 0; i < warm; i++) tpl.encap(scratch, VXLAN_HEADROOM, scratch.length);
      t.sent = warm;
      this.templates.push(t);
      return t;
    }
    return r.pick(this.templates);
  }

  // --- inner frames ------------------------------------------------------------------------------

  private planInner(kind: InnerKind, vlan: boolean): InnerPlan {
    const r = this.rng;
    const ethLen = vlan ? 18 : 14;
    if (kind === 'arp') return { kind, vlan, ethLen, innerLen: ethLen + 28, ip: null, l4HeaderLen: 0, payloadLen: 0, tcpOpts: [] };
    const opts = r.bool(0.25) ? ipOptions(r) : [];
    const ip: IpPlan = {
      src: (POD_NET | r.int(0, 0xffff)) >>> 0,
      dst: (POD_NET | r.int(0, 0xffff)) >>> 0,
      dscp: r.pick([0, r.int(0, 63)]),
      ecn: r.int(0, 3),
      ident: r.int(0, 0xffff),
      ttl: r.pick([64, 255, r.int(1, 255)]),
      df: r.bool(),
      opts,
    };
    const tcpOpts = kind === 'tcp' && r.bool(0.5) ? tcpOptions(r) : [];
    const l4HeaderLen = kind === 'icmp' ? ICMPV4_HEADER_LEN : kind === 'udp' ? UDP_HEADER_LEN : TCP_HEADER_LEN + tcpOpts.length;
    // Mostly small payloads, some up to 1400 bytes (frames up to ~1530 bytes).
    const payloadLen = r.bool(0.3) ? r.int(0, 1400) : r.int(0, 64);
    const innerLen = ethLen + IPV4_HEADER_LEN + opts.length + l4HeaderLen + payloadLen;
    return { kind, vlan, ethLen, innerLen, ip, l4HeaderLen, payloadLen, tcpOpts };
  }

  /** writeInner builds the inner frame; returns true when its UDP checksum was steered to all-ones. */
  private writeInner(b: Buffer, start: number, end: number, p: InnerPlan, f: Fields): boolean {
    const r = this.rng;
    let srcMac = r.mac();
    // ARP requests and some IPv4 frames go to broadcast or a multicast group.
    const dstMac = p.kind === 'arp' ? (r.bool() ? 0xffff_ffff_ffff : r.mac())
      : r.bool(0.1) ? 0x0100_5e00_0000 + r.int(0, 0x7f_ffff) : r.mac();
    if (srcMac === dstMac) srcMac = r.mac();
    const etherType = p.kind === 'arp' ? EtherType.ARP : EtherType.IPV4;
    const vid = r.pick([1, 4094, r.int(1, 4094)]), pcp = r.int(0, 7), dei = r.bool(0.2);
    this.eth.reset(b, start, end).emit(dstMac, srcMac, etherType, p.vlan ? (pcp << 13) | (dei ? 0x1000 : 0) | vid : -1);
    f['i.eth.src'] = formatMac(srcMac);
    f['i.eth.dst'] = formatMac(dstMac);
    f['i.eth.type'] = etherType;
    if (p.vlan) Object.assign(f, { 'i.vlan.id': vid, 'i.vlan.pcp': pcp, 'i.vlan.dei': dei });

    const l3 = start + p.ethLen;
    if (p.ip === null) {
      const request = dstMac === 0xffff_ffff_ffff;
      const oper = request ? ArpOp.REQUEST : r.pick([ArpOp.REQUEST, ArpOp.REPLY]);
      const spa = (POD_NET | r.int(0, 0xffff)) >>> 0, tpa = (POD_NET | r.int(0, 0xffff)) >>> 0;
      const tha = request ? 0 : dstMac;
      this.arp.reset(b, l3, end).emit(oper, srcMac, spa, tha, tpa);
      Object.assign(f, { 'i.arp.op': oper, 'i.arp.sha': formatMac(srcMac), 'i.arp.spa': formatIpv4(spa), 'i.arp.tha': formatMac(tha), 'i.arp.tpa': formatIpv4(tpa) });
      return false;
    }

    const ip = p.ip;
    const ihl = IPV4_HEADER_LEN + ip.opts.length;
    const totalLen = end - l3;
    const proto = p.kind === 'icmp' ? IpProto.ICMP : p.kind === 'udp' ? IpProto.UDP : IpProto.TCP;
    const iv = this.ip.reset(b, l3, end);
    if (ip.opts.length === 0) {
      iv.emit(ip.src, ip.dst, proto, totalLen, ip.ttl, (ip.dscp << 2) | ip.ecn, ip.ident, ip.df ? IPV4_FLAG_DF : 0);
    } else {
      emitIpv4Header(iv, {
        ihl: ihl / 4, dscp: ip.dscp, ecn: ip.ecn, totalLen, ident: ip.ident, reservedFlag: false, df: ip.df, mf: false,
        fragOffset: 0, ttl: ip.ttl, protocol: proto, checksum: 0, src: formatIpv4(ip.src), dst: formatIpv4(ip.dst),
        options: Buffer.from(ip.opts).toString('hex'),
      }, true);
    }
    Object.assign(f, {
      'i.ip.src': formatIpv4(ip.src), 'i.ip.dst': formatIpv4(ip.dst), 'i.ip.ttl': ip.ttl, 'i.ip.id': ip.ident, 'i.ip.df': ip.df,
      'i.ip.mf': false, 'i.ip.dscp': ip.dscp, 'i.ip.ecn': ip.ecn, 'i.ip.hdr_len': ihl, 'i.ip.len': totalLen, 'i.ip.proto': proto,
      'i.ip.csum': 'good',
    });
    if (ip.opts.length > 0) f['i.ip.opts'] = optionKinds(ip.opts);

    const l4 = l3 + ihl;
    const payloadOff = l4 + p.l4HeaderLen;
    let allOnes = false;
    r.fill(b, payloadOff, p.payloadLen);
    if (p.kind === 'icmp') {
      const type = r.pick([Icmpv4Type.ECHO_REQUEST, Icmpv4Type.ECHO_REPLY]);
      const ident = r.int(0, 0xffff), seq = r.int(0, 0xffff);
      const v = this.icmp.reset(b, l4, end);
      v.emitHeader(type, 0, ((ident << 16) | seq) >>> 0);
      v.fillChecksum();
      Object.assign(f, { 'i.icmp.type': type, 'i.icmp.code': 0, 'i.icmp.ident': ident, 'i.icmp.seq': seq, 'i.icmp.csum': 'good' });
    } else if (p.kind === 'udp') {
      const sport = innerPort(r), dport = innerPort(r);
      const v = this.udp.reset(b, l4, end);
      const len = end - l4;
      v.emit(sport, dport, len);
      // A zero UDP checksum is valid over IPv4 (RFC 768): "none".
      const csum = r.bool(0.85);
      // Sometimes steer the sum to zero with the first payload word: the checksum must read 0xffff.
      if (csum && p.payloadLen >= 2 && r.bool(0.1)) {
        steerToZero(b, payloadOff, refSum(b, l4, len, refPseudo(ip.src, ip.dst, IpProto.UDP, len)));
        allOnes = true;
      }
      if (csum) v.fillChecksum(ip.src, ip.dst);
      Object.assign(f, { 'i.udp.sport': sport, 'i.udp.dport': dport, 'i.udp.len': len, 'i.udp.csum': csum ? 'good' : 'none' });
    } else {
      const sport = innerPort(r), dport = innerPort(r);
      const seq = r.u32(), ack = r.u32(), flags = r.pick([0x002, 0x012, 0x010, 0x018, 0x011, r.int(0, 0x1ff)]), win = r.int(0, 0xffff);
      const v = this.tcp.reset(b, l4, end);
      const hl = TCP_HEADER_LEN + p.tcpOpts.length;
      // URG is the only flag that gives the urgent pointer meaning; without it the field stays 0.
      const urg = (flags & 0x020) !== 0 ? r.int(0, 0xffff) : 0;
      if (p.tcpOpts.length === 0 && urg === 0) {
        v.emit(sport, dport, seq, ack, flags, win);
      } else {
        emitTcpHeader(v, {
          srcPort: sport, dstPort: dport, seq, ack, dataOffset: hl / 4, reserved: 0, flags, window: win, checksum: 0,
          urgent: urg, options: Buffer.from(p.tcpOpts).toString('hex'),
        });
      }
      v.fillChecksum(ip.src, ip.dst);
      Object.assign(f, {
        'i.tcp.sport': sport, 'i.tcp.dport': dport, 'i.tcp.seq': seq, 'i.tcp.ack': ack, 'i.tcp.flags': flags, 'i.tcp.win': win,
        'i.tcp.urg': urg, 'i.tcp.hdr_len': hl, 'i.tcp.len': p.payloadLen, 'i.tcp.csum': 'good',
      });
      if (p.tcpOpts.length > 0) f['i.tcp.opts'] = optionKinds(p.tcpOpts);
      const mss = mssOf(p.tcpOpts);
      if (mss >= 0) f['i.tcp.mss'] = mss;
    }
    return allOnes;
  }
}

interface IpPlan {
  readonly src: number;
  readonly dst: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly ident: number;
  readonly ttl: number;
  readonly df: boolean;
  /** Option bytes, already padded to a multiple of 4. */
  readonly opts: readonly number[];
}

interface InnerPlan {
  readonly kind: InnerKind;
  readonly vlan: boolean;
  readonly ethLen: number;
  readonly innerLen: number;
  readonly ip: IpPlan | null;
  readonly l4HeaderLen: number;
  readonly payloadLen: number;
  readonly tcpOpts: readonly number[];
}

function innerPort(r: Rng): number {
  for (;;) {
    const p = r.pick([r.int(1, 1023), r.int(1024, 65535), r.int(1024, 65535)]);
    if (!VXLAN_LIKE_PORTS.includes(p)) return p;
  }
}

/** Pads option bytes to a 4-byte multiple: an end-of-list, then zeros (RFC 791, RFC 9293). */
function padOptions(o: number[]): number[] {
  if (o.length % 4 !== 0) {
    o.push(0);
    while (o.length % 4 !== 0) o.push(0);
  }
  return o;
}

/** Well-formed IPv4 options: NOP, Router Alert (RFC 2113), an empty Record Route (RFC 791). */
function ipOptions(r: Rng): number[] {
  const o: number[] = [];
  const n = r.int(1, 3);
  for (let i = 0; i < n; i++) {
    const k = r.pick(['nop', 'ra', 'rr']);
    const bytes = k === 'nop' ? [1] : k === 'ra' ? [0x94, 4, 0, 0] : recordRoute(r.int(1, 4));
    if (o.length + bytes.length > 40) break; // 40 option bytes at most (IHL 15); padding keeps it <= 40
    o.push(...bytes);
  }
  return padOptions(o);
}

function recordRoute(slots: number): number[] {
  return [7, 3 + 4 * slots, 4, ...new Array<number>(4 * slots).fill(0)];
}

/** TCP options: MSS (at an even or odd offset), window scale, SACK permitted, timestamps, NOPs. */
function tcpOptions(r: Rng): number[] {
  const o: number[] = [];
  const parts = [...['mss', 'ws', 'sackok', 'ts', 'nop'].filter(() => r.bool(0.5))];
  if (parts.length === 0) parts.push('mss');
  // Shuffle so the MSS option lands at different offsets.
  for (let i = parts.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
  }
  for (const p of parts) {
    if (p === 'mss') { const v = r.pick([536, 1410, 1460, r.int(0, 0xffff)]); o.push(2, 4, v >>> 8, v & 0xff); }
    else if (p === 'ws') o.push(3, 3, r.int(0, 14));
    else if (p === 'sackok') o.push(4, 2);
    else if (p === 'ts') { o.push(8, 10); for (let i = 0; i < 8; i++) o.push(r.int(0, 255)); }
    else o.push(1);
  }
  return padOptions(o);
}

/**
 * refSum: a deliberately naive RFC 1071 sum (byte pairs, odd byte padded), independent of the
 * codec's word-at-a-time sum16. Used only to steer checksums, never as the oracle.
 */
function refSum(b: Buffer, off: number, len: number, acc: number): number {
  let s = acc;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  return s;
}

function refPseudo(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/**
 * steerToZero rewrites the 16-bit word at `wordOff` (at an even distance from the start of the
 * checksummed region) so that the region's ones'-complement sum, currently `sum`, becomes
 * 0 mod 0xffff: its checksum then computes to zero.
 */
function steerToZero(b: Buffer, wordOff: number, sum: number): void {
  const old = (b[wordOff]! << 8) | b[wordOff + 1]!;
  const w = (((old - (sum % 0xffff)) % 0xffff) + 0xffff) % 0xffff;
  b[wordOff] = w >>> 8;
  b[wordOff + 1] = w & 0xff;
}

function mssOf(opts: readonly number[]): number {
  let i = 0;
  while (i < opts.length) {
    const k = opts[i]!;
    if (k === 0) return -1;
    if (k === 1) { i++; continue; }
    if (k === 2) return (opts[i + 2]! << 8) | opts[i + 3]!;
    i += opts[i + 1]!;
  }
  return -1;
}
