/**
 * Test frames for src/mtu, built the obvious way (Buffer writes and the reference checksums of
 * refs.ts, no code from src/): Ethernet + IPv4 (options allowed) or IPv6 + TCP or UDP, with the
 * L4 checksum complete, partial (the folded pseudo-header sum, as virtio delivers a
 * CHECKSUM_PARTIAL or GSO frame) or zero. Also a reference TCP/UDP checksum verifier.
 */

import { checksumRef, onesSumRef, verifiesRef } from './refs.js';

export const MAC_A = Buffer.from('0e000af40101', 'hex');
export const MAC_B = Buffer.from('0e000af40202', 'hex');
export const V4_A = Buffer.from([10, 244, 1, 1]);
export const V4_B = Buffer.from([10, 244, 2, 3]);
export const V6_A = Buffer.from('fd000010024400010000000000000001', 'hex');
export const V6_B = Buffer.from('fd000010024400020000000000000003', 'hex');

export type CsumMode = 'full' | 'partial' | 'zero';

export interface IpSpec {
  v6?: boolean;
  srcMac?: Buffer;
  dstMac?: Buffer;
  src?: Buffer;
  dst?: Buffer;
  /** IPv4 TOS / IPv6 traffic class. */
  tos?: number;
  ttl?: number;
  id?: number;
  /** IPv4 flags + fragment offset word (0x4000 = DF). */
  flagsFrag?: number;
  /** IPv4 option bytes (a multiple of 4). */
  ipOptions?: Buffer;
  flowLabel?: number;
  /** Override the IPv4 header checksum with a wrong value. */
  badIpChecksum?: boolean;
}

export interface TcpSpec extends IpSpec {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  /** The nine flag bits. */
  flags?: number;
  /** Bits 9-11 of the offset/flags word (reserved). */
  reserved?: number;
  window?: number;
  urgent?: number;
  tcpOptions?: Buffer;
  payload?: Buffer;
  csum?: CsumMode;
}

export interface UdpSpec extends IpSpec {
  sport?: number;
  dport?: number;
  payload?: Buffer;
  csum?: CsumMode;
  /** Value for the UDP length field (default: the real length). */
  udpLen?: number;
}

