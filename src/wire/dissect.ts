/**
 * Cold-path dissector: a whole frame to a list of layer Reprs and back, for `flatnet decode`,
 * JSON output and tests. It never throws on bad bytes: decoding stops at the first layer that
 * does not parse, records why in `malformed`, and keeps the rest as a `data` layer, so that
 * emitFrame(dissectFrame(x)) reproduces x byte for byte for any input.
 *
 * Each layer owns its header bytes, then the layers after it, then its `trailer` (bytes after a
 * length field's end: Ethernet padding after an IPv4 packet, bytes after a UDP datagram).
 */

import { FlatnetError, WireError } from '../errors.js';
import { ArpView, emitArp, parseArp, type ArpRepr, ARP_LEN } from './arp.js';
import { EtherType, IpProto, UdpPort, etherTypeName, ipProtoName } from './consts.js';
import { EthernetView, emitEthernet, ethernetReprLen, parseEthernet, type EthernetRepr } from './ethernet.js';
import { Icmpv4Type, Icmpv4View, emitIcmpv4Header, parseIcmpv4Header, ICMPV4_HEADER_LEN, type Icmpv4Repr } from './icmpv4.js';
import { Ipv4View, emitIpv4Header, parseIpv4Header, type Ipv4Repr } from './ipv4.js';
import { TcpView, emitTcpHeader, parseTcpHeader, tcpFlagsString, type TcpRepr } from './tcp.js';
import { ChecksumStatus, UdpView, emitUdpHeader, parseUdpHeader, UDP_HEADER_LEN, type UdpRepr } from './udp.js';
import { VxlanView, emitVxlan, parseVxlan, VXLAN_HEADER_LEN, type VxlanRepr } from './vxlan.js';
import { sum16, fold16, pseudoHeaderSum } from './checksum.js';

export type LayerRepr =
  | ({ readonly layer: 'eth' } & EthernetRepr)
  | ({ readonly layer: 'arp'; readonly trailer?: string } & ArpRepr)
  | ({ readonly layer: 'ipv4'; readonly checksumStatus: ChecksumStatus; readonly trailer?: string } & Ipv4Repr)
  | ({ readonly layer: 'icmp'; readonly checksumStatus: ChecksumStatus } & Icmpv4Repr)
  | ({ readonly layer: 'udp'; readonly checksumStatus: ChecksumStatus; readonly trailer?: string } & UdpRepr)
  | ({ readonly layer: 'tcp'; readonly checksumStatus: ChecksumStatus } & TcpRepr)
  | ({ readonly layer: 'vxlan' } & VxlanRepr)
  | { readonly layer: 'data'; readonly hex: string };

export interface Malformed {
  /** The layer that failed to parse. */
  readonly layer: string;
  readonly code: string;
  readonly message: string;
}

export interface FrameRepr {
  readonly length: number;
  readonly layers: readonly LayerRepr[];
  readonly malformed?: Malformed;
}

export interface DissectOptions {
  /** UDP destination ports decoded as VXLAN; default 4789 and 8472 (Linux's default). */
  readonly vxlanPorts?: readonly number[];
}

const DEFAULT_VXLAN_PORTS: readonly number[] = [UdpPort.VXLAN, UdpPort.VXLAN_LINUX];

