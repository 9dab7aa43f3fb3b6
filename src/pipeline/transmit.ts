/**
 * Stage 7, transmit: the egress queues and the memory frames are built in.
 *
 * Every output (forwarded frames, copies, segments, replies) is staged on its port's queue as an
 * (arena, start, end) window; flushAll() writes each queue with one port.write() per batch
 * before the batch's memory is reused. What the port does not take is counted as tx_busy (or
 * tx_error when the write failed): the only drops a trace cannot predict.
 *
 * Memory for frames derived from the current batch:
 *   - the work area: segments, fragments and coalesced super-frames, in the spare region of the
 *     batch's own arena (no extra flush, allocation-free copies) or, for batches without one,
 *     the scratch arena's spare region;
 *   - scratch slots: replication copies and switch-made frames (ICMP errors, gratuitous ARP).
 * Both are recycled by flushAll(); when one runs out mid-batch, every queue is flushed first.
 */

import { Batch, entryBytes, Meta, META_STRIDE, MetaFlag, type FrameList } from '../buf/batch.js';
import { EMPTY, EMPTY_DV, dataViewOf } from '../wire/bytes.js';
import { OUTER_IP_OFF, VXLAN_HEADROOM } from '../wire/encap.js';
import { VXLAN_HEADER_LEN } from '../wire/vxlan.js';
import type { FrameContext } from './context.js';
import { Drop } from './drop.js';
import type { SwitchState } from './state.js';
import { Framing, type SwitchPort } from './switch-port.js';

const SCRATCH_SLOTS = 64;
/** Scratch slots hold replication copies and ICMP replies: room for a jumbo frame. */
export const SCRATCH_SLOT_SIZE = 16384;
/** Spare space for the segments of two 64 KiB super-frames (each ~47 x (50 + 1464) bytes). */
export const SEGMENT_SPARE = 2 * 80 * 1024;

export class Transmit {
  private readonly st: SwitchState;
  readonly scratch = new Batch(SCRATCH_SLOTS, SCRATCH_SLOT_SIZE, SEGMENT_SPARE);
  readonly scratchDv = dataViewOf(this.scratch.arena);
  private scratchNext = 0;
  // The work area: buf[workStart, workEnd), next free byte at workNext.
  workBuf: Buffer = EMPTY;
  workDv: DataView = EMPTY_DV;
  private workStart = 0;
  workNext = 0;
  private workEnd = 0;

  constructor(st: SwitchState) {
    this.st = st;
  }

  /**
   * beginBatch points the work area at the spare region of `batch` (same arena as its frames),
   * or at the scratch arena's when it has none (or its arena is lent: an AF_XDP read).
   */
  beginBatch(batch: FrameList, dv: DataView): void {
    if (batch instanceof Batch && batch.spareInArena) this.setWork(batch.arena, dv, batch.spareOff, batch.spareOff + batch.spareLen);
    else this.setWork(this.scratch.arena, this.scratchDv, this.scratch.spareOff, this.scratch.spareOff + this.scratch.spareLen);
  }

  private setWork(buf: Buffer, dv: DataView, start: number, end: number): void {
    this.workBuf = buf;
    this.workDv = dv;
    this.workStart = start;
    this.workNext = start;
    this.workEnd = end;
  }

  /**
   * workTake returns where `len` bytes of the work area start (the caller advances workNext by
   * what it used), flushing every queue first when the rest of the area is too small; -1 when
   * even an empty area is (the frame's drop reason is then no_buffer).
   */
  workTake(len: number): number {
    if (this.workNext + len > this.workEnd) {
      this.flushAll();
      if (this.workStart + len > this.workEnd) return -1;
    }
    return this.workNext;
  }

  /** scratchSlot returns the offset of a free scratch slot (flushing when all are in use). */
  scratchSlot(): number {
    if (this.scratchNext === SCRATCH_SLOTS) {
      this.flushAll();
      this.scratchNext = 0;
    }
    return this.scratch.slotOff(this.scratchNext++);
  }

  /** stage queues buf[start, end) on `out` (flushing the queue first when it is full). */
  stage(out: SwitchPort, b: Buffer, start: number, end: number, addr: number, port: number, gsoSize: number): void {
    const q = out.tx;
    if (!q.push(b, start, end, addr, port, gsoSize)) {
      this.flushPort(out);
      q.push(b, start, end, addr, port, gsoSize);
    }
  }

