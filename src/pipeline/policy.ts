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
  /**
   * Where it tracks connections (absent: the pipeline runs no pre-pass). A table that tracks
   * marks each connection it allowed with its direction's bit (MARK_POLICY_EGRESS,
   * MARK_POLICY_INGRESS) and passes, without a change, every packet of such a connection, and
   * every reply, once the connection was found and seen: for a packet the pre-pass took, the
   * pipeline reads that off the pre-pass's slot (PREPASS_PASS_EGRESS, PREPASS_PASS_INGRESS:
   * FrameContext.ctPassEgress, ctPassIngress) and skips the table's decide and act.
   */
  readonly tracking?: Tracking;
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
