/** Builders for the frames pods and hosts send (switch tests): explicit fields, valid checksums. */

import { arpFrame, ipv4Frame, type L3Spec } from '../../fixtures/gen/frames.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { IpProto } from '../../src/wire/consts.js';
import { Icmpv4Type, Icmpv4View, ICMPV4_HEADER_LEN } from '../../src/wire/icmpv4.js';
import { TcpView, TCP_HEADER_LEN } from '../../src/wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../../src/wire/udp.js';

export const mac = parseMac;
export const ip = parseIpv4;
export const BROADCAST = 0xffff_ffff_ffff;

/** The fixture generators' fields, untagged; here DF is off unless asked for (theirs defaults it on). */
export type IpOpts = Omit<L3Spec, 'vlan'>;

const ipFrame = (o: IpOpts, proto: number, l4Len: number): { b: Buffer; l4: number } => ipv4Frame({ ...o, df: o.df === true }, proto, l4Len);

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

/** An ARP request (default) or reply, broadcast unless `dstMac` is given. */
export const arp = arpFrame;
