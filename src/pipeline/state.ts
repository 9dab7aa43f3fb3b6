/**
 * The switch's state as the stages read it: the node's settings (fixed for the switch's life)
 * and the forwarding tables (ports, peers, routes, FDB), which the control plane rebuilds and
 * swaps in whole (Switch.attach*, detach, setPeers). Stages only read the tables while deciding;
 * the only writes on the data path are the FDB's learning and timestamps, the host port's MAC
 * and counters, all in act().
 */

import type { Cidr } from '../fib/cidr.js';
import { type Clock, MonotonicClock } from '../fib/clock.js';
import { Fdb } from '../fib/fdb.js';
import { RouteTable } from '../fib/route-table.js';
import { U32Map } from '../fib/u32-map.js';
import type { EncapSettings, Vtep } from '../fib/vtep.js';
import { Decapsulator, VniSet } from '../wire/decap.js';
import { VXLAN_OVERHEAD } from '../wire/encap.js';
import { TokenBucket } from './icmp.js';
import { SwitchStats } from './stats.js';
import type { SwitchPort } from './switch-port.js';

export const SwitchMode = { L3: 'l3', L2: 'l2' } as const;
export type SwitchMode = (typeof SwitchMode)[keyof typeof SwitchMode];

export interface SwitchOptions {
  readonly mode: SwitchMode;
  readonly vni: number;
  /** Our VTEP MAC: the inner source MAC toward peers and, in L3 mode, the pods' gateway MAC. */
  readonly vtepMac: number;
  /** The node's overlay address (flannel's 10.244.N.0/32), delivered to the host port. */
  readonly vtepIp: number;
  readonly podCidr: Cidr;
  /** All pod addresses: the host port's proxy-ARP scope. */
  readonly clusterCidr: Cidr;
  /** The pods' default gateway (10.244.N.1): answered by the switch's ARP responder and ping. */
  readonly gatewayIp: number;
  readonly underlayIp: number;
  /** VXLAN UDP destination port (4789; Linux's default is 8472). */
  readonly port: number;
  readonly encap: Omit<EncapSettings, 'localUnderlayIp'>;
  /** Drop frames with reserved VXLAN bits set (Linux). Default true. */
  readonly strict?: boolean;
  readonly gbp?: boolean;
  /** Accept VXLAN only from known peer underlay addresses. Default true. */
  readonly checkPeerSource?: boolean;
  /** L3: the inner source must lie in the sending peer's pod CIDR. Default true. */
  readonly checkInnerSource?: boolean;
  readonly fdbLimit?: number;
  readonly fdbAgeingMs?: number;
  readonly batchSize?: number;
  readonly slotSize?: number;
  readonly icmpRatePerSec?: number;
  readonly clock?: Clock;
  /** The underlay's MTU (largest outer IPv4 packet); default 1500. */
  readonly underlayMtu?: number;
  /** The pods' MTU (MSS clamping, segmenting for ports without offloads); default underlayMtu - 50. */
  readonly podMtu?: number;
  /** Clamp the MSS option of TCP SYNs crossing the switch to podMtu - 40 (iptables --clamp-mss-to-pmtu). */
  readonly mssClamp?: boolean;
}

export class SwitchState {
  readonly opts: SwitchOptions;
  readonly mode: SwitchMode;
  readonly l2: boolean;
  readonly vni: number;
  readonly vtepMac: number;
  readonly vtepIp: number;
  readonly gatewayIp: number;
  readonly underlayIp: number;
  /** The VXLAN UDP port. */
  readonly vxlanPort: number;
  readonly podCidr: Cidr;
  readonly clusterCidr: Cidr;
  readonly checkPeerSource: boolean;
  readonly checkInnerSource: boolean;
  readonly mssClamp: boolean;
  /** The largest inner IPv4 packet that fits the underlay after encapsulation. */
  readonly maxInnerIpLen: number;
  readonly podMtu: number;
  readonly clock: Clock;
  readonly stats = new SwitchStats();
  readonly fdb: Fdb;
  readonly decap: Decapsulator;
  readonly icmpBucket: TokenBucket;

