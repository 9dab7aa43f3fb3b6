/**
 * TCP coalescing (software GRO) of decapsulated inner frames, for writing to a pod/host port
 * that takes virtio-net headers: consecutive in-order segments of one flow become one
 * super-frame with a GSO virtio header, which the kernel re-segments (or delivers whole) on
 * the other side of the TAP/AF_PACKET socket.
 *
 * Flow per batch (two passes over the input list; nothing allocated when the output lies in
 * the input's ArrayBuffer, see copy.ts):
 *   1. plan: classify each frame; a candidate either extends the open run ("item") of its flow
 *      or starts a new one; anything else becomes an item of its own (pass-through). Every frame
 *      of a TCP 4-tuple that does not extend the open run closes it, so no later segment of the
 *      flow can jump ahead of it (order within a flow is preserved).
 *   2. emit: items in order of their first frame. A run of two or more segments is written as
 *      one super-frame (first segment's headers, all payloads, lengths fixed, PSH from the last
 *      segment, the pseudo-header sum in the TCP checksum field); any other item is its frame,
 *      byte for byte, behind an all-zero virtio header.
 *
 * A candidate (wireguard-go's tcpGRO/packetIsGROCandidate, the kernel's tcp_gro_receive) is an
 * untagged Ethernet frame with IPv4 without options and not a fragment, header checksum valid,
 * or IPv6 whose next header is TCP; the IP packet ends exactly at the frame end (no padding);
 * TCP flags ACK, optionally PSH and ECE, nothing else; at least one payload byte.
 * A segment extends a run when (canCoalesce):
 *   - the Ethernet header, IPv4 TOS/DF/TTL/addresses or IPv6 version/traffic class/flow
 *     label/hop limit/addresses, and TCP ports, ack, data offset, flags other than PSH, window,
 *     urgent pointer and option bytes (timestamps included, as both the kernel and wireguard-go
 *     require) all equal the run's first segment;
 *   - IPv4 without DF: its ID is the first ID + segments so far (the kernel's flush_id rule);
 *   - its seq is the run's next expected seq; the run has no short segment yet, no PSH yet,
 *     and this segment's payload is not longer than the first's (the gso_size);
 *   - the merged IP packet stays within maxIpLen (65,535) bytes;
 *   - both checksums verify: the first segment's (checked lazily, when a second one comes) and
 *     this one's. The output's checksum is left to the kernel (NEEDS_CSUM), so an unverified
 *     corrupt segment would otherwise be laundered.
 *
 * Identity (what the property tests check): for a super-frame x (flags ACK[+PSH][+ECE], IPv4
 * without options or IPv6, TCP checksum field holding the pseudo-header sum as virtio delivers
 * it, IPv4 header checksum valid), coalesce(segment(x, mss)) yields exactly x's bytes behind a
 * header {NEEDS_CSUM, TCPV4/6, gso_size = mss, hdr_len, csum_start, csum_offset 16}; and for
 * any x, segmenting every coalesce output again gives segment(x) back.
 *
 * How the switch uses this: on the overlay receive path it decapsulates a batch (frames stay
 * in the rx arena; START moves forward), pushes the inner frames bound for one pod/host port
 * into a FrameList, and calls coalesce(list, outBuf, outOff, outList) with a buffer of at
 * least coalesceOutputBound(list, vnetHdrLen) bytes (ideally spare slots of the rx arena, which
 * keeps the copies allocation-free). outList then holds the frames to write, each with its
 * virtio header at [START - vnetHdrLen, START), in an order that keeps every flow's order:
 * port.write(outList). A negative result (no room) means: write the input frames as they are,
 * each behind an all-zero virtio header.
 */

