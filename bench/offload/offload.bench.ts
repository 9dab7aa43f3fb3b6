/**
 * Offload algorithms benchmark (issue 5): software segmentation (TSO) of a 64 KB TCP super-frame
 * into MSS-1398 segments (a 1,450-byte pod MTU: 47 segments), and coalescing (GRO) of those 47
 * segments back into one super-frame; in GB/s of TCP payload, ns per super-frame and heap bytes
 * allocated per super-frame. Each is measured next to a naive implementation in the same run
 * (Buffer.alloc per segment, Buffer#copy, readUInt / writeUInt accessors, a byte-pair checksum
 * loop, Buffer.concat), so the figures read as ratios. Also: the bulk checksum (sumFolded, LE
 * words) against the codec's dvSum16 (BE words) over 64 KB, which justifies src/mtu/sum.ts.
 *
 * Run: node --expose-gc --max-semi-space-size=64 dist/bench/offload/offload.bench.js [--json out.json]
 */

import { writeFileSync } from 'node:fs';
import { Batch, FrameList } from '../../src/buf/batch.js';
import { TcpCoalescer } from '../../src/offload/coalesce.js';
import { FrameLayout } from '../../src/mtu/layout.js';
import { segmentGsoHeaders, segmentTcp } from '../../src/offload/segment.js';
import { VirtioGso } from '../../src/wire/virtio-net-hdr.js';
import { sumFolded } from '../../src/offload/sum.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { dvSum16, fold16 } from '../../src/wire/checksum.js';
import { consume, machine, measure, type Result } from '../harness.js';

const MSS = 1398;
const ETH = 14, IP = 20, TCP = 20, HL = ETH + IP + TCP;
const PAYLOAD = 65_535 - IP - TCP; // the largest IPv4 super-frame: 65,495 payload bytes
const SEGS = Math.ceil(PAYLOAD / MSS); // 47
const PREFIX = 8; // a VXLAN header per segment, as on a UDP-GSO train

/** The super-frame a pod's TSO hands over: IPv4 DF, ACK|PSH, the pseudo-header sum in the TCP checksum. */
function superFrame(): Buffer {
  const f = Buffer.alloc(HL + PAYLOAD);
  Buffer.from('0e000af402020e000af401010800', 'hex').copy(f, 0);
  f.writeUInt8(0x45, 14);
  f.writeUInt16BE(IP + TCP + PAYLOAD, 16);
  f.writeUInt16BE(0x1234, 18);
  f.writeUInt16BE(0x4000, 20);
  f.writeUInt8(64, 22);
  f.writeUInt8(6, 23);
  Buffer.from([10, 244, 1, 1, 10, 244, 2, 3]).copy(f, 26);
  naiveFillIpChecksum(f, 14);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(5201, 36);
  f.writeUInt32BE(0x01020304, 38);
  f.writeUInt32BE(0x0a0b0c0d, 42);
  f.writeUInt16BE((5 << 12) | 0x18, 46);
  f.writeUInt16BE(502, 48);
  for (let i = HL; i < f.length; i++) f[i] = (i * 7 + 3) & 0xff;
  f.writeUInt16BE(naiveFold(naivePseudo(f, TCP + PAYLOAD)), 50);
  return f;
}

// ---------------------------------------------------------------------------------------------
// The naive baselines: what one writes with Buffer's own API and no attention to allocation.

function naiveFold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function naiveSum(b: Buffer, from: number, to: number, acc: number): number {
  let s = acc;
  for (let i = from; i + 1 < to; i += 2) s += b.readUInt16BE(i);
  if ((to - from) % 2 === 1) s += b[to - 1]! << 8;
  return s;
}

function naivePseudo(f: Buffer, l4Len: number): number {
  return f.readUInt16BE(26) + f.readUInt16BE(28) + f.readUInt16BE(30) + f.readUInt16BE(32) + 6 + l4Len;
}

function naiveFillIpChecksum(f: Buffer, l3: number): void {
  f.writeUInt16BE(0, l3 + 10);
  f.writeUInt16BE(~naiveFold(naiveSum(f, l3, l3 + 20, 0)) & 0xffff, l3 + 10);
}

