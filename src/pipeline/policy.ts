/**
 * Stages 2 and 5, policy-egress and policy-ingress: where NetworkPolicy is enforced. A frame
 * leaving a pod is judged against the policies that select its source (egress) right after
 * ingress, before any NAT or routing; a frame about to reach a local pod is judged against the
 * policies that select its destination (ingress) once the forwarding stage has picked the pod.
 *
 * The engine (src/policy/enforcer.ts) plugs in at one place: Switch.setPolicy(direction, table),
 * which sets `table` here; without one both stages pass every frame. A table decides (pure:
 * it may drop the frame with its reason, and record what it matched for a trace) and acts (hit
 * counters, connection tracking); the stage calls it only for IP frames that are still going
 * somewhere.
 */

import type { ConnTable } from '../conntrack/table.js';
import { Verdict, type FrameContext } from './context.js';
import type { TraceRecorder } from './trace-recorder.js';

/**
 * The connection table a policy or service table tracks connections in, and the clock it reads:
 * when every installed table has the same, the pipeline runs the table's pre-pass over each
 * batch (ConnTable.prepass) and hands the stages what it found (FrameContext.ctNode, ctSeen).
 */
export interface Tracking {
  readonly ct: ConnTable;
  readonly clock: { readonly now: number };
}

export const PolicyDirection = { EGRESS: 'egress', INGRESS: 'ingress' } as const;
export type PolicyDirection = (typeof PolicyDirection)[keyof typeof PolicyDirection];

/** What a compiled policy set offers the pipeline (src/policy/enforcer.ts provides one). */
export interface PolicyTable {
  /** decide leaves the frame alone or drops it (c.dropWith); it must not change any state. */
  decide(c: FrameContext): void;
  /** act records what deciding found (counters, connection state) for a frame it let through or dropped. */
  act(c: FrameContext): void;
  /** explain tells a trace what deciding matched (cold: traces only). */
  explain(c: FrameContext, t: TraceRecorder): void;
  /** Where it tracks connections (absent: the pipeline runs no pre-pass). */
  readonly tracking?: Tracking;
  /**
   * passes: the frame's connection was found and seen already (c.ctNode, c.ctSeen) and this
   * table would pass it without a change wherever the frame goes (a reply, or a connection it
   * allowed): decide and act would do nothing, so the pipeline skips them. The pipeline asks
   * when it hands the stages a packet the pre-pass took (FrameContext.ctPassEgress, ctPassIngress).
   */
  passes(c: FrameContext): boolean;
}

export class PolicyStage {
  readonly direction: PolicyDirection;
  /** The installed policy set, or null: every frame passes. */
  table: PolicyTable | null = null;

  constructor(direction: PolicyDirection) {
    this.direction = direction;
  }

  decide(c: FrameContext): void {
    const table = this.table;
    if (table === null) return;
    if (c.verdict < Verdict.REPLY && c.ipVersion !== 0) table.decide(c);
  }

  act(c: FrameContext): void {
    const table = this.table;
    if (table !== null && c.ipVersion !== 0) table.act(c);
  }
}