/** The IPv4 (12 bytes) or IPv6 (40 bytes) pseudo-header. */
export function pseudoRef(v6: boolean, src: Buffer, dst: Buffer, proto: number, len: number): Buffer {
  if (!v6) {
    const p = Buffer.alloc(12);
    src.copy(p, 0);
    dst.copy(p, 4);
    p[9] = proto;
    p.writeUInt16BE(len, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  src.copy(p, 0);
  dst.copy(p, 16);
  p.writeUInt32BE(len, 32);
  p[39] = proto;
  return p;
}

function ipWrap(s: IpSpec, proto: number, l4: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  (s.dstMac ?? MAC_B).copy(eth, 0);
  (s.srcMac ?? MAC_A).copy(eth, 6);
  if (s.v6) {
    eth.writeUInt16BE(0x86dd, 12);
    const ip = Buffer.alloc(40);
    ip.writeUInt32BE(((6 << 28) | ((s.tos ?? 0) << 20) | (s.flowLabel ?? 0)) >>> 0, 0);
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = proto;
    ip[7] = s.ttl ?? 64;
    (s.src ?? V6_A).copy(ip, 8);
    (s.dst ?? V6_B).copy(ip, 24);
    return Buffer.concat([eth, ip, l4]);
  }
  eth.writeUInt16BE(0x0800, 12);
  const opts = s.ipOptions ?? Buffer.alloc(0);
  const ip = Buffer.alloc(20 + opts.length);
  ip[0] = 0x40 | ((20 + opts.length) / 4);
  ip[1] = s.tos ?? 0;
  ip.writeUInt16BE(ip.length + l4.length, 2);
  ip.writeUInt16BE(s.id ?? 0x1234, 4);
  ip.writeUInt16BE(s.flagsFrag ?? 0x4000, 6);
  ip[8] = s.ttl ?? 64;
  ip[9] = proto;
  (s.src ?? V4_A).copy(ip, 12);
  (s.dst ?? V4_B).copy(ip, 16);
  opts.copy(ip, 20);
  ip.writeUInt16BE(checksumRef(ip), 10);
  if (s.badIpChecksum) ip.writeUInt16BE(ip.readUInt16BE(10) ^ 0x0101, 10);
  return Buffer.concat([eth, ip, l4]);
}

/** tcpFrame: an Ethernet frame with one TCP segment (defaults: IPv4 DF, ACK, csum full). */
export function tcpFrame(s: TcpSpec = {}): Buffer {
  const opts = s.tcpOptions ?? Buffer.alloc(0);
  const payload = s.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(s.sport ?? 40000, 0);
  h.writeUInt16BE(s.dport ?? 5201, 2);
  h.writeUInt32BE((s.seq ?? 0x01020304) >>> 0, 4);
  h.writeUInt32BE((s.ack ?? 0x0a0b0c0d) >>> 0, 8);
  h.writeUInt16BE((((20 + opts.length) / 4) << 12) | ((s.reserved ?? 0) << 9) | (s.flags ?? 0x10), 12);
  h.writeUInt16BE(s.window ?? 502, 14);
  h.writeUInt16BE(s.urgent ?? 0, 18);
  opts.copy(h, 20);
  const l4 = Buffer.concat([h, payload]);
  setL4Checksum(l4, 16, s, 6, s.csum ?? 'full');
  return ipWrap(s, 6, l4);
}

/** udpFrame: an Ethernet frame with one UDP datagram (defaults: IPv4 DF, csum full). */
export function udpFrame(s: UdpSpec = {}): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(s.sport ?? 40000, 0);
  h.writeUInt16BE(s.dport ?? 443, 2);
  h.writeUInt16BE(s.udpLen ?? 8 + payload.length, 4);
  const l4 = Buffer.concat([h, payload]);
  setL4Checksum(l4, 6, s, 17, s.csum ?? 'full');
  return ipWrap(s, 17, l4);
}

function setL4Checksum(l4: Buffer, at: number, s: IpSpec, proto: number, mode: CsumMode): void {
  const v6 = s.v6 ?? false;
  const pseudo = pseudoRef(v6, s.src ?? (v6 ? V6_A : V4_A), s.dst ?? (v6 ? V6_B : V4_B), proto, l4.length);
  l4.writeUInt16BE(0, at);
  if (mode === 'zero') return;
  if (mode === 'partial') { l4.writeUInt16BE(onesSumRef(pseudo), at); return; }
  let c = checksumRef(pseudo, l4);
  if (proto === 17 && c === 0) c = 0xffff;
  l4.writeUInt16BE(c, at);
}

/** Offsets of a frame built here (untagged; IPv6 without extension headers). */
export function offsetsOf(f: Buffer): { v6: boolean; l3: number; l4: number; ipEnd: number; proto: number; ipHl: number } {
  const v6 = f.readUInt16BE(12) === 0x86dd;
  const l3 = 14;
  const ipHl = v6 ? 40 : (f[14]! & 0x0f) * 4;
  const ipEnd = v6 ? l3 + 40 + f.readUInt16BE(18) : l3 + f.readUInt16BE(16);
  return { v6, l3, l4: l3 + ipHl, ipEnd, proto: v6 ? f[20]! : f[23]!, ipHl };
}

/** l4ChecksumOk: the TCP/UDP checksum of a frame built here verifies (reference arithmetic). */
export function l4ChecksumOk(f: Buffer): boolean {
  const o = offsetsOf(f);
  const src = o.v6 ? f.subarray(22, 38) : f.subarray(26, 30);
  const dst = o.v6 ? f.subarray(38, 54) : f.subarray(30, 34);
  const l4 = f.subarray(o.l4, o.ipEnd);
  return verifiesRef(pseudoRef(o.v6, Buffer.from(src), Buffer.from(dst), o.proto, l4.length), l4);
}

/** ipv4HeaderOk: the IPv4 header checksum of a frame verifies (reference arithmetic). */
export function ipv4HeaderOk(f: Buffer): boolean {
  const hl = (f[14]! & 0x0f) * 4;
  return verifiesRef(f.subarray(14, 14 + hl));
}

/** partialSumRef: the folded pseudo-header sum a CHECKSUM_PARTIAL frame carries in its L4 field. */
export function partialSumRef(f: Buffer): number {
  const o = offsetsOf(f);
  const src = o.v6 ? f.subarray(22, 38) : f.subarray(26, 30);
  const dst = o.v6 ? f.subarray(38, 54) : f.subarray(30, 34);
  return onesSumRef(pseudoRef(o.v6, Buffer.from(src), Buffer.from(dst), o.proto, o.ipEnd - o.l4));
}

/** Deterministic payload bytes. */
export function payloadOf(len: number, seed = 1): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