/** naiveSegment: one Buffer.alloc per segment, Buffer#copy, accessors, byte-pair checksum. */
function naiveSegment(x: Buffer, mss: number): Buffer[] {
  const out: Buffer[] = [];
  const payLen = x.length - HL;
  const n = Math.ceil(payLen / mss);
  const seq0 = x.readUInt32BE(38), id0 = x.readUInt16BE(18), fl0 = x.readUInt16BE(46);
  for (let k = 0; k < n; k++) {
    const pay = Math.min(mss, payLen - k * mss);
    const s = Buffer.alloc(HL + pay);
    x.copy(s, 0, 0, HL);
    x.copy(s, HL, HL + k * mss, HL + k * mss + pay);
    s.writeUInt16BE(IP + TCP + pay, 16);
    s.writeUInt16BE((id0 + k) & 0xffff, 18);
    naiveFillIpChecksum(s, 14);
    s.writeUInt32BE((seq0 + k * mss) % 0x1_0000_0000, 38);
    s.writeUInt16BE(k === n - 1 ? fl0 : fl0 & ~0x09, 46);
    s.writeUInt16BE(0, 50);
    s.writeUInt16BE(~naiveFold(naiveSum(s, 34, s.length, naivePseudo(s, TCP + pay))) & 0xffff, 50);
    out.push(s);
  }
  return out;
}

/** naiveCoalesce: verify each segment, check adjacency, Buffer.concat the payloads, fix the header. */
function naiveCoalesce(segs: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [segs[0]!.subarray(0, HL)];
  let next = segs[0]!.readUInt32BE(38);
  for (const s of segs) {
    if (naiveFold(naiveSum(s, 34, s.length, naivePseudo(s, s.length - 34))) !== 0xffff) throw new Error('bad checksum');
    if (s.readUInt32BE(38) !== next || s.readUInt32BE(42) !== segs[0]!.readUInt32BE(42)) throw new Error('not adjacent');
    parts.push(s.subarray(HL));
    next = (next + s.length - HL) % 0x1_0000_0000;
  }
  const m = Buffer.concat(parts);
  m.writeUInt16BE(m.length - ETH, 16);
  m.writeUInt8(m.readUInt8(47) | (segs[segs.length - 1]!.readUInt8(47) & 0x08), 47); // PSH from the last
  naiveFillIpChecksum(m, 14);
  m.writeUInt16BE(naiveFold(naivePseudo(m, m.length - 34)), 50);
  return Buffer.concat([Buffer.from([1, 1, 54, 0, MSS & 0xff, MSS >>> 8, 34, 0, 16, 0]), m]);
}

// ---------------------------------------------------------------------------------------------

interface Row {
  readonly name: string;
  readonly usPerSuperFrame: number;
  readonly gbPerSec: number;
  readonly heapBytesPerSuperFrame: number;
  readonly gcs: number;
  readonly baseline?: string;
  readonly speedup?: number;
}

function row(r: Result, bytes: number, base?: Result): Row {
  return {
    name: r.name,
    usPerSuperFrame: r.nsPerPacket / 1000,
    gbPerSec: bytes / r.nsPerPacket,
    heapBytesPerSuperFrame: r.bytesPerPacket,
    gcs: r.gcDuringAllocCheck,
    ...(base ? { baseline: base.name, speedup: base.nsPerPacket / r.nsPerPacket } : {}),
  };
}

