/**
 * Which port a replayed frame enters. A capture mixes what pods send, what the host sends and
 * what arrives from the underlay; replay decides per frame, before the timed run (a pre-pass
 * over the file that allocates nothing per frame), with the first rule that matches:
 *
 *   1. the source MAC is a pod's MAC                                      -> that pod's port
 *   2. VXLAN to this node: Ethernet (one 802.1Q tag allowed) / IPv4 to the
 *      underlay address / UDP to the VXLAN port                           -> the overlay port
 *   3. the source MAC is the host port's MAC (config `host.mac`)           -> the host port
 *   4. IPv4 whose source address, or ARP whose sender address, is a pod's
 *      (a pod forging its MAC; the switch drops it as spoof_src_mac)       -> that pod's port
 *   5. anything else                                                      -> the overlay port
 *
 * Rule 5 sends unknown traffic where a real node meets it, on the underlay NIC: the switch's
 * strict full-frame receive path then drops it with a named reason (eth_truncated,
 * outer_not_ipv4, outer_not_udp, udp_port_mismatch, vtep_unknown, ...). Frames too short to
 * carry a source MAC (under 12 bytes) take rule 5 as well.
 */

import { EtherType, IpProto } from '../wire/consts.js';
import { dvU48 } from '../wire/bytes.js';

export interface ClassifierSpec {
  /** Per pod port, in port order (index = the pod's port index). */
  readonly podMacs: readonly number[];
  readonly podIps: readonly number[];
  /** The host port's MAC, or null when it is not configured (rule 3 then never matches). */
  readonly hostMac: number | null;
  readonly underlayIp: number;
  readonly vxlanPort: number;
  readonly hostIndex: number;
  readonly overlayIndex: number;
}

/** The rule that placed a frame (for the summary and the tests). */
export const ClassRule = { POD_MAC: 1, VXLAN_TO_NODE: 2, HOST_MAC: 3, POD_IP: 4, OTHER: 5 } as const;
export type ClassRule = (typeof ClassRule)[keyof typeof ClassRule];

export class Classifier {
  private readonly podMacs: readonly number[];
  private readonly podIps: readonly number[];
  private readonly hostMac: number;
  private readonly underlayIp: number;
  private readonly vxlanPort: number;
  readonly hostIndex: number;
  readonly overlayIndex: number;
  /** The rule of the last classify() call. */
  rule: ClassRule = ClassRule.OTHER;

  constructor(s: ClassifierSpec) {
    this.podMacs = s.podMacs;
    this.podIps = s.podIps;
    this.hostMac = s.hostMac ?? -1;
    this.underlayIp = s.underlayIp >>> 0;
    this.vxlanPort = s.vxlanPort;
    this.hostIndex = s.hostIndex;
    this.overlayIndex = s.overlayIndex;
  }

  /** classify returns the index of the port the frame [off, off + len) of `dv` enters. */
  classify(dv: DataView, off: number, len: number): number {
    const pods = this.podMacs;
    const smac = len >= 12 ? dvU48(dv, off + 6) : -1;
    if (smac >= 0) {
      for (let i = 0; i < pods.length; i++) {
        if (pods[i] === smac) return this.placed(ClassRule.POD_MAC, i);
      }
    }
    if (len < 14) return this.placed(ClassRule.OTHER, this.overlayIndex);
    let type = dv.getUint16(off + 12);
    let l3 = off + 14;
    if ((type === EtherType.VLAN || type === EtherType.QINQ) && len >= 18) {
      type = dv.getUint16(off + 16);
      l3 = off + 18;
    }
    const end = off + len;
    if (type === EtherType.IPV4 && l3 + 20 <= end) {
      const ihl = (dv.getUint8(l3) & 0x0f) << 2;
      const l4 = l3 + ihl;
      if (ihl >= 20 && dv.getUint8(l3 + 9) === IpProto.UDP && dv.getUint32(l3 + 16) === this.underlayIp
        && l4 + 4 <= end && dv.getUint16(l4 + 2) === this.vxlanPort) {
        return this.placed(ClassRule.VXLAN_TO_NODE, this.overlayIndex);
      }
    }
    if (smac >= 0 && smac === this.hostMac) return this.placed(ClassRule.HOST_MAC, this.hostIndex);
    let src = -1;
    if (type === EtherType.IPV4 && l3 + 20 <= end) src = dv.getUint32(l3 + 12);
    else if (type === EtherType.ARP && l3 + 18 <= end) src = dv.getUint32(l3 + 14);
    if (src >= 0) {
      const ips = this.podIps;
      for (let i = 0; i < ips.length; i++) {
        if (ips[i] === src) return this.placed(ClassRule.POD_IP, i);
      }
    }
    return this.placed(ClassRule.OTHER, this.overlayIndex);
  }

  private placed(rule: ClassRule, index: number): number {
    this.rule = rule;
    return index;
  }
}