import { META_STRIDE, Meta, type FrameList } from '../buf/batch.js';
import { dataViewOf } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { TcpFlag } from '../wire/tcp.js';
import { VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_MRG_LEN, VirtioGso, VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { copyBytes } from '../buf/copy.js';
import { MtuStatus } from '../mtu/status.js';
import { sumFolded } from './sum.js';

/** Frame kinds found by the plan pass. */
const Kind = { OTHER: 0, TCP_FLOW: 1, CANDIDATE: 2 } as const;
/** Item states. */
const State = { PASS: 0, OPEN: 1, CLOSED: 2 } as const;

const ETH = 14;
const FLAG_MASK = 0x1ff;
/** TCP flags a candidate may carry besides ACK. */
const CANDIDATE_EXTRA = TcpFlag.PSH | TcpFlag.ECE;

export interface CoalescerOptions {
  /** The most frames one call takes (the input list's capacity). */
  readonly maxFrames: number;
  /** Virtio header length of the output port: 10, or 12 with mergeable buffers. Default 10. */
  readonly vnetHdrLen?: number;
  /** Largest merged IP packet; default and maximum 65,535. */
  readonly maxIpLen?: number;
}

/** Counters; plain fields, incremented per call. */
export class CoalesceStats {
  /** Super-frames written (runs of two or more segments). */
  superFrames = 0;
  /** Segments that went into those super-frames. */
  segmentsMerged = 0;
  /** Frames written as they came. */
  passedThrough = 0;
  /** Candidate segments whose TCP checksum did not verify (passed through, never merged). */
  checksumFailed = 0;
}

/**
 * coalesceOutputBound: bytes of output buffer that coalesce() may need for `list`: every frame
 * plus a virtio header, i.e. the size if nothing merges (merging only shrinks it).
 */
export function coalesceOutputBound(list: FrameList, vnetHdrLen: number): number {
  let n = 0;
  for (let i = 0; i < list.count; i++) n += list.len(i) + vnetHdrLen;
  return n;
}

/** A reusable coalescer: all its tables are allocated by the constructor, none per call. */
export class TcpCoalescer {
  readonly stats = new CoalesceStats();
  readonly maxFrames: number;
  readonly vnetHdrLen: number;
  readonly maxIpLen: number;

  // Per input frame (index i): what the plan pass found.
  private readonly fVer: Uint8Array;
  private readonly fStart: Int32Array;
  private readonly fL3: Int32Array;
  private readonly fL4: Int32Array;
  /** First payload byte (end of the TCP header). */
  private readonly fPay: Int32Array;
  /** End of the IP packet. */
  private readonly fEnd: Int32Array;
  private readonly fHash: Int32Array;
  /** Next member of the same item, or -1. */
  private readonly fNext: Int32Array;

  // Per item (index j, in order of creation = output order).
  private readonly iHead: Int32Array;
  private readonly iTail: Int32Array;
  private readonly iCount: Int32Array;
  private readonly iState: Uint8Array;
  private readonly iVerified: Uint8Array;
  private readonly iPsh: Uint8Array;
  /** gso_size: the first segment's payload length. */
  private readonly iGso: Int32Array;
  private readonly iLastPay: Int32Array;
  private readonly iNextSeq: Uint32Array;
  private readonly iIpLen: Int32Array;
  /** Open items (ids), at most one per 4-tuple. */
  private readonly open: Int32Array;
  private nOpen = 0;
  private nItems = 0;

  constructor(opts: CoalescerOptions) {
    const n = opts.maxFrames;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`maxFrames ${n}`);
    const h = opts.vnetHdrLen ?? VIRTIO_NET_HDR_LEN;
    if (h !== VIRTIO_NET_HDR_LEN && h !== VIRTIO_NET_HDR_MRG_LEN) throw new RangeError(`vnetHdrLen ${h} (10 or 12)`);
    const m = opts.maxIpLen ?? 0xffff;
    if (!Number.isInteger(m) || m < 68 || m > 0xffff) throw new RangeError(`maxIpLen ${m}`);
    this.maxFrames = n;
    this.vnetHdrLen = h;
    this.maxIpLen = m;
    this.fVer = new Uint8Array(n);
    this.fStart = new Int32Array(n);
    this.fL3 = new Int32Array(n);
    this.fL4 = new Int32Array(n);
    this.fPay = new Int32Array(n);
    this.fEnd = new Int32Array(n);
    this.fHash = new Int32Array(n);
    this.fNext = new Int32Array(n);
    this.iHead = new Int32Array(n);
    this.iTail = new Int32Array(n);
    this.iCount = new Int32Array(n);
    this.iState = new Uint8Array(n);
    this.iVerified = new Uint8Array(n);
    this.iPsh = new Uint8Array(n);
    this.iGso = new Int32Array(n);
    this.iLastPay = new Int32Array(n);
    this.iNextSeq = new Uint32Array(n);
    this.iIpLen = new Int32Array(n);
    this.open = new Int32Array(n);
  }

  /**
   * coalesce plans and writes the frames [0, inp.count) of `inp` (read only; their arena is not
   * modified) into outBuf from `outOff` on, and fills `out` (cleared first; its arena becomes
   * outBuf) with one entry per frame to send, virtio header at [START - vnetHdrLen, START).
   * outBuf must hold coalesceOutputBound(inp, vnetHdrLen) bytes after outOff, and that range
   * must not overlap an input frame (it may lie in the same arena: spare slots make the copies
   * allocation-free, see copy.ts); `out` must hold inp.count entries.
   * Returns the number of output frames, or NO_ROOM / TOO_MANY_SEGMENTS (more than maxFrames)
   * with nothing written, so the caller can still send the input frames as they are.
   */
  coalesce(inp: FrameList, outBuf: Buffer, outOff: number, out: FrameList): number {
    const n = inp.count;
    out.clear();
    if (n > this.maxFrames) return MtuStatus.TOO_MANY_SEGMENTS;
    if (out.capacity < n || outOff < 0) return MtuStatus.NO_ROOM;
    const bound = coalesceOutputBound(inp, this.vnetHdrLen);
    if (outOff + bound > outBuf.length) return MtuStatus.NO_ROOM;
    if (outBuf.buffer === inp.arena.buffer && overlapsAnyFrame(inp, outBuf.byteOffset + outOff, outBuf.byteOffset + outOff + bound)) return MtuStatus.NO_ROOM;
    this.plan(inp);
    return this.emit(inp, outBuf, outOff, out);
  }

  // ---------------------------------------------------------------------------------------
  // Pass 1: plan.

  private plan(inp: FrameList): void {
    const dv = dataViewOf(inp.arena);
    const meta = inp.meta;
    this.nItems = 0;
    this.nOpen = 0;
    for (let i = 0, n = inp.count; i < n; i++) {
      const start = meta[i * META_STRIDE + Meta.START]!, end = meta[i * META_STRIDE + Meta.END]!;
      this.fNext[i] = -1;
      const kind = this.classify(dv, i, start, end);
      if (kind === Kind.OTHER) { this.newItem(i, State.PASS); continue; }
      const j = this.findOpen(dv, i);
      if (kind === Kind.CANDIDATE && j >= 0) {
        const r = this.tryAppend(dv, j, i);
        if (r === APPEND_OK) continue;
        if (r === APPEND_BAD_SEGMENT) { this.closeOpen(j); this.newItem(i, State.PASS); continue; }
      }
      if (j >= 0) this.closeOpen(j);
      if (kind === Kind.CANDIDATE) this.openItem(i);
      else this.newItem(i, State.PASS);
    }
  }

  /** classify records frame i's offsets and returns its Kind. Reads only inside [start, end). */
  private classify(dv: DataView, i: number, start: number, end: number): number {
    this.fStart[i] = start;
    if (end - start < ETH + 20) return Kind.OTHER;
    const type = dv.getUint16(start + 12);
    const l3 = start + ETH;
    this.fL3[i] = l3;
    let l4: number, ipEnd: number, candidate: boolean, h: number;
    if (type === EtherType.IPV4) {
      const vi = dv.getUint8(l3);
      const ihl = (vi & 0x0f) << 2;
      if (vi >>> 4 !== 4 || ihl < 20 || dv.getUint8(l3 + 9) !== IpProto.TCP) return Kind.OTHER;
      const tot = dv.getUint16(l3 + 2);
      ipEnd = l3 + tot;
      l4 = l3 + ihl;
      if (tot < ihl || ipEnd > end || l4 + 20 > ipEnd) return Kind.OTHER;
      if ((dv.getUint16(l3 + 6) & 0x3fff) !== 0) return Kind.OTHER; // a fragment: no reliable ports
      this.fVer[i] = 4;
      h = dv.getInt32(l3 + 12) ^ Math.imul(dv.getInt32(l3 + 16), 0x9e37_79b1);
      candidate = ihl === 20 && ipEnd === end && headerChecksumOk(dv, l3);
    } else if (type === EtherType.IPV6) {
      if (end - l3 < 40 + 20 || dv.getUint8(l3) >>> 4 !== 6 || dv.getUint8(l3 + 6) !== IpProto.TCP) return Kind.OTHER;
      ipEnd = l3 + 40 + dv.getUint16(l3 + 4);
      l4 = l3 + 40;
      if (ipEnd > end || l4 + 20 > ipEnd) return Kind.OTHER;
      this.fVer[i] = 6;
      h = 0;
      for (let a = l3 + 8; a < l3 + 40; a += 4) h = Math.imul(h ^ dv.getInt32(a), 0x9e37_79b1);
      candidate = ipEnd === end;
    } else {
      return Kind.OTHER;
    }
    const thl = (dv.getUint8(l4 + 12) >>> 4) << 2;
    if (thl < 20 || l4 + thl > ipEnd) return Kind.OTHER;
    this.fL4[i] = l4;
    this.fPay[i] = l4 + thl;
    this.fEnd[i] = ipEnd;
    this.fHash[i] = h ^ dv.getInt32(l4);
    const fl = dv.getUint16(l4 + 12) & FLAG_MASK;
    if (!candidate || (fl & ~CANDIDATE_EXTRA) !== TcpFlag.ACK || ipEnd === l4 + thl) return Kind.TCP_FLOW;
    return Kind.CANDIDATE;
  }

  /** findOpen: the open item whose first frame has frame i's IP version, addresses and ports. */
  private findOpen(dv: DataView, i: number): number {
    const h = this.fHash[i]!, v = this.fVer[i]!;
    for (let k = this.nOpen - 1; k >= 0; k--) {
      const j = this.open[k]!;
      const f = this.iHead[j]!;
      if (this.fHash[f] !== h || this.fVer[f] !== v) continue;
      if (sameTuple(dv, this.fL3[f]!, this.fL4[f]!, this.fL3[i]!, this.fL4[i]!, v)) return j;
    }
    return -1;
  }

  private newItem(i: number, state: number): number {
    const j = this.nItems++;
    this.iHead[j] = i;
    this.iTail[j] = i;
    this.iCount[j] = 1;
    this.iState[j] = state;
    this.iVerified[j] = 0;
    return j;
  }

  private openItem(i: number): void {
    this.open[this.nOpen++] = this.newItem(i, State.OPEN);
  }

  /** closeOpen: no frame may join item j any more (a PASS item stays PASS). */
  private closeOpen(j: number): void {
    if (this.iState[j] === State.OPEN) this.iState[j] = State.CLOSED;
    for (let k = 0; k < this.nOpen; k++) {
      if (this.open[k] === j) {
        this.open[k] = this.open[--this.nOpen]!;
        return;
      }
    }
  }

  /**
   * tryAppend: canCoalesce + checksum checks for candidate frame i against open item j; on
   * success links i into j. Returns APPEND_OK, APPEND_NO (i starts its own run) or
   * APPEND_BAD_SEGMENT (i's checksum failed: pass it through).
   */
  private tryAppend(dv: DataView, j: number, i: number): number {
    const f = this.iHead[j]!;
    const pay = this.fEnd[i]! - this.fPay[i]!;
    const l3 = this.fL3[i]!, l4 = this.fL4[i]!, fl3 = this.fL3[f]!, fl4 = this.fL4[f]!;
    const v4 = this.fVer[i] === 4;
    // The run's first segment supplies gso_size and what must match.
    if (this.iCount[j] === 1) {
      this.iGso[j] = this.fEnd[f]! - this.fPay[f]!;
      this.iLastPay[j] = this.iGso[j]!;
      this.iNextSeq[j] = (dv.getUint32(fl4 + 4) + this.iGso[j]!) >>> 0;
      this.iIpLen[j] = this.fEnd[f]! - fl3;
      this.iPsh[j] = (dv.getUint8(fl4 + 13) & TcpFlag.PSH) !== 0 ? 1 : 0;
    }
    if (this.iPsh[j] !== 0 || this.iLastPay[j] !== this.iGso[j] || pay > this.iGso[j]!) return APPEND_NO;
    if (dv.getUint32(l4 + 4) !== this.iNextSeq[j]) return APPEND_NO;
    if (this.iIpLen[j]! + pay > this.maxIpLen) return APPEND_NO;
    if (!sameHeaders(dv, this.fStart[f]!, fl3, fl4, this.fPay[f]!, this.fStart[i]!, l3, l4, this.fPay[i]!, v4)) return APPEND_NO;
    if (v4 && (dv.getUint16(fl3 + 6) & 0x4000) === 0 && dv.getUint16(l3 + 4) !== ((dv.getUint16(fl3 + 4) + this.iCount[j]!) & 0xffff)) return APPEND_NO;
    if (this.iVerified[j] === 0) {
      if (!tcpChecksumOk(dv, fl3, fl4, this.fEnd[f]!, v4)) {
        // The run's first segment is corrupt: it goes out alone, as it came; i starts afresh.
        this.stats.checksumFailed++;
        this.iState[j] = State.PASS;
        return APPEND_NO;
      }
      this.iVerified[j] = 1;
    }
    if (!tcpChecksumOk(dv, l3, l4, this.fEnd[i]!, v4)) {
      this.stats.checksumFailed++;
      return APPEND_BAD_SEGMENT;
    }
    this.fNext[this.iTail[j]!] = i;
    this.iTail[j] = i;
    this.iCount[j]!++;
    this.iLastPay[j] = pay;
    this.iNextSeq[j] = (this.iNextSeq[j]! + pay) >>> 0;
    this.iIpLen[j]! += pay;
    if ((dv.getUint8(l4 + 13) & TcpFlag.PSH) !== 0) this.iPsh[j] = 1;
    return APPEND_OK;
  }

  // ---------------------------------------------------------------------------------------
  // Pass 2: emit.

  private emit(inp: FrameList, outBuf: Buffer, outOff: number, out: FrameList): number {
    const src = inp.arena;
    const ddv = dataViewOf(outBuf);
    const meta = inp.meta;
    const vh = this.vnetHdrLen;
    const st = this.stats;
    let pos = outOff;
    for (let j = 0, n = this.nItems; j < n; j++) {
      const f = this.iHead[j]!;
      const start = this.fStart[f]!;
      const o = pos + vh;
      if (this.iCount[j] === 1) {
        const end = meta[f * META_STRIDE + Meta.END]!;
        zeroVnetHdr(ddv, pos, vh);
        copyBytes(src, start, outBuf, o, end - start);
        out.push(outBuf, o, o + end - start);
        pos = o + end - start;
        st.passedThrough++;
        continue;
      }
      // A run: the first segment's headers, then every member's payload.
      const l3 = this.fL3[f]!, l4 = this.fL4[f]!, hl = this.fPay[f]! - start;
      const v4 = this.fVer[f] === 4;
      copyBytes(src, start, outBuf, o, hl);
      let w = o + hl;
      for (let m = f; m >= 0; m = this.fNext[m]!) {
        const a = this.fPay[m]!, b = this.fEnd[m]!;
        copyBytes(src, a, outBuf, w, b - a);
        w += b - a;
      }
      const ipLen = this.iIpLen[j]!;
      const ol3 = o + (l3 - start), ol4 = o + (l4 - start);
      const l4Len = ipLen - (l4 - l3);
      if (v4) {
        ddv.setUint16(ol3 + 2, ipLen);
        let s = 0;
        ddv.setUint16(ol3 + 10, 0);
        for (let a = ol3; a < ol3 + 20; a += 2) s += ddv.getUint16(a);
        s = (s >>> 16) + (s & 0xffff);
        s = (s >>> 16) + (s & 0xffff);
        ddv.setUint16(ol3 + 10, ~s & 0xffff);
      } else {
        ddv.setUint16(ol3 + 4, l4Len);
      }
      if (this.iPsh[j] !== 0) ddv.setUint8(ol4 + 13, ddv.getUint8(ol4 + 13) | TcpFlag.PSH);
      let ps = IpProto.TCP + l4Len;
      for (let a = v4 ? ol3 + 12 : ol3 + 8, e = v4 ? ol3 + 20 : ol3 + 40; a < e; a += 2) ps += ddv.getUint16(a);
      ps = (ps >>> 16) + (ps & 0xffff);
      ps = (ps >>> 16) + (ps & 0xffff);
      ddv.setUint16(ol4 + 16, ps);
      // virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (LE).
      ddv.setUint8(pos, VirtioNetFlag.NEEDS_CSUM);
      ddv.setUint8(pos + 1, v4 ? VirtioGso.TCPV4 : VirtioGso.TCPV6);
      ddv.setUint16(pos + 2, hl, true);
      ddv.setUint16(pos + 4, this.iGso[j]!, true);
      ddv.setUint16(pos + 6, l4 - start, true);
      ddv.setUint16(pos + 8, 16, true);
      if (vh === VIRTIO_NET_HDR_MRG_LEN) ddv.setUint16(pos + 10, 1, true);
      out.push(outBuf, o, w, 0, 0, this.iGso[j]!);
      pos = w;
      st.superFrames++;
      st.segmentsMerged += this.iCount[j]!;
    }
    return out.count;
  }
}

