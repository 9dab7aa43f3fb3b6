/**
 * fast-check arbitraries for TCP/UDP super-frames (what a pod hands a virtio port with TSO or
 * USO on), and a reference checker for segmenter output written from the rules of
 * tcp_gso_segment/__udp_gso_segment, not from src/mtu.
 */

import fc from 'fast-check';
import { expect } from 'vitest';
import { ipv4HeaderOk, l4ChecksumOk, offsetsOf, payloadOf, tcpFrame, udpFrame, type TcpSpec, type UdpSpec } from './l4-frames.js';

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80;

/** IPv4 options that parse: NOOPs, Router Alert (copied), a timestamp-like non-copied option, END. */
const ipOptions = fc.array(fc.constantFrom('01', '94040000', '4406050000000000', '00'), { maxLength: 4 }).map((parts) => {
  let h = parts.join('');
  while ((h.length / 2) % 4 !== 0) h += '00';
  return Buffer.from(h.slice(0, 80), 'hex');
});

/** TCP option bytes: timestamps (+ NOOPs) or arbitrary bytes; the segmenter copies them untouched. */
const tcpOptions = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => {
    const o = Buffer.from('0101080a0000000000000000', 'hex');
    o.writeUInt32BE(a >>> 0, 4);
    o.writeUInt32BE(b >>> 0, 8);
    return o;
  }),
  fc.integer({ min: 1, max: 10 }).chain((w) => fc.uint8Array({ minLength: 4 * w, maxLength: 4 * w }).map((u) => Buffer.from(u))),
);

export interface TcpCase {
  readonly spec: TcpSpec;
  readonly frame: Buffer;
  readonly payloadLen: number;
  readonly mss: number;
}

/**
 * tcpSuperFrame: IPv4 (with options sometimes) or IPv6, any flags `flagsArb` produces, a payload
 * of 0..maxPayload bytes, and an mss that keeps the segment count at or below 200.
 */
export function tcpSuperFrame(opts: { maxPayload?: number; flags?: fc.Arbitrary<number>; ipOpts?: boolean; csum?: 'full' | 'partial' } = {}): fc.Arbitrary<TcpCase> {
  const maxPayload = opts.maxPayload ?? 20000;
  return fc.record({
    v6: fc.boolean(),
    ipOptions: opts.ipOpts === false ? fc.constant(Buffer.alloc(0)) : ipOptions,
    tos: fc.nat(255),
    ttl: fc.integer({ min: 1, max: 255 }),
    id: fc.nat(0xffff),
    df: fc.boolean(),
    flowLabel: fc.nat(0xfffff),
    sport: fc.nat(0xffff),
    dport: fc.nat(0xffff),
    seq: fc.nat(0xffffffff),
    ack: fc.nat(0xffffffff),
    flags: opts.flags ?? fc.nat(0x1ff),
    reserved: fc.nat(7),
    window: fc.nat(0xffff),
    urgent: fc.nat(0xffff),
    tcpOptions,
    payloadLen: fc.oneof(fc.nat(maxPayload), fc.constantFrom(0, 1, maxPayload)),
    seed: fc.nat(),
    mssPick: fc.nat(),
  }).map((r) => {
    // Keep IPv4 total length within 65,535.
    const room = 0xffff - (r.v6 ? 0 : 20 + r.ipOptions.length) - 20 - r.tcpOptions.length;
    const payloadLen = Math.min(r.payloadLen, room);
    const minMss = Math.max(1, Math.ceil(payloadLen / 200));
    const mss = minMss + (r.mssPick % Math.max(1, 1460 - minMss + 1));
    const spec: TcpSpec = {
      v6: r.v6, ipOptions: r.v6 ? Buffer.alloc(0) : r.ipOptions, tos: r.tos, ttl: r.ttl, id: r.id,
      flagsFrag: r.df ? 0x4000 : 0, flowLabel: r.flowLabel, sport: r.sport, dport: r.dport, seq: r.seq, ack: r.ack,
      flags: r.flags, reserved: r.reserved, window: r.window, urgent: r.urgent, tcpOptions: r.tcpOptions,
      payload: payloadOf(payloadLen, r.seed), csum: opts.csum ?? 'partial',
    };
    return { spec, frame: tcpFrame(spec), payloadLen, mss };
  });
}

export interface UdpCase {
  readonly spec: UdpSpec;
  readonly frame: Buffer;
  readonly payloadLen: number;
  readonly gsoSize: number;
}

export function udpSuperFrame(maxPayload = 20000): fc.Arbitrary<UdpCase> {
  return fc.record({
    v6: fc.boolean(),
    ipOptions,
    id: fc.nat(0xffff),
    sport: fc.nat(0xffff),
    dport: fc.nat(0xffff),
    payloadLen: fc.oneof(fc.nat(maxPayload), fc.constantFrom(0, 1, maxPayload)),
    seed: fc.nat(),
    pick: fc.nat(),
  }).map((r) => {
    const payloadLen = Math.min(r.payloadLen, 0xffff - 20 - r.ipOptions.length - 8);
    const min = Math.max(1, Math.ceil(payloadLen / 200));
    const gsoSize = min + (r.pick % Math.max(1, 1400 - min + 1));
    const spec: UdpSpec = { v6: r.v6, ipOptions: r.v6 ? Buffer.alloc(0) : r.ipOptions, id: r.id, sport: r.sport, dport: r.dport, payload: payloadOf(payloadLen, r.seed), csum: 'partial' };
    return { spec, frame: udpFrame(spec), payloadLen, gsoSize };
  });
}