function run(): Row[] {
  const x = superFrame();
  const lens = new Int32Array(64);
  const scratch = Buffer.alloc(SEGS * (PREFIX + HL + MSS) + 64);
  // Segments for the coalescing cases, laid out as the overlay receive path leaves them: one per
  // 2,048-byte slot of an rx arena, after a 64-byte headroom (the VXLAN/outer headers stripped).
  const lx = FrameLayout.of(x);
  const n = segmentTcp(lx, MSS, scratch, 0, PREFIX, lens);
  if (n !== SEGS) throw new Error(`segmentTcp made ${n} segments, expected ${SEGS}`);
  const rx = new Batch(128, 2048); // slots 0-46: the segments; 64-127: spare (coalescer output)
  const stride = PREFIX + lens[0]!;
  for (let k = 0; k < n; k++) {
    const o = rx.slotOff(k) + 64;
    scratch.copy(rx.arena, o, k * stride + PREFIX, k * stride + PREFIX + lens[k]!);
    rx.push(rx.arena, o, o + lens[k]!);
  }
  const segCopies = [...Array(n).keys()].map((k) => Buffer.from(rx.arena.subarray(rx.start(k), rx.end(k))));
  const coalescer = new TcpCoalescer({ maxFrames: 64 });
  const outBuf = Buffer.alloc(64 * 2100);
  const outList = new FrameList(64);

  // Check that the fast paths and the baselines agree before timing anything.
  if (coalescer.coalesce(rx, outBuf, 0, outList) !== 1) throw new Error('coalesce did not make one super-frame');
  const merged = outBuf.subarray(outList.start(0) - 10, outList.end(0));
  const naive = naiveCoalesce(segCopies);
  if (!merged.equals(naive)) throw new Error('coalesce and the naive baseline disagree');
  if (!merged.subarray(10).equals(x)) throw new Error('coalesce(segment(x)) != x');
  const naiveSegs = naiveSegment(x, MSS);
  for (let k = 0; k < n; k++) {
    if (!naiveSegs[k]!.equals(segCopies[k]!)) throw new Error(`segment ${k} differs from the naive baseline`);
  }

  const opts = { samples: 7, sampleMs: 150, allocPackets: 3000 };
  const seg = measure('segmentTcp, 64 KB -> 47 x MSS 1398 (prefix 8)', 1, () => {
    consume(segmentTcp(lx, MSS, scratch, 0, PREFIX, lens));
  }, opts);
  // The same with source and scratch in one arena (copyWithin instead of Buffer#copy).
  const one = Buffer.alloc(x.length + scratch.length);
  x.copy(one, 0);
  const lone = FrameLayout.of(one, 0, x.length);
  const segSame = measure('segmentTcp, scratch in the source\'s arena (copyWithin)', 1, () => {
    consume(segmentTcp(lone, MSS, one, x.length, PREFIX, lens));
  }, opts);
  // Headers only, the payload left in place (the overlay's scatter trains): the same checksums,
  // no payload copy. Checked against segmentTcp's segments first.
  const hdrs = Buffer.alloc(SEGS * (PREFIX + HL) + 64);
  if (segmentGsoHeaders(lx, VirtioGso.TCPV4, MSS, 65535, hdrs, 0, PREFIX, lens) !== SEGS) throw new Error('segmentGsoHeaders: wrong count');
  for (let k = 0; k < n; k++) {
    const h = hdrs.subarray(k * (PREFIX + HL) + PREFIX, (k + 1) * (PREFIX + HL));
    const seg1 = Buffer.concat([h, x.subarray(HL + k * MSS, HL + k * MSS + lens[k]! - HL)]);
    if (!seg1.equals(segCopies[k]!)) throw new Error(`segmentGsoHeaders: segment ${k} differs`);
  }
  const segHdr = measure('segmentGsoHeaders, the same 47 segments, headers only (payload in place)', 1, () => {
    consume(segmentGsoHeaders(lx, VirtioGso.TCPV4, MSS, 65535, hdrs, 0, PREFIX, lens));
  }, opts);
  const segNaive = measure('naive segment (Buffer.alloc per segment, accessors)', 1, () => {
    consume(naiveSegment(x, MSS).length);
  }, { ...opts, allocPackets: 300 });
  const co = measure('TcpCoalescer, 47 segments -> 1 super-frame (separate output Buffer)', 1, () => {
    consume(coalescer.coalesce(rx, outBuf, 0, outList));
  }, opts);
  const spare = rx.arena.subarray(rx.slotOff(64));
  const coSame = measure('TcpCoalescer, output in spare slots of the rx arena', 1, () => {
    consume(coalescer.coalesce(rx, spare, 0, outList));
  }, opts);
  const coNaive = measure('naive coalesce (accessors, Buffer.concat)', 1, () => {
    consume(naiveCoalesce(segCopies).length);
  }, { ...opts, allocPackets: 300 });
  const dv = dataViewOf(x);
  const sumLe = measure('sumFolded (LE words), 64 KB', 1, () => { consume(sumFolded(dv, 0, x.length)); }, opts);
  const sumBe = measure('dvSum16 (BE words), 64 KB', 1, () => { consume(fold16(dvSum16(dv, 0, x.length))); }, opts);
  const sumNaive = measure('readUInt16BE loop, 64 KB', 1, () => { consume(naiveFold(naiveSum(x, 0, x.length, 0))); }, { ...opts, allocPackets: 300 });

  return [
    row(seg, PAYLOAD, segNaive), row(segSame, PAYLOAD, segNaive), row(segHdr, PAYLOAD, segSame), row(segNaive, PAYLOAD),
    row(co, PAYLOAD, coNaive), row(coSame, PAYLOAD, coNaive), row(coNaive, PAYLOAD),
    row(sumLe, x.length, sumBe), row(sumBe, x.length, sumNaive), row(sumNaive, x.length),
  ];
}

function table(rows: readonly Row[]): string {
  const head = '| case | µs per 64 KB | GB/s | heap bytes per super-frame | GCs in alloc check | speed-up |';
  const sep = '|---|---:|---:|---:|---:|---|';
  const lines = rows.map((r) => `| ${r.name} | ${r.usPerSuperFrame.toFixed(1)} | ${r.gbPerSec.toFixed(2)} | ${r.heapBytesPerSuperFrame.toFixed(0)} | ${r.gcs} | ${r.speedup !== undefined ? `${r.speedup.toFixed(1)}x vs ${r.baseline}` : ''} |`);
  return [head, sep, ...lines].join('\n');
}

const rows = run();
process.stdout.write(`offload benchmark: ${machine()}\n${SEGS} segments of ${MSS} from a ${PAYLOAD}-byte payload; GB/s = payload (sums: summed bytes) per second\n\n${table(rows)}\n`);
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0 && process.argv[jsonAt + 1] !== undefined) {
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ machine: machine(), rows }, null, 2));
}