  // ---- the tables, rebuilt by the control plane
  readonly ports: (SwitchPort | null)[] = [];
  overlay: SwitchPort | null = null;
  host: SwitchPort | null = null;
  /**
   * The tunnel TAP (Switch.attachTunnelOffload): TCP super-frames to a peer go to the kernel
   * whole, with their outer headers, as UDP-tunnel GSO; transmit only, not in `ports`.
   */
  tunnelTap: SwitchPort | null = null;
  /** The tunnel TAP's MAC: the outer destination of what is written to it. */
  tunnelTapMac = 0;
  readonly podByMac = new Map<number, SwitchPort>();
  peers: Vtep[] = [];
  peerByIp = new U32Map<Vtep>();
  /**
   * Every address a VTEP owns: ours (underlay, VTEP, gateway) and each peer's (underlay, and
   * its VTEP address, the network address of its pod CIDR). UDP from a pod to the VXLAN port of
   * one of them is tunnel injection (pod_sent_vxlan). Rebuilt with the peers.
   */
  vtepAddrs = new U32Map<true>();
  routes = new RouteTable([]);

  constructor(opts: SwitchOptions) {
    this.opts = opts;
    this.mode = opts.mode;
    this.l2 = opts.mode === SwitchMode.L2;
    this.vni = opts.vni;
    this.vtepMac = opts.vtepMac;
    this.vtepIp = opts.vtepIp;
    this.gatewayIp = opts.gatewayIp;
    this.underlayIp = opts.underlayIp;
    this.vxlanPort = opts.port;
    this.podCidr = opts.podCidr;
    this.clusterCidr = opts.clusterCidr;
    this.checkPeerSource = opts.checkPeerSource ?? true;
    this.checkInnerSource = opts.checkInnerSource ?? true;
    this.mssClamp = opts.mssClamp ?? false;
    const underlayMtu = opts.underlayMtu ?? 1500;
    this.maxInnerIpLen = underlayMtu - VXLAN_OVERHEAD;
    this.podMtu = opts.podMtu ?? this.maxInnerIpLen;
    // The daemon validates its configuration before it builds a switch; this is an invariant.
    if (this.podMtu > this.maxInnerIpLen) throw new RangeError(`pod MTU ${this.podMtu} does not fit the underlay MTU ${underlayMtu} after ${VXLAN_OVERHEAD} bytes of VXLAN`);
    this.clock = opts.clock ?? new MonotonicClock();
    this.fdb = new Fdb(opts.vni, { limit: opts.fdbLimit, ageingMs: opts.fdbAgeingMs });
    this.decap = new Decapsulator({
      port: opts.port, strict: opts.strict ?? true, gbp: opts.gbp ?? false, vnis: new VniSet([opts.vni]), ownMac: opts.vtepMac,
    });
    this.vtepAddrs = vtepAddresses(this, []);
    const rate = opts.icmpRatePerSec ?? 100;
    this.icmpBucket = new TokenBucket(rate, Math.max(1, Math.ceil(rate / 2)));
  }

  /** portById returns the attached port `id`, or null (detached, never attached). */
  portById(id: number): SwitchPort | null {
    return this.ports[id] ?? null;
  }
}

/** vtepAddresses: the set SwitchState.vtepAddrs holds, for our addresses and `peers`. */
export function vtepAddresses(st: { readonly underlayIp: number; readonly vtepIp: number; readonly gatewayIp: number }, peers: readonly Vtep[]): U32Map<true> {
  const m = new U32Map<true>();
  m.set(st.underlayIp, true).set(st.vtepIp, true).set(st.gatewayIp, true);
  for (const p of peers) {
    m.set(p.underlayIp, true);
    if (p.podCidr !== null) m.set(p.podCidr.network, true);
  }
  return m;
}
