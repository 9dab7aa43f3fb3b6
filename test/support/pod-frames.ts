/** Builders for the frames pods and hosts send (switch tests): explicit fields, valid checksums. */

import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { ArpOp, ArpView, ARP_LEN } from '../../src/wire/arp.js';
import { EtherType, IpProto } from '../../src/wire/consts.js';
import { ETH_HEADER_LEN, EthernetView } from '../../src/wire/ethernet.js';
import { Icmpv4Type, Icmpv4View, ICMPV4_HEADER_LEN } from '../../src/wire/icmpv4.js';
import { IPV4_HEADER_LEN, Ipv4View } from '../../src/wire/ipv4.js';
import { TcpView, TCP_HEADER_LEN } from '../../src/wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../../src/wire/udp.js';

export const mac = parseMac;
export const ip = parseIpv4;
export const BROADCAST = 0xffff_ffff_ffff;

export interface IpOpts {
  readonly srcMac: number;
  readonly dstMac: number;
  readonly src: number;
  readonly dst: number;
  readonly ttl?: number;
  readonly tos?: number;
  readonly df?: boolean;
  readonly ident?: number;
}

function ipFrame(o: IpOpts, proto: number, l4Len: number): { b: Buffer; l4: number } {
  const len = ETH_HEADER_LEN + IPV4_HEADER_LEN + l4Len;
  const b = Buffer.alloc(len);
  new EthernetView().reset(b, 0, len).emit(o.dstMac, o.srcMac, EtherType.IPV4);
  new Ipv4View().reset(b, ETH_HEADER_LEN, len).emit(o.src, o.dst, proto, IPV4_HEADER_LEN + l4Len, o.ttl ?? 64, o.tos ?? 0, o.ident ?? 1, o.df ? 0x4000 : 0);
  return { b, l4: ETH_HEADER_LEN + IPV4_HEADER_LEN };
}

export function icmpEcho(o: IpOpts & { id?: number; seq?: number; payload?: number; reply?: boolean }): Buffer {
  const payload = o.payload ?? 32;
  const { b, l4 } = ipFrame(o, IpProto.ICMP, ICMPV4_HEADER_LEN + payload);
  for (let i = 0; i < payload; i++) b[l4 + ICMPV4_HEADER_LEN + i] = i & 0xff;
  const icmp = new Icmpv4View().reset(b, l4, b.length);
  icmp.emitHeader(o.reply ? Icmpv4Type.ECHO_REPLY : Icmpv4Type.ECHO_REQUEST, 0, ((o.id ?? 7) << 16) | (o.seq ?? 1));
  icmp.fillChecksum();
  return b;
}

export function udp(o: IpOpts & { sport?: number; dport?: number; payload?: number }): Buffer {
  const payload = o.payload ?? 18;
  const { b, l4 } = ipFrame(o, IpProto.UDP, UDP_HEADER_LEN + payload);
  for (let i = 0; i < payload; i++) b[l4 + UDP_HEADER_LEN + i] = (i * 7) & 0xff;
  const u = new UdpView().reset(b, l4, b.length);
  u.emit(o.sport ?? 40000, o.dport ?? 5000, UDP_HEADER_LEN + payload);
  u.fillChecksum(o.src, o.dst);
  return b;
}

export function tcp(o: IpOpts & { sport?: number; dport?: number; flags?: number; seq?: number; payload?: number }): Buffer {
  const payload = o.payload ?? 0;
  const { b, l4 } = ipFrame(o, IpProto.TCP, TCP_HEADER_LEN + payload);
  const t = new TcpView().reset(b, l4, b.length);
  t.emit(o.sport ?? 40000, o.dport ?? 80, o.seq ?? 1000, 0, o.flags ?? 0x02, 64240);
  t.fillChecksum(o.src, o.dst);
  return b;
}

export function arp(o: { srcMac: number; dstMac?: number; oper?: number; sha?: number; spa: number; tha?: number; tpa: number }): Buffer {
  const len = ETH_HEADER_LEN + ARP_LEN;
  const b = Buffer.alloc(len);
  new EthernetView().reset(b, 0, len).emit(o.dstMac ?? BROADCAST, o.srcMac, EtherType.ARP);
  new ArpView().reset(b, ETH_HEADER_LEN, len).emit(o.oper ?? ArpOp.REQUEST, o.sha ?? o.srcMac, o.spa, o.tha ?? 0, o.tpa);
  return b;
}