/** overlapsAnyFrame: whether the absolute byte range [a0, a1) of the arena's memory meets a frame. */
function overlapsAnyFrame(inp: FrameList, a0: number, a1: number): boolean {
  const base = inp.arena.byteOffset;
  for (let i = 0; i < inp.count; i++) {
    const s = base + inp.start(i), e = base + inp.end(i);
    if (s < a1 && a0 < e) return true;
  }
  return false;
}

const APPEND_OK = 0;
const APPEND_NO = 1;
const APPEND_BAD_SEGMENT = 2;

function zeroVnetHdr(dv: DataView, pos: number, len: number): void {
  dv.setUint32(pos, 0);
  dv.setUint32(pos + 4, 0);
  dv.setUint16(pos + 8, 0);
  if (len === VIRTIO_NET_HDR_MRG_LEN) dv.setUint16(pos + 10, 1, true);
}

function headerChecksumOk(dv: DataView, l3: number): boolean {
  let s = 0;
  for (let a = l3; a < l3 + 20; a += 4) {
    const w = dv.getUint32(a);
    s += (w >>> 16) + (w & 0xffff);
  }
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s === 0xffff;
}

/** tcpChecksumOk verifies the TCP checksum of the segment [l4, ipEnd) of the IP packet at l3. */
function tcpChecksumOk(dv: DataView, l3: number, l4: number, ipEnd: number, v4: boolean): boolean {
  const len = ipEnd - l4;
  let s = IpProto.TCP + len;
  for (let a = v4 ? l3 + 12 : l3 + 8, e = v4 ? l3 + 20 : l3 + 40; a < e; a += 2) s += dv.getUint16(a);
  s += sumFolded(dv, l4, len);
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s === 0xffff;
}

