/**
 * Valid frames built by the codec itself (views and EncapTemplate), for decap, property and CLI
 * tests: VXLAN-encapsulated ARP, ICMP echo, UDP and TCP (with an MSS option), with and without
 * an 802.1Q tag (inner or outer) and IPv4 options. Addresses follow fixtures/kernel/README.md:
 * underlay 198.51.100.0/24, pods 10.244.0.0/16.
 */

import { ArpOp, ArpView } from '../../src/wire/arp.js';
import { EtherType, IpProto, UdpPort } from '../../src/wire/consts.js';
import { EncapTemplate, VXLAN_HEADROOM, type EncapOptions } from '../../src/wire/encap.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Icmpv4Type, Icmpv4View } from '../../src/wire/icmpv4.js';
import { Ipv4View, emitIpv4Header } from '../../src/wire/ipv4.js';
import { TcpFlag, TcpView, emitTcpHeader } from '../../src/wire/tcp.js';
import { UdpView } from '../../src/wire/udp.js';
import { ipRef, macRef } from './refs.js';

export const OUTER_SRC_MAC = macRef('02:00:c6:33:64:01');
export const OUTER_DST_MAC = macRef('02:00:c6:33:64:02');
export const OUTER_SRC_IP = ipRef('198.51.100.1');
export const OUTER_DST_IP = ipRef('198.51.100.2');
export const INNER_SRC_MAC = macRef('0e:00:0a:f4:01:01');
export const INNER_DST_MAC = macRef('0e:00:0a:f4:01:02');
export const INNER_SRC_IP = ipRef('10.244.1.1');
export const INNER_DST_IP = ipRef('10.244.1.2');
export const VNI = 42;

export type InnerKind = 'arp' | 'icmp' | 'udp' | 'tcp';

export interface InnerSpec {
  readonly kind: InnerKind;
  /** 802.1Q TCI of an inner tag; none when undefined. */
  readonly vlan?: number;
  /** IPv4 option bytes (a multiple of 4); none when undefined. */
  readonly ipOptions?: Buffer;
  readonly tos?: number;
  readonly df?: boolean;
  readonly payloadLen?: number;
  readonly srcPort?: number;
  readonly dstPort?: number;
  readonly srcIp?: number;
  readonly dstIp?: number;
  readonly srcMac?: number;
  readonly dstMac?: number;
}

/** buildInner returns a complete inner Ethernet frame with valid checksums. */
export function buildInner(s: InnerSpec): Buffer {
  const payloadLen = s.payloadLen ?? 18;
  const opts = s.ipOptions ?? Buffer.alloc(0);
  const ethLen = s.vlan === undefined ? 14 : 18;
  const srcIp = s.srcIp ?? INNER_SRC_IP, dstIp = s.dstIp ?? INNER_DST_IP;
  const l4Len = s.kind === 'arp' ? 0 : s.kind === 'tcp' ? 24 + payloadLen : 8 + payloadLen;
  const ipLen = s.kind === 'arp' ? 28 : 20 + opts.length + l4Len;
  const b = Buffer.alloc(ethLen + ipLen);
  const eth = new EthernetView().reset(b, 0, b.length);
  eth.emit(s.dstMac ?? INNER_DST_MAC, s.srcMac ?? INNER_SRC_MAC, s.kind === 'arp' ? EtherType.ARP : EtherType.IPV4, s.vlan ?? -1);
  if (s.kind === 'arp') {
    new ArpView().reset(b, ethLen, b.length).emit(ArpOp.REQUEST, s.srcMac ?? INNER_SRC_MAC, srcIp, 0, dstIp);
    return b;
  }
  const ip = new Ipv4View().reset(b, ethLen, b.length);
  const proto = s.kind === 'icmp' ? IpProto.ICMP : s.kind === 'tcp' ? IpProto.TCP : IpProto.UDP;
  emitIpv4Header(ip, {
    ihl: 5 + opts.length / 4, dscp: (s.tos ?? 0) >>> 2, ecn: (s.tos ?? 0) & 3, totalLen: ipLen, ident: 0x1234,
    reservedFlag: false, df: s.df ?? true, mf: false, fragOffset: 0, ttl: 64, protocol: proto, checksum: 0,
    src: fmtIp(srcIp), dst: fmtIp(dstIp), options: opts.toString('hex'),
  }, true);
  const l4 = ethLen + 20 + opts.length;
  for (let i = b.length - payloadLen; i < b.length; i++) b[i] = i & 0xff;
  if (s.kind === 'icmp') {
    const v = new Icmpv4View().reset(b, l4, b.length);
    v.emitHeader(Icmpv4Type.ECHO_REQUEST, 0, 0x0efe_0001);
    v.fillChecksum();
  } else if (s.kind === 'udp') {
    const v = new UdpView().reset(b, l4, b.length);
    v.emit(s.srcPort ?? 40000, s.dstPort ?? 9999, l4Len);
    v.fillChecksum(srcIp, dstIp);
  } else {
    const v = new TcpView().reset(b, l4, b.length);
    emitTcpHeader(v, {
      srcPort: s.srcPort ?? 33242, dstPort: s.dstPort ?? 7000, seq: 0xa4ff0fb2, ack: 0, dataOffset: 6, reserved: 0,
      flags: TcpFlag.SYN, window: 64860, checksum: 0, urgent: 0, options: '020405b4',
    });
    v.fillChecksum(srcIp, dstIp);
  }
  return b;
}