/** dissectFrame decodes b[start, end) as an Ethernet frame. Never throws on content. */
export function dissectFrame(b: Buffer, start = 0, end = b.length, opts: DissectOptions = {}): FrameRepr {
  const layers: LayerRepr[] = [];
  const vxlanPorts = opts.vxlanPorts ?? DEFAULT_VXLAN_PORTS;
  let malformed: Malformed | undefined;
  const fail = (layer: string, e: unknown, off: number, stop: number): void => {
    const fe = e instanceof FlatnetError ? e : new WireError('ERR_WIRE_MALFORMED', String(e));
    malformed ??= { layer, code: fe.code, message: fe.message };
    if (stop > off) layers.push({ layer: 'data', hex: b.toString('hex', off, stop) });
  };

  const ethernet = (off: number, stop: number): void => {
    let r: EthernetRepr;
    const v = new EthernetView().reset(b, off, stop);
    try { r = parseEthernet(v); } catch (e) { fail('eth', e, off, stop); return; }
    layers.push({ layer: 'eth', ...r });
    const p = off + ethernetReprLen(r);
    if (r.etherType === EtherType.IPV4) ipv4(p, stop);
    else if (r.etherType === EtherType.ARP) arp(p, stop);
    else data(p, stop);
  };

  const data = (off: number, stop: number): void => {
    if (stop > off) layers.push({ layer: 'data', hex: b.toString('hex', off, stop) });
  };

  const arp = (off: number, stop: number): void => {
    const v = new ArpView().reset(b, off, stop);
    let r: ArpRepr;
    try { r = parseArp(v); } catch (e) { fail('arp', e, off, stop); return; }
    const t = off + ARP_LEN;
    layers.push({ layer: 'arp', ...r, ...(stop > t ? { trailer: b.toString('hex', t, stop) } : {}) });
  };

  const ipv4 = (off: number, stop: number): void => {
    const v = new Ipv4View().reset(b, off, stop);
    let r: Ipv4Repr;
    try { r = parseIpv4Header(v); } catch (e) { fail('ipv4', e, off, stop); return; }
    const pEnd = v.payloadEnd;
    const status = v.verifyChecksum() ? ChecksumStatus.GOOD : ChecksumStatus.BAD;
    layers.push({ layer: 'ipv4', ...r, checksumStatus: status, ...(stop > pEnd ? { trailer: b.toString('hex', pEnd, stop) } : {}) });
    const p = v.payloadOff;
    if (r.fragOffset !== 0) { data(p, pEnd); return; }
    const src = v.src, dst = v.dst;
    if (r.mf) { data(p, pEnd); return; } // first fragment of several: L4 checksum cannot be checked
    if (r.protocol === IpProto.UDP) udp(p, pEnd, src, dst);
    else if (r.protocol === IpProto.TCP) tcp(p, pEnd, src, dst);
    else if (r.protocol === IpProto.ICMP) icmp(p, pEnd);
    else data(p, pEnd);
  };

  const icmp = (off: number, stop: number): void => {
    const v = new Icmpv4View().reset(b, off, stop);
    let r: Icmpv4Repr;
    try { r = parseIcmpv4Header(v); } catch (e) { fail('icmp', e, off, stop); return; }
    layers.push({ layer: 'icmp', ...r, checksumStatus: v.verifyChecksum() ? ChecksumStatus.GOOD : ChecksumStatus.BAD });
    data(off + ICMPV4_HEADER_LEN, stop);
  };

  const udp = (off: number, stop: number, src: number, dst: number): void => {
    const v = new UdpView().reset(b, off, stop);
    let r: UdpRepr;
    try {
      r = parseUdpHeader(v);
      if (r.length < UDP_HEADER_LEN || r.length > stop - off) {
        throw new WireError('ERR_WIRE_MALFORMED', `udp: length ${r.length} with ${stop - off} bytes of IPv4 payload`);
      }
    } catch (e) { fail('udp', e, off, stop); return; }
    const dEnd = off + r.length;
    const status = v.checksumStatus(src, dst);
    layers.push({ layer: 'udp', ...r, checksumStatus: status, ...(stop > dEnd ? { trailer: b.toString('hex', dEnd, stop) } : {}) });
    const p = off + UDP_HEADER_LEN;
    if (vxlanPorts.includes(r.dstPort)) vxlan(p, dEnd);
    else data(p, dEnd);
  };

  const tcp = (off: number, stop: number, src: number, dst: number): void => {
    const v = new TcpView().reset(b, off, stop);
    let r: TcpRepr;
    try { r = parseTcpHeader(v); } catch (e) { fail('tcp', e, off, stop); return; }
    const ok = fold16(sum16(b, off, stop - off, pseudoHeaderSum(src, dst, IpProto.TCP, stop - off))) === 0xffff;
    layers.push({ layer: 'tcp', ...r, checksumStatus: ok ? ChecksumStatus.GOOD : ChecksumStatus.BAD });
    data(v.payloadOff, stop);
  };

  const vxlan = (off: number, stop: number): void => {
    const v = new VxlanView().reset(b, off, stop);
    let r: VxlanRepr;
    try { r = parseVxlan(v); } catch (e) { fail('vxlan', e, off, stop); return; }
    layers.push({ layer: 'vxlan', ...r });
    ethernet(off + VXLAN_HEADER_LEN, stop);
  };

  ethernet(start, end);
  return malformed === undefined ? { length: end - start, layers } : { length: end - start, layers, malformed };
}

/**
 * emitFrame serializes a FrameRepr back to bytes: each header as recorded (checksums included),
 * then the layers after it, then its trailer.
 */
export function emitFrame(f: FrameRepr): Buffer {
  const out = emitFrom(f.layers, 0);
  if (out.length !== f.length) {
    throw new WireError('ERR_WIRE_MALFORMED', `frame: emitted ${out.length} bytes, repr says ${f.length}`);
  }
  return out;
}