  /** stageTrain queues a UDP-GSO train in pieces on `out` (FrameList.pushTrain), flushing first when full. */
  stageTrain(out: SwitchPort, b: Buffer, hdrStart: number, hdrLen: number, n: number, addr: number, port: number, stride: number, payStart: number, payLen: number): void {
    const q = out.tx;
    if (!q.pushTrain(b, hdrStart, hdrLen, n, addr, port, stride, payStart, payLen)) {
      this.flushPort(out);
      q.pushTrain(b, hdrStart, hdrLen, n, addr, port, stride, payStart, payLen);
    }
  }

  /**
   * stageWithOffload queues a frame for a local port: with the context's offload state as its
   * virtio-net header when the port takes one (written in the headroom just before START).
   */
  stageWithOffload(c: FrameContext, out: SwitchPort, b: Buffer, dv: DataView, s: number, e: number): void {
    const vl = out.vnetHdrLen;
    if (vl > 0) writeOffloadHeader(c, dv, s - vl, vl);
    this.stage(out, b, s, e, 0, 0, 0);
  }

  /**
   * stageLocal queues a frame the switch made or rewrote (ARP reply, ICMP, echo reply): no
   * offload state, so a virtio header, if the port takes one, is all zeros.
   */
  stageLocal(out: SwitchPort, b: Buffer, dv: DataView, s: number, e: number): void {
    const vl = out.vnetHdrLen;
    if (vl > 0) {
      const h = s - vl;
      dv.setUint32(h, 0);
      dv.setUint32(h + 4, 0);
      dv.setUint16(h + 8, 0);
      if (vl > 10) dv.setUint16(h + 10, 1, true); // num_buffers
    }
    this.stage(out, b, s, e, 0, 0, 0);
  }

  flushPort(sp: SwitchPort): void {
    const q = sp.tx;
    const n = q.count;
    if (n === 0) return;
    const sent = sp.port.write(q);
    const stats = this.st.stats;
    if (sent < 0) stats.drops[Drop.TX_ERROR]! += n;
    else {
      stats.txFrames += sent;
      if (sent < n) stats.drops[Drop.TX_BUSY]! += n - sent;
    }
    if (sent !== n && sp.isOverlay) this.peerSendsFailed(sp, q);
    q.clear();
  }

  /**
   * peerSendsFailed moves the frames the overlay port flagged as not sent (MetaFlag.TX_FAILED)
   * from their peer's tx counts (counted when encapsulated) to its txFailed: `show peers` says
   * what reached the socket. Failures only; the peer is found by the frame's destination.
   */
  private peerSendsFailed(sp: SwitchPort, q: FrameList): void {
    const m = q.meta, byIp = this.st.peerByIp;
    // The outer header bytes in front of each inner frame, as the port is written.
    const outer = sp.txFraming === Framing.UDP ? VXLAN_HEADER_LEN : sp.txFraming === Framing.IP ? VXLAN_HEADROOM - OUTER_IP_OFF : VXLAN_HEADROOM;
    for (let i = 0, o = 0; i < q.count; i++, o += META_STRIDE) {
      if ((m[o + Meta.FLAGS]! & MetaFlag.TX_FAILED) === 0) continue;
      const v = byIp.get(m[o + Meta.ADDR]! >>> 0);
      if (v === undefined) continue;
      const len = entryBytes(m, o), g = m[o + Meta.GSO_SIZE]!;
      const segs = g > 0 ? Math.ceil(len / g) : 1; // a UDP-GSO train: VXLAN header + inner frame each
      v.txPackets -= segs;
      v.txBytes -= len - segs * outer;
      v.txFailed += segs;
    }
  }

  /** flushAll writes every queue and recycles the scratch slots and the work area. */
  flushAll(): void {
    const ports = this.st.ports;
    for (let i = 0; i < ports.length; i++) {
      const sp = ports[i];
      if (sp !== null && sp !== undefined) this.flushPort(sp);
    }
    if (this.st.tunnelTap !== null) this.flushPort(this.st.tunnelTap);
    this.scratchNext = 0;
    this.workNext = this.workStart;
  }
}

/** writeOffloadHeader writes the context's offload state as a virtio-net header at `h`. */
function writeOffloadHeader(c: FrameContext, dv: DataView, h: number, vl: number): void {
  dv.setUint8(h, c.vFlags);
  dv.setUint8(h + 1, c.vGso);
  dv.setUint16(h + 2, c.vHdrLen, true);
  dv.setUint16(h + 4, c.vGsoSize, true);
  dv.setUint16(h + 6, c.vCsumStart, true);
  dv.setUint16(h + 8, c.vCsumOff, true);
  if (vl > 10) dv.setUint16(h + 10, 1, true); // num_buffers
}
