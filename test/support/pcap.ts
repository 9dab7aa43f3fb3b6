/**
 * Capture files for tests: the kernel fixtures, and hand-built classic pcap and pcapng files.
 *
 * The builders below write the formats from their specifications (pcap: the libpcap file format;
 * pcapng: draft-ietf-opsawg-pcapng) with Node's Buffer writers. They share no code with
 * src/pcap/pcap.ts, so they can check its reader.
 */

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PcapReader } from '../../src/pcap/pcap.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KERNEL_FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/kernel/', import.meta.url));

/** The four captures of fixtures/kernel/README.md. */
export const KERNEL_FIXTURES = [
  { file: 'vxlan-4789-udpcsum.pcap', port: 4789, udpcsum: true },
  { file: 'vxlan-4789-noudpcsum.pcap', port: 4789, udpcsum: false },
  { file: 'vxlan-8472-udpcsum.pcap', port: 8472, udpcsum: true },
  { file: 'vxlan-8472-noudpcsum.pcap', port: 8472, udpcsum: false },
] as const;

export const kernelFixture = (file: string): string => `${KERNEL_FIXTURE_DIR}${file}`;

export interface Frame {
  readonly data: Buffer;
  readonly tsSec: number;
  readonly tsNsec: number;
  readonly origLen: number;
}

/** readFrames: every frame of a capture, each copied into its own Buffer. */
export function readFrames(path: string): Frame[] {
  const out: Frame[] = [];
  for (const r of PcapReader.open(path)) {
    out.push({ data: Buffer.from(r.data.subarray(r.off, r.off + r.capLen)), tsSec: r.tsSec, tsNsec: r.tsNsec, origLen: r.origLen });
  }
  return out;
}

/** Whether an external tool is installed (for visible skips). */
export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface ClassicOptions {
  readonly bigEndian?: boolean;
  readonly nanosecond?: boolean;
  readonly linkType?: number;
}

/** buildClassicPcap writes a classic pcap file from the frames (timestamps in their units). */
export function buildClassicPcap(frames: readonly Frame[], o: ClassicOptions = {}): Buffer {
  const be = o.bigEndian ?? false;
  const w32 = (b: Buffer, v: number, off: number): void => { if (be) b.writeUInt32BE(v >>> 0, off); else b.writeUInt32LE(v >>> 0, off); };
  const w16 = (b: Buffer, v: number, off: number): void => { if (be) b.writeUInt16BE(v, off); else b.writeUInt16LE(v, off); };
  const h = Buffer.alloc(24);
  w32(h, o.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(h, 2, 4);
  w16(h, 4, 6);
  w32(h, 0, 8);
  w32(h, 0, 12);
  w32(h, 65535, 16);
  w32(h, o.linkType ?? 1, 20);
  const parts: Buffer[] = [h];
  for (const f of frames) {
    const r = Buffer.alloc(16);
    w32(r, f.tsSec, 0);
    w32(r, o.nanosecond ? f.tsNsec : Math.floor(f.tsNsec / 1000), 4);
    w32(r, f.data.length, 8);
    w32(r, f.origLen, 12);
    parts.push(r, f.data);
  }
  return Buffer.concat(parts);
}

/** A pcapng writer for hand-built files: blocks in either byte order. */
export class PcapngBuilder {
  private readonly parts: Buffer[] = [];
  constructor(private readonly be = false) {}

  private w32(b: Buffer, v: number, off: number): void { if (this.be) b.writeUInt32BE(v >>> 0, off); else b.writeUInt32LE(v >>> 0, off); }
  private w16(b: Buffer, v: number, off: number): void { if (this.be) b.writeUInt16BE(v, off); else b.writeUInt16LE(v, off); }

  /** block appends type + length + body (padded to 32 bits) + length; `lengthOverride` forges the length fields. */
  block(type: number, body: Buffer, lengthOverride?: number): this {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const len = lengthOverride ?? 12 + padded.length;
    const b = Buffer.alloc(12 + padded.length);
    this.w32(b, type, 0);
    this.w32(b, len, 4);
    padded.copy(b, 8);
    this.w32(b, len, 8 + padded.length);
    this.parts.push(b);
    return this;
  }

  /** An options list: (code, value) pairs, then opt_endofopt. */
  options(opts: readonly (readonly [number, Buffer])[]): Buffer {
    if (opts.length === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    for (const [code, value] of opts) {
      const h = Buffer.alloc(4);
      this.w16(h, code, 0);
      this.w16(h, value.length, 2);
      parts.push(h, value, Buffer.alloc((4 - (value.length % 4)) % 4));
    }
    parts.push(Buffer.alloc(4));
    return Buffer.concat(parts);
  }

  shb(): this {
    const b = Buffer.alloc(16);
    this.w32(b, 0x1a2b3c4d, 0);
    this.w16(b, 1, 4);
    this.w16(b, 0, 6);
    b.fill(0xff, 8, 16); // section length: unknown
    return this.block(0x0a0d0d0a, b);
  }

  /** idb: an interface; `tsresol` is the raw if_tsresol byte (6 = µs, 9 = ns, 0x80|n = 2^-n). */
  idb(linkType = 1, tsresol?: number): this {
    const b = Buffer.alloc(8);
    this.w16(b, linkType, 0);
    this.w32(b, 0, 4);
    const opts = tsresol === undefined ? Buffer.alloc(0) : this.options([[9, Buffer.from([tsresol])]]);
    return this.block(1, Buffer.concat([b, opts]));
  }

  /** epb: a packet on interface `ifIndex` at the raw 64-bit timestamp `ts` (in the interface's units). */
  epb(ifIndex: number, ts: bigint, data: Buffer, origLen = data.length): this {
    const b = Buffer.alloc(20);
    this.w32(b, ifIndex, 0);
    this.w32(b, Number(ts >> 32n), 4);
    this.w32(b, Number(ts & 0xffff_ffffn), 8);
    this.w32(b, data.length, 12);
    this.w32(b, origLen, 16);
    return this.block(6, Buffer.concat([b, data]));
  }

  /** spb: a Simple Packet Block (interface 0, no timestamp). */
  spb(data: Buffer, origLen = data.length): this {
    const b = Buffer.alloc(4);
    this.w32(b, origLen, 0);
    return this.block(3, Buffer.concat([b, data]));
  }

  /** pb: the obsolete Packet Block (16-bit interface id and drops count). */
  pb(ifIndex: number, ts: bigint, data: Buffer): this {
    const b = Buffer.alloc(20);
    this.w16(b, ifIndex, 0);
    this.w16(b, 0, 2);
    this.w32(b, Number(ts >> 32n), 4);
    this.w32(b, Number(ts & 0xffff_ffffn), 8);
    this.w32(b, data.length, 12);
    this.w32(b, data.length, 16);
    return this.block(2, Buffer.concat([b, data]));
  }

  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}
