/**
 * The cluster's objects in a node's data plane: Namespaces, Pods, NetworkPolicies, Services and
 * EndpointSlices, as the control plane's watches hand them over (src/control/objects.ts),
 * compiled into the policy stages (src/policy: PolicySet + PolicyEnforcer) and the service-nat
 * stage (src/service: ServiceCatalog + ServiceNat), which share one connection table.
 *
 * A change of any kind schedules one compile (changes that arrive together are compiled once);
 * compiling happens off the packet path and the new tables replace the old ones between two
 * batches. Tracked connections stay across compiles: established connections keep flowing
 * after a policy change, UDP connections to a removed endpoint are deleted (ServiceNat.update).
 * A stage is installed only while there is something for it: no NetworkPolicy, no policy stage
 * (and no per-packet cost); no Service, no NAT stage.
 *
 * Objects that cannot be used are reported (problems, logged once each), never thrown.
 */

import type { Logger } from 'pino';
import { ConnTable, DEFAULT_CT_CAPACITY } from '../conntrack/table.js';
import type { Clock } from '../fib/clock.js';
import { PolicySet } from '../policy/engine.js';
import { PolicyEnforcer } from '../policy/enforcer.js';
import type { Namespace, NetworkPolicy, Pod } from '../policy/objects.js';
import { policyRows, type PolicyRow } from '../policy/view.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../service/catalog.js';
import { ServiceNat } from '../service/nat.js';
import { conntrackView, serviceRows, type ConntrackView, type ServiceRow } from '../service/view.js';
import type { CtStats } from '../conntrack/table.js';
import type { PolicyTable } from '../pipeline/policy.js';
import type { ServiceTable } from '../pipeline/service-nat.js';

export const CLUSTER_KINDS = ['Namespace', 'Pod', 'NetworkPolicy', 'Service', 'EndpointSlice'] as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[number];

/** What the tables need of the switch. */
export interface ClusterSwitch {
  readonly clock: Clock;
  setPolicy(direction: 'egress' | 'ingress', table: PolicyTable | null): void;
  setServices(table: ServiceTable | null): void;
}

export interface ClusterOptions {
  /** This node's name (Services with internalTrafficPolicy Local). */
  readonly node: string;
  /** The node's own addresses on the pod network: ingress from them is always allowed. */
  readonly nodeIps: readonly number[];
  /** The hairpin SNAT source: the pod network's gateway on this node. */
  readonly gateway: number;
  /** The overlay's UDP port (default 4789): Service connections on it stay out of the conntrack pre-pass. */
  readonly vxlanPort?: number;
  readonly conntrackCapacity?: number;
  readonly log?: Logger;
}

export interface ClusterStatus {
  readonly objects: Readonly<Record<ClusterKind, number>>;
  readonly policies: number;
  readonly frontends: number;
  readonly conntrack: CtStats & { readonly capacity: number };
  readonly compiles: number;
  /** How long the last compile took (ms). */
  readonly lastCompileMs: number | null;
  /** From the last object change to its tables being installed (ms). */
  readonly lastChangeToInstalledMs: number | null;
  readonly problems: readonly string[];
}

export class ClusterTables {
  readonly ct: ConnTable;
  private readonly sw: ClusterSwitch;
  private readonly opts: ClusterOptions;
  private readonly objects: Record<ClusterKind, readonly unknown[]> = { Namespace: [], Pod: [], NetworkPolicy: [], Service: [], EndpointSlice: [] };
  private enforcer: PolicyEnforcer | null = null;
  private nat: ServiceNat | null = null;
  private set: PolicySet | null = null;
  private catalog: ServiceCatalog | null = null;
  private pending: NodeJS.Immediate | null = null;
  private changedAt = 0;
  private compiles = 0;
  private lastCompileMs: number | null = null;
  private lastChangeToInstalledMs: number | null = null;
  private problems: string[] = [];
  private readonly logged = new Set<string>();
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Called after each compile (tests wait on it). */
  onCompiled: (() => void) | null = null;