/**
 * expectBytes: `actual` equals `expected`, compared with Buffer#equals (vitest's deep equality
 * walks big buffers slowly); a mismatch names the first differing offset and both bytes.
 */
export function expectBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  expect.fail(`${what}: ${a.length} vs ${b.length} bytes, first difference at ${i}: ${a[i]?.toString(16)} vs ${b[i]?.toString(16)}`);
}

/**
 * expectTcpSegments checks segmenter output for super-frame `x` cut at `mss`: segment k is
 * out[base + k * stride + prefix, + lens[k]); every header byte is x's except the fields
 * tcp_gso_segment rewrites, which must hold the values its rules give; checksums verify; the
 * payloads concatenate to x's. Returns the segments (copies).
 */
export function expectTcpSegments(x: Buffer, mss: number, count: number, out: Buffer, base: number, prefix: number, lens: Int32Array): Buffer[] {
  const o = offsetsOf(x);
  const thl = (x[o.l4 + 12]! >>> 4) * 4;
  const hl = o.l4 + thl;
  const payload = x.subarray(hl, o.ipEnd);
  const n = payload.length <= mss ? 1 : Math.ceil(payload.length / mss);
  expect(count).toBe(n);
  const stride = prefix + hl + mss;
  const seq0 = x.readUInt32BE(o.l4 + 4);
  const fw0 = x.readUInt16BE(o.l4 + 12);
  const segs: Buffer[] = [];
  for (let k = 0; k < n; k++) {
    const pay = k === n - 1 ? payload.length - k * mss : mss;
    expect(lens[k]).toBe(hl + pay);
    const s = Buffer.from(out.subarray(base + k * stride + prefix, base + k * stride + prefix + hl + pay));
    segs.push(s);
    const want = Buffer.from(x.subarray(0, hl));
    if (o.v6) {
      want.writeUInt16BE(thl + pay, o.l3 + 4);
    } else {
      want.writeUInt16BE(o.ipHl + thl + pay, o.l3 + 2);
      want.writeUInt16BE((x.readUInt16BE(o.l3 + 4) + k) & 0xffff, o.l3 + 4);
      want.writeUInt16BE(s.readUInt16BE(o.l3 + 10), o.l3 + 10); // checked by ipv4HeaderOk below
    }
    want.writeUInt32BE((seq0 + k * mss) % 0x1_0000_0000, o.l4 + 4);
    let fw = fw0;
    if (k !== n - 1) fw &= ~(FIN | PSH);
    if (k !== 0) fw &= ~CWR;
    want.writeUInt16BE(fw, o.l4 + 12);
    want.writeUInt16BE(s.readUInt16BE(o.l4 + 16), o.l4 + 16); // checked by l4ChecksumOk below
    expect(s.subarray(0, hl)).toEqual(want);
    expectBytes(s.subarray(hl), payload.subarray(k * mss, k * mss + pay), `segment ${k} payload`);
    expect(l4ChecksumOk(s)).toBe(true);
    if (!o.v6) expect(ipv4HeaderOk(s)).toBe(true);
  }
  return segs;
}

/** expectUdpSegments: as expectTcpSegments, for __udp_gso_segment's datagrams. */
export function expectUdpSegments(x: Buffer, gso: number, count: number, out: Buffer, base: number, prefix: number, lens: Int32Array): Buffer[] {
  const o = offsetsOf(x);
  const hl = o.l4 + 8;
  const payload = x.subarray(hl, o.ipEnd);
  const n = payload.length <= gso ? 1 : Math.ceil(payload.length / gso);
  expect(count).toBe(n);
  const stride = prefix + hl + gso;
  const segs: Buffer[] = [];
  for (let k = 0; k < n; k++) {
    const pay = k === n - 1 ? payload.length - k * gso : gso;
    expect(lens[k]).toBe(hl + pay);
    const s = Buffer.from(out.subarray(base + k * stride + prefix, base + k * stride + prefix + hl + pay));
    segs.push(s);
    const want = Buffer.from(x.subarray(0, hl));
    if (o.v6) want.writeUInt16BE(8 + pay, o.l3 + 4);
    else {
      want.writeUInt16BE(o.ipHl + 8 + pay, o.l3 + 2);
      want.writeUInt16BE((x.readUInt16BE(o.l3 + 4) + k) & 0xffff, o.l3 + 4);
      want.writeUInt16BE(s.readUInt16BE(o.l3 + 10), o.l3 + 10);
    }
    want.writeUInt16BE(8 + pay, o.l4 + 4);
    want.writeUInt16BE(s.readUInt16BE(o.l4 + 6), o.l4 + 6);
    expect(s.subarray(0, hl)).toEqual(want);
    expect(s.readUInt16BE(o.l4 + 6)).not.toBe(0);
    expectBytes(s.subarray(hl), payload.subarray(k * gso, k * gso + pay), `datagram ${k} payload`);
    expect(l4ChecksumOk(s)).toBe(true);
    if (!o.v6) expect(ipv4HeaderOk(s)).toBe(true);
  }
  return segs;
}