/** sameTuple: equal addresses and ports (frames of the same IP version). */
function sameTuple(dv: DataView, al3: number, al4: number, bl3: number, bl4: number, ver: number): boolean {
  if (dv.getInt32(al4) !== dv.getInt32(bl4)) return false;
  if (ver === 4) return dv.getInt32(al3 + 12) === dv.getInt32(bl3 + 12) && dv.getInt32(al3 + 16) === dv.getInt32(bl3 + 16);
  for (let k = 8; k < 40; k += 4) if (dv.getInt32(al3 + k) !== dv.getInt32(bl3 + k)) return false;
  return true;
}

/**
 * sameHeaders: the header fields that must match for two segments to merge (see the module
 * doc). Lengths, checksums, IPv4 ID, seq and PSH are left out; addresses and ports were matched
 * by findOpen already but are cheap to include for IPv4.
 */
function sameHeaders(dv: DataView, as: number, al3: number, al4: number, apay: number, bs: number, bl3: number, bl4: number, bpay: number, v4: boolean): boolean {
  // Ethernet: both MACs and the EtherType.
  if (dv.getInt32(as) !== dv.getInt32(bs) || dv.getInt32(as + 4) !== dv.getInt32(bs + 4) || dv.getInt32(as + 8) !== dv.getInt32(bs + 8)
    || dv.getUint16(as + 12) !== dv.getUint16(bs + 12)) return false;
  if (v4) {
    // version/IHL + TOS; flags (DF, reserved; MF is 0 for candidates); TTL + protocol.
    if (dv.getUint16(al3) !== dv.getUint16(bl3) || (dv.getUint8(al3 + 6) & 0xe0) !== (dv.getUint8(bl3 + 6) & 0xe0)
      || dv.getUint16(al3 + 8) !== dv.getUint16(bl3 + 8)) return false;
  } else {
    // version, traffic class, flow label; next header + hop limit.
    if (dv.getInt32(al3) !== dv.getInt32(bl3) || dv.getUint16(al3 + 6) !== dv.getUint16(bl3 + 6)) return false;
  }
  // TCP: ack; data offset + flags except PSH; window; urgent pointer; options byte for byte.
  if (apay - al4 !== bpay - bl4) return false;
  if (dv.getInt32(al4 + 8) !== dv.getInt32(bl4 + 8)) return false;
  if (((dv.getUint16(al4 + 12) ^ dv.getUint16(bl4 + 12)) & ~TcpFlag.PSH) !== 0) return false;
  if (dv.getUint16(al4 + 14) !== dv.getUint16(bl4 + 14) || dv.getUint16(al4 + 18) !== dv.getUint16(bl4 + 18)) return false;
  for (let k = 20; k < apay - al4; k += 4) if (dv.getInt32(al4 + k) !== dv.getInt32(bl4 + k)) return false;
  return true;
}