  constructor(sw: ClusterSwitch, opts: ClusterOptions) {
    this.sw = sw;
    this.opts = opts;
    this.ct = new ConnTable({ capacity: opts.conntrackCapacity ?? DEFAULT_CT_CAPACITY });
    // Reclaim expired connections a slice at a time (the whole table every ~16 s at the default size).
    this.sweepTimer = setInterval(() => this.ct.sweep(Math.floor(this.sw.clock.now), 4096), 1000);
    this.sweepTimer.unref();
  }

  /** update replaces the objects of one kind (a watch's whole list) and schedules a compile. */
  update(kind: ClusterKind, objects: readonly unknown[]): void {
    this.objects[kind] = objects;
    if (this.pending === null) {
      this.changedAt = performance.now();
      this.pending = setImmediate(() => { this.pending = null; this.compile(); });
    }
  }

  /** compile builds the tables from the current objects and installs them (also called directly by tests). */
  compile(): void {
    const t0 = performance.now();
    const o = this.objects;
    const namespaces = o.Namespace as Namespace[], pods = o.Pod as Pod[];
    const policies = o.NetworkPolicy as NetworkPolicy[], services = o.Service as Service[], slices = o.EndpointSlice as EndpointSlice[];
    const problems: string[] = [];
    if (policies.length > 0) {
      const set = new PolicySet({ namespaces, pods, policies, nodeIps: this.opts.nodeIps });
      for (const p of set.problems) problems.push(`${p.object}: ${p.field}: ${p.reason}`);
      this.set = set;
      if (this.enforcer === null) {
        this.enforcer = new PolicyEnforcer(set, this.ct, this.sw.clock);
        this.enforcer.install(this.sw);
      } else {
        this.enforcer.update(set);
      }
    } else if (this.enforcer !== null) {
      this.sw.setPolicy('egress', null);
      this.sw.setPolicy('ingress', null);
      this.enforcer = null;
      this.set = null;
    }
    if (services.length > 0) {
      const cat = new ServiceCatalog({ services, slices, pods, node: this.opts.node });
      for (const p of cat.problems) problems.push(`${p.object}: ${p.field}: ${p.reason}`);
      this.catalog = cat;
      if (this.nat === null) {
        this.nat = new ServiceNat(cat, this.ct, { nodeIp: this.opts.gateway, clock: this.sw.clock, vxlanPort: this.opts.vxlanPort });
        this.sw.setServices(this.nat);
      } else {
        this.nat.update(cat);
      }
    } else if (this.nat !== null) {
      this.sw.setServices(null);
      this.nat = null;
      this.catalog = null;
    }
    this.problems = problems;
    for (const p of problems) {
      if (this.logged.has(p)) continue;
      this.logged.add(p);
      this.opts.log?.warn({ problem: p }, 'ignoring part of a cluster object');
    }
    const t1 = performance.now();
    this.compiles++;
    this.lastCompileMs = Math.round((t1 - t0) * 100) / 100;
    this.lastChangeToInstalledMs = this.changedAt === 0 ? null : Math.round((t1 - this.changedAt) * 100) / 100;
    this.onCompiled?.();
  }

  policyRows(): PolicyRow[] {
    return this.set === null ? [] : policyRows(this.set);
  }

  serviceRows(): ServiceRow[] {
    return this.catalog === null ? [] : serviceRows(this.catalog);
  }

  conntrackView(): ConntrackView {
    return conntrackView(this.ct, Math.floor(this.sw.clock.now));
  }

  status(): ClusterStatus {
    const count = Object.fromEntries(Object.entries(this.objects).map(([k, v]) => [k, v.length])) as Record<ClusterKind, number>;
    return {
      objects: count, policies: this.set?.policies.length ?? 0, frontends: this.catalog?.frontends.length ?? 0,
      conntrack: { ...this.ct.stats, capacity: this.ct.capacity }, compiles: this.compiles,
      lastCompileMs: this.lastCompileMs, lastChangeToInstalledMs: this.lastChangeToInstalledMs, problems: this.problems,
    };
  }

  close(): void {
    if (this.pending !== null) clearImmediate(this.pending);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.pending = null;
    this.sweepTimer = null;
  }
}