function fmtIp(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

export interface OuterSpec extends Partial<EncapOptions> {
  /** 802.1Q TCI of an outer tag (spliced in after encapsulation); none when undefined. */
  readonly outerVlan?: number;
}

export const outerOptions = (o: OuterSpec = {}): EncapOptions => ({
  srcMac: OUTER_SRC_MAC, dstMac: OUTER_DST_MAC, srcIp: OUTER_SRC_IP, dstIp: OUTER_DST_IP, vni: VNI, ...o,
});

/** encapsulate returns the whole outer frame for `inner`, as EncapTemplate writes it. */
export function encapsulate(inner: Buffer, o: OuterSpec = {}): Buffer {
  const slot = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(slot, VXLAN_HEADROOM);
  const start = new EncapTemplate(outerOptions(o)).encap(slot, VXLAN_HEADROOM, slot.length);
  const frame = slot.subarray(start);
  if (o.outerVlan === undefined) return frame;
  const tag = Buffer.from([0x81, 0x00, o.outerVlan >>> 8, o.outerVlan & 0xff]);
  return Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
}

export interface CorpusFrame {
  readonly name: string;
  readonly frame: Buffer;
  /** The UDP port a Decapsulator must be configured with. */
  readonly port: number;
  readonly udpChecksum: boolean;
  /** Outer Ethernet header length (14, or 18 with an outer tag). */
  readonly ethLen: number;
  /** Inner frame offset within `frame`. */
  readonly innerOff: number;
}

const RA = Buffer.from('94040000', 'hex'); // Router Alert (RFC 2113), 4 bytes
const NOP_EOL = Buffer.from('01010100', 'hex'); // NOP NOP NOP EOL

const INNERS: readonly (readonly [string, InnerSpec])[] = [
  ['arp', { kind: 'arp' }],
  ['arp+vlan', { kind: 'arp', vlan: 0xa064 }],
  ['icmp', { kind: 'icmp', payloadLen: 56 }],
  ['icmp+vlan', { kind: 'icmp', vlan: 7 }],
  ['icmp+ipopts', { kind: 'icmp', ipOptions: RA }],
  ['udp', { kind: 'udp' }],
  ['udp+ipopts', { kind: 'udp', ipOptions: Buffer.concat([RA, NOP_EOL]), tos: 0xb9 }],
  ['tcp', { kind: 'tcp', payloadLen: 11 }],
  ['tcp+vlan', { kind: 'tcp', vlan: 100, payloadLen: 0 }],
  ['tcp+ipopts', { kind: 'tcp', ipOptions: RA, df: false }],
];

const OUTERS: readonly (readonly [string, OuterSpec])[] = [
  ['4789', { dstPort: UdpPort.VXLAN }],
  ['8472+udpcsum', { dstPort: UdpPort.VXLAN_LINUX, udpChecksum: true }],
  ['4789+udpcsum+vlan', { dstPort: UdpPort.VXLAN, udpChecksum: true, outerVlan: 0x0123 }],
];

/** validCorpus: every inner kind under every outer variant (30 frames). */
export function validCorpus(): CorpusFrame[] {
  const out: CorpusFrame[] = [];
  for (const [on, o] of OUTERS) {
    for (const [inn, s] of INNERS) {
      const ethLen = o.outerVlan === undefined ? 14 : 18;
      out.push({
        name: `${inn} in ${on}`,
        frame: encapsulate(buildInner(s), o),
        port: o.dstPort ?? UdpPort.VXLAN,
        udpChecksum: o.udpChecksum ?? false,
        ethLen,
        innerOff: ethLen + 36,
      });
    }
  }
  return out;
}
