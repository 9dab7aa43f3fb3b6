/**
 * Stage 4 (L2 mode), bridge: a learning bridge per VNI across the overlay, as a Linux bridge
 * with a learning `vxlan` port does. Frames are forwarded unchanged.
 *
 *   learn the source MAC behind the ingress port or the sending peer (refused when a static
 *   entry owns it, fdb_static_conflict, or the table is full, fdb_full)
 *   -> broadcast/multicast, or an unknown destination: FLOOD (every local port but the ingress;
 *      the flood list unless the frame came from the overlay)
 *   -> a learned or static entry: DELIVER to its port (hairpin, port_detached) or TUNNEL to its
 *      VTEP (never from the overlay back into it)
 * Deciding only peeks at the FDB; act does the learning (and publishes MAC moves and refusals)
 * and marks the destination entry used.
 */

import { channel } from 'node:diagnostics_channel';
import { Learn } from '../fib/fdb.js';
import type { Vtep } from '../fib/vtep.js';
import { formatMac } from '../wire/addr.js';
import type { FrameContext } from './context.js';
import { Drop } from './drop.js';
import type { SwitchState } from './state.js';

/** Diagnostics channels; published to only when someone subscribes (the daemon logs them). */
export const fdbMoveChannel = channel('flatnet:fdb:move');
export const fdbRefusedChannel = channel('flatnet:fdb:refused');

export class Bridge {
  private readonly st: SwitchState;

  constructor(st: SwitchState) {
    this.st = st;
  }

  decide(c: FrameContext): void {
    const st = this.st, fdb = st.fdb, sp = c.ingress;
    const fromOverlay = sp.isOverlay;
    const smac = c.srcMac, dmac = c.dstMac;
    c.learn = -1;
    c.fdbEntry = null;
    // Learning: the overlay's inner sources were checked unicast by decapsulation.
    const learnable = fromOverlay || ((c.dv.getUint8(c.start + 6) & 1) === 0 && smac !== 0);
    if (learnable) {
      const r = fdb.wouldLearn(smac, fromOverlay ? -1 : sp.id, fromOverlay ? c.peer : null);
      c.learn = r;
      if (r === Learn.STATIC_CONFLICT) return c.dropWith(Drop.FDB_STATIC_CONFLICT);
      if (r === Learn.FULL) return c.dropWith(Drop.FDB_FULL);
    }
    if ((c.dv.getUint8(c.start) & 1) !== 0) {
      return c.flood();
    }
    // A frame to its own source MAC finds the entry its learning is about to write: back where it came from.
    if (learnable && dmac === smac) return c.dropWith(fromOverlay ? Drop.OVERLAY_LOOP : Drop.HAIRPIN);
    const ent = fdb.peek(dmac);
    if (ent === undefined) {
      return c.flood();
    }
    c.fdbEntry = ent;
    if (ent.vtep !== null) {
      if (fromOverlay) return c.dropWith(Drop.OVERLAY_LOOP);
      return c.tunnelTo(ent.vtep);
    }
    const out = st.portById(ent.port);
    if (out === null) return c.dropWith(Drop.PORT_DETACHED);
    if (out === sp) return c.dropWith(Drop.HAIRPIN);
    c.deliverTo(out);
  }

  /** act learns the source (decided above) and marks the destination entry used. */
  act(c: FrameContext): void {
    const st = this.st, fdb = st.fdb, now = st.clock.now;
    const r = c.learn;
    if (r >= 0) {
      const fromOverlay = c.ingress.isOverlay;
      const peer = fromOverlay ? c.peer : null;
      const did = fdb.learn(c.srcMac, fromOverlay ? -1 : c.ingress.id, peer, now);
      if (did === Learn.MOVED) this.onMove(c.srcMac, peer);
      else if (did === Learn.STATIC_CONFLICT || did === Learn.FULL) this.onRefused(did, c.srcMac);
    }
    const e = c.fdbEntry;
    if (e !== null && e.used !== now) e.used = now;
  }

  private onMove(mac: number, to: Vtep | null): void {
    this.st.stats.fdbMoved++;
    if (fdbMoveChannel.hasSubscribers) fdbMoveChannel.publish({ mac: formatMac(mac), to: to?.name ?? 'local' });
  }

  private onRefused(r: Learn, mac: number): void {
    if (fdbRefusedChannel.hasSubscribers) fdbRefusedChannel.publish({ mac: formatMac(mac), reason: r === Learn.FULL ? 'fdb_full' : 'static_conflict' });
  }
}