function emitFrom(layers: readonly LayerRepr[], i: number): Buffer {
  const l = layers[i];
  if (l === undefined) return Buffer.alloc(0);
  const rest = (): Buffer => emitFrom(layers, i + 1);
  const trailer = (t: string | undefined): Buffer => Buffer.from(t ?? '', 'hex');
  const header = (len: number, write: (hb: Buffer) => void): Buffer => {
    const hb = Buffer.alloc(len);
    write(hb);
    return hb;
  };
  switch (l.layer) {
    case 'data':
      return Buffer.concat([Buffer.from(l.hex, 'hex'), rest()]);
    case 'eth':
      return Buffer.concat([header(ethernetReprLen(l), (hb) => emitEthernet(new EthernetView().reset(hb, 0, hb.length), l)), rest()]);
    case 'arp':
      return Buffer.concat([header(ARP_LEN, (hb) => emitArp(new ArpView().reset(hb, 0, hb.length), l)), trailer(l.trailer)]);
    case 'ipv4':
      return Buffer.concat([header(l.ihl * 4, (hb) => emitIpv4Header(new Ipv4View().reset(hb, 0, hb.length), l)), rest(), trailer(l.trailer)]);
    case 'icmp':
      return Buffer.concat([header(ICMPV4_HEADER_LEN, (hb) => emitIcmpv4Header(new Icmpv4View().reset(hb, 0, hb.length), l)), rest()]);
    case 'udp':
      return Buffer.concat([header(UDP_HEADER_LEN, (hb) => emitUdpHeader(new UdpView().reset(hb, 0, hb.length), l)), rest(), trailer(l.trailer)]);
    case 'tcp':
      return Buffer.concat([header(l.dataOffset * 4, (hb) => emitTcpHeader(new TcpView().reset(hb, 0, hb.length), l)), rest()]);
    case 'vxlan':
      return Buffer.concat([header(VXLAN_HEADER_LEN, (hb) => emitVxlan(new VxlanView().reset(hb, 0, hb.length), l)), rest()]);
  }
}

/** One-line, tshark-like summary of a dissected frame (addresses, VNI, the innermost protocol). */
export function summarize(f: FrameRepr): string {
  const parts: string[] = [];
  let cur = '';
  let ipSrc = '', ipDst = '';
  const flush = (): void => { if (cur !== '') parts.push(cur); cur = ''; };
  for (const l of f.layers) {
    switch (l.layer) {
      case 'eth':
        flush();
        cur = `${l.src} → ${l.dst}${l.vlan ? ` vlan ${l.vlan.vid}` : ''} ${etherTypeName(l.etherType)}`;
        break;
      case 'arp':
        cur = l.oper === 1 ? `ARP who-has ${l.tpa} tell ${l.spa}` : l.oper === 2 ? `ARP ${l.spa} is-at ${l.sha}` : `ARP op ${l.oper}`;
        break;
      case 'ipv4': {
        ipSrc = l.src; ipDst = l.dst;
        const frag = l.mf || l.fragOffset !== 0 ? ` frag off=${l.fragOffset}${l.mf ? ' MF' : ''}` : '';
        cur = `${l.src} → ${l.dst} ${ipProtoName(l.protocol)} len=${l.totalLen} ttl=${l.ttl}${l.df ? ' DF' : ''}${frag}${l.checksumStatus === 'bad' ? ' [bad ip csum]' : ''}`;
        break;
      }
      case 'icmp':
        cur = `${ipSrc} → ${ipDst} ICMP ${icmpText(l)}${l.checksumStatus === 'bad' ? ' [bad icmp csum]' : ''}`;
        break;
      case 'udp':
        cur = `${ipSrc}:${l.srcPort} → ${ipDst}:${l.dstPort} UDP len=${l.length}${l.checksum === 0 ? '' : ` csum ${l.checksumStatus}`}`;
        break;
      case 'tcp':
        cur = `${ipSrc}:${l.srcPort} → ${ipDst}:${l.dstPort} TCP [${tcpFlagsString(l.flags)}] seq=${l.seq} ack=${l.ack} win=${l.window}${l.mss !== undefined ? ` mss=${l.mss}` : ''}${l.checksumStatus === 'bad' ? ' [bad tcp csum]' : ''}`;
        break;
      case 'vxlan':
        cur += ` VXLAN vni=${l.vni} flags=0x${l.flags.toString(16).padStart(2, '0')}${l.gbp ? ` gbp=${l.gbp.groupPolicyId}` : ''}`;
        break;
      case 'data':
        break;
    }
  }
  flush();
  let s = parts.join(' │ ');
  if (f.malformed) s += ` [malformed ${f.malformed.layer}: ${f.malformed.message}]`;
  return s;
}

function icmpText(l: Icmpv4Repr): string {
  switch (l.type) {
    case Icmpv4Type.ECHO_REQUEST: return `echo request id=${l.ident} seq=${l.seq}`;
    case Icmpv4Type.ECHO_REPLY: return `echo reply id=${l.ident} seq=${l.seq}`;
    case Icmpv4Type.DEST_UNREACH:
      return l.code === 4 ? `frag needed mtu=${l.nextHopMtu}` : `dest unreachable code=${l.code}`;
    case Icmpv4Type.TIME_EXCEEDED: return `time exceeded code=${l.code}`;
    default: return `type=${l.type} code=${l.code}`;
  }
}
