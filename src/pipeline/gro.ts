/**
 * Software GRO (part of the egress stage): frames decapsulated from the overlay for a port that
 * takes virtio-net headers are queued per port during the batch; at the end of the batch (or
 * when a queue fills, or its frames' arena changes) each queue goes through the TCP coalescer
 * (src/offload/coalesce.ts): runs of in-order segments of one flow become one super-frame with
 * a GSO virtio header, everything else passes behind an all-zero header. When the work area has
 * no room, or the coalescer refuses, every frame passes as it is: GRO never drops. So do frames
 * in an arena a port lent the batch (an AF_XDP read's UMEM: the work area is elsewhere, and the
 * coalescer's output is one arena); on that path only frames of up to 512 bytes arrive.
 */

import { FrameList } from '../buf/batch.js';
import { TcpCoalescer, coalesceOutputBound } from '../offload/coalesce.js';
import { dataViewOf } from '../wire/bytes.js';
import type { SwitchState } from './state.js';
import { GRO_LIST_LEN, type SwitchPort } from './switch-port.js';
import type { Transmit } from './transmit.js';

export class Gro {
  private readonly st: SwitchState;
  private readonly tx: Transmit;
  private readonly coalescers = new Map<number, TcpCoalescer>();
  private readonly out = new FrameList(GRO_LIST_LEN);

  constructor(st: SwitchState, tx: Transmit) {
    this.st = st;
    this.tx = tx;
  }

  /** queue adds the frame b[s, e) to `out`'s coalescing queue. */
  queue(out: SwitchPort, b: Buffer, s: number, e: number): void {
    const q = out.gro!;
    if (q.arena !== b && q.count > 0) this.coalesce(out);
    if (!q.push(b, s, e)) {
      this.coalesce(out);
      q.push(b, s, e);
    }
  }

  /** finishBatch coalesces what the batch queued for each port. */
  finishBatch(): void {
    const ports = this.st.ports;
    for (let i = 0; i < ports.length; i++) {
      const sp = ports[i];
      if (sp !== null && sp !== undefined && sp.gro !== null && sp.gro.count > 0) this.coalesce(sp);
    }
  }

  /** coalesce runs `out`'s queue through the coalescer and stages the result on its tx queue. */
  private coalesce(out: SwitchPort): void {
    const q = out.gro!;
    const vl = out.vnetHdrLen;
    const co = this.coalescerFor(vl);
    const tx = this.tx;
    const need = coalesceOutputBound(q, vl);
    const at = q.arena === tx.workBuf ? tx.workTake(need) : -1;
    const res = this.out;
    const cs = co.stats, supers = cs.superFrames, merged = cs.segmentsMerged;
    const r = at < 0 ? -1 : co.coalesce(q, tx.workBuf, at, res);
    if (r >= 0) {
      tx.workNext = at + need;
      for (let i = 0; i < res.count; i++) tx.stage(out, res.arena, res.start(i), res.end(i), 0, 0, 0);
      const stats = this.st.stats;
      stats.groSuperFrames += cs.superFrames - supers;
      stats.groSegmentsMerged += cs.segmentsMerged - merged;
    } else {
      const dv = dataViewOf(q.arena);
      for (let i = 0; i < q.count; i++) tx.stageLocal(out, q.arena, dv, q.start(i), q.end(i));
    }
    res.clear();
    q.clear();
  }

  private coalescerFor(vl: number): TcpCoalescer {
    let c = this.coalescers.get(vl);
    if (c === undefined) {
      c = new TcpCoalescer({ maxFrames: GRO_LIST_LEN, vnetHdrLen: vl });
      this.coalescers.set(vl, c);
    }
    return c;
  }
}
