/**
 * What the connection-tracking users (the policy stages, the Service NAT) read of a packet
 * beyond its parsed layout: the TCP flags that move a connection's state, and the packet an ICMP
 * error quotes (netfilter's RELATED lookup). One reader for both users.
 */

import { packPorts } from './table.js';
import { TcpFlag } from './tcp.js';

/** The TCP flags the state machine looks at. */
export const TRACKED_TCP_FLAGS = TcpFlag.FIN | TcpFlag.SYN | TcpFlag.RST | TcpFlag.ACK;

/** ICMP types that quote the packet they are about (unreachable, source quench, redirect, time exceeded, parameter problem). */
export const isIcmpError = (type: number): boolean => type === 3 || type === 4 || type === 5 || type === 11 || type === 12;

const TCP = 6, UDP = 17, SCTP = 132, ICMP = 1;

/**
 * QuotedPacket: the IPv4 header (and the first transport bytes) an ICMP error carries. read()
 * fills it from the ICMP message at `l4` of a packet ending at `end`; reused, no allocation.
 */
export class QuotedPacket {
  /** Offset of the quoted IPv4 header, and its header length. */
  ip = 0;
  ihl = 0;
  proto = 0;
  /** The quoted packet's addresses, as int32 (the connection table's keys). */
  src = 0;
  dst = 0;
  /** Its ports key (packPorts; ICMP echo: the identifier), 0 when the quote stops before them. */
  ports = 0;
  /** Whether the quote holds the transport header's first 4 bytes (TCP, UDP and SCTP ports). */
  portsWhole = false;

  /** read returns true for an ICMP error quoting a whole IPv4 header. */
  read(dv: DataView, l4: number, end: number): boolean {
    if (end - l4 < 8 + 20 || !isIcmpError(dv.getUint8(l4))) return false;
    const ip = l4 + 8, vi = dv.getUint8(ip), ihl = (vi & 0x0f) << 2;
    if (vi >>> 4 !== 4 || ihl < 20 || end - ip < ihl) return false;
    const proto = dv.getUint8(ip + 9), room = end - ip - ihl;
    this.ip = ip;
    this.ihl = ihl;
    this.proto = proto;
    this.src = dv.getInt32(ip + 12);
    this.dst = dv.getInt32(ip + 16);
    this.portsWhole = room >= 4;
    this.ports = 0;
    if ((proto === TCP || proto === UDP || proto === SCTP) && room >= 4) this.ports = dv.getInt32(ip + ihl);
    else if (proto === ICMP && room >= 8) this.ports = packPorts(dv.getUint16(ip + ihl + 4), 0);
    return true;
  }
}
