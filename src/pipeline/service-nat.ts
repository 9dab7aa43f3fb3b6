/**
 * Stage 3, service-nat: where traffic to a Service's ClusterIP is load-balanced to one of its
 * endpoints (DNAT, as kube-proxy does), and replies are translated back. It runs after
 * policy-egress and before routing, so that the route is chosen for the endpoint, not the
 * ClusterIP.
 *
 * Today no service table is installed and the stage passes every frame. The table plugs in at
 * one place: Switch.setServices(table). Deciding must not rewrite the frame: the table records
 * the translation in the context (c.dstIp / c.dstPort as the forwarding stages should see them)
 * and rewrites the frame when it acts.
 */

import { Reply, Verdict, type FrameContext } from './context.js';
import type { IcmpReplies } from './icmp.js';
import type { Tracking } from './policy.js';
import type { TraceRecorder } from './trace-recorder.js';

/** What a compiled service table offers the pipeline (issue 13 provides one). */
export interface ServiceTable {
  /** decide picks the translation (or none, or a drop); it must not change any state. */
  decide(c: FrameContext): void;
  /** act applies the translation to the frame and records the connection. */
  act(c: FrameContext): void;
  /** rewrite applies what decide chose to the frame only (a trace's copy of the frame). */
  rewrite(c: FrameContext): void;
  /** explain tells a trace what deciding matched (cold: traces only). */
  explain(c: FrameContext, t: TraceRecorder): void;
  /** Where it tracks connections (absent: the pipeline runs no pre-pass). */
  readonly tracking?: Tracking;
}

export class ServiceNatStage {
  /** The installed service table, or null: no translation. */
  table: ServiceTable | null = null;
  private readonly icmp: IcmpReplies;

  constructor(icmp: IcmpReplies) {
    this.icmp = icmp;
  }

  decide(c: FrameContext): void {
    const table = this.table;
    if (table === null) return;
    if (c.ipVersion !== 0) table.decide(c);
  }

  act(c: FrameContext): void {
    const table = this.table;
    if (table === null || c.ipVersion === 0) return;
    table.act(c);
    if (c.verdict === Verdict.DROP && c.reply === Reply.ICMP_ERROR) this.sendError(c);
  }

  /** sendError: a Service without endpoints rejects: ICMP port unreachable to the client (after act dropped the frame). */
  sendError(c: FrameContext): void {
    this.icmp.error(c);
  }
}
