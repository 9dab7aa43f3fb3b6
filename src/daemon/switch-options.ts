/**
 * The one place a node configuration becomes Switch options and peer specs: the daemon and
 * `flatnet replay` both build their switch here, so that a replay measures the pipeline the
 * daemon runs.
 */

import type { VtepSpec } from '../fib/vtep.js';
import { SwitchMode, type SwitchOptions } from './data-plane.js';
import type { NodeSpec, PeerSpec } from './desired.js';
import { resolvePodMtu } from './validate.js';

/** Outer Ethernet addresses: used only when the overlay port sends whole frames (memory, pcap). */
export interface UnderlayMacs {
  /** This node's underlay NIC. */
  readonly local: number;
  /** The next hop toward every peer (a router on the underlay). */
  readonly nextHop: number;
}

/**
 * switchOptionsFor: the SwitchOptions for `cfg` with our VTEP MAC, the underlay MTU (read from
 * the interface by the daemon when the config does not give it) and the underlay MACs. Throws
 * ERR_CONFIG_MTU when the pod MTU does not fit (validate.ts's rule).
 */
export function switchOptionsFor(cfg: NodeSpec, vtepMac: number, underlayMtu: number, macs: UnderlayMacs = { local: 0, nextHop: 0 }): SwitchOptions {
  return {
    mode: cfg.mode === 'l2' ? SwitchMode.L2 : SwitchMode.L3,
    vni: cfg.vni,
    vtepMac,
    vtepIp: cfg.vtepIp,
    podCidr: cfg.podCidr,
    clusterCidr: cfg.clusterCidr,
    gatewayIp: cfg.gateway,
    underlayIp: cfg.underlay.address,
    port: cfg.port,
    strict: cfg.strict,
    gbp: cfg.gbp,
    checkPeerSource: cfg.checkPeerSource,
    checkInnerSource: cfg.checkInnerSource,
    fdbLimit: cfg.fdbLimit,
    fdbAgeingMs: cfg.fdbAgeingMs,
    underlayMtu,
    podMtu: resolvePodMtu(cfg.podMtu, underlayMtu),
    mssClamp: cfg.mssClamp,
    encap: { localUnderlayMac: macs.local, nextHopMac: macs.nextHop, ttl: cfg.ttl, df: cfg.df, udpChecksum: cfg.udpChecksum, srcPortRange: cfg.srcPortRange },
  };
}

/** peerSpecsFor: peers (default: the configured ones) as Switch.setPeers() takes them. */
export function peerSpecsFor(cfg: Pick<NodeSpec, 'vni' | 'port'> & { readonly peers?: readonly PeerSpec[] }, peers: readonly PeerSpec[] = cfg.peers ?? []): VtepSpec[] {
  return peers.map((p) => ({ name: p.name, underlayIp: p.underlayIp, mac: p.vtepMac, vni: cfg.vni, port: cfg.port, podCidr: p.podCidr }));
}
