/**
 * A remote VTEP (a peer node): where its pods live (pod CIDR), how to reach it (underlay
 * address, UDP port) and what its inner frames carry (its VTEP MAC, the VNI). Holds the encap
 * template for the outer header and per-peer counters. The route table, the FDB's entries and
 * its flood list point at these objects; they are rebuilt when the peer set changes.
 */

import type { Cidr } from './cidr.js';
import { EncapTemplate, type DfPolicy } from '../wire/encap.js';
import { formatIpv4, formatMac } from '../wire/addr.js';

export interface VtepSpec {
  readonly name: string;
  readonly underlayIp: number;
  /** The remote VTEP's MAC: the inner destination MAC in L3 (flannel) mode. */
  readonly mac: number;
  readonly vni: number;
  readonly port: number;
  /** The pod CIDR this node owns (L3 mode routes it here; receive checks inner sources against it). */
  readonly podCidr: Cidr | null;
}

export interface EncapSettings {
  readonly localUnderlayIp: number;
  /** Outer Ethernet addresses, used only when the overlay port sends whole frames (memory, pcap). */
  readonly localUnderlayMac: number;
  readonly nextHopMac: number;
  readonly ttl: number;
  readonly df: DfPolicy;
  readonly udpChecksum: boolean;
  readonly srcPortRange: readonly [number, number];
}

export class Vtep {
  readonly name: string;
  readonly underlayIp: number;
  readonly mac: number;
  readonly vni: number;
  readonly port: number;
  readonly podCidr: Cidr | null;
  readonly template: EncapTemplate;
  /** Inner frames (segments) and bytes sent to this peer: handed to the overlay and taken by it. */
  txPackets = 0;
  txBytes = 0;
  /** Inner frames (segments) the overlay port failed to send to this peer (an error or a full queue). */
  txFailed = 0;
  rxPackets = 0;
  rxBytes = 0;

  constructor(spec: VtepSpec, enc: EncapSettings) {
    this.name = spec.name;
    this.underlayIp = spec.underlayIp >>> 0;
    this.mac = spec.mac;
    this.vni = spec.vni;
    this.port = spec.port;
    this.podCidr = spec.podCidr;
    this.template = new EncapTemplate({
      srcMac: enc.localUnderlayMac,
      dstMac: enc.nextHopMac,
      srcIp: enc.localUnderlayIp,
      dstIp: this.underlayIp,
      vni: spec.vni,
      dstPort: spec.port,
      ttl: enc.ttl,
      df: enc.df,
      udpChecksum: enc.udpChecksum,
      srcPortRange: enc.srcPortRange,
    });
  }

  toString(): string {
    return `${this.name} (${formatIpv4(this.underlayIp)}, ${formatMac(this.mac)})`;
  }
}
