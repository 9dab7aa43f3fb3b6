/**
 * The daemon's side of `flatnet trace`: resolve the ingress port (`--in`: a pod's name, `host`
 * or `overlay`), turn the packet (a flow description or a hex frame) into the bytes as they
 * would arrive there, with the defaults that port implies (the pod's bound MAC and IP, the
 * gateway MAC, for the overlay the peer that owns the inner source), and ask the switch.
 * Cold path; a bad request is a typed error (ERR_TRACE_INPUT, or the packet parser's
 * ERR_TRACE_PACKET naming the word).
 */

import { FlatnetError } from '../errors.js';
import type { Switch, SwitchPort } from '../pipeline/switch.js';
import type { TraceResult } from '../pipeline/trace.js';
import { buildTracePacket, parseHexFrame, parseVnet, type PacketDefaults, type TracePeer } from './packet.js';

/**
 * The packet of a trace request: a flow description (packet.ts grammar) or a hex frame, and
 * optionally the virtio-net header it arrives with (parseVnet syntax).
 */
export type TracePacketInput = ({ readonly flow: string } | { readonly hex: string }) & { readonly vnet?: string | undefined };

/** tracePort: the port a trace enters at; a typed error naming the choices when there is none. */
export function tracePort(sw: Switch, name: string): SwitchPort {
  const ports = sw.portList;
  const byRole = name === 'host' || name === 'overlay' ? ports.find((p) => p.role === name) : undefined;
  const sp = byRole ?? ports.find((p) => p.name === name);
  if (sp === undefined) {
    const pods = ports.filter((p) => p.isPod).map((p) => p.name);
    throw new FlatnetError('ERR_TRACE_INPUT', `no port ${JSON.stringify(name)} to trace from: --in takes host, overlay or a pod (${pods.join(', ') || 'none attached'})`);
  }
  return sp;
}

/** traceDefaults: what a flow description leaves out, for a packet entering at `sp`. */
export function traceDefaults(sw: Switch, sp: SwitchPort): PacketDefaults {
  const st = sw.state;
  const peerOf = (v: { underlayIp: number; mac: number } | undefined | null): TracePeer | null => (v === undefined || v === null ? null : { underlayIp: v.underlayIp, mac: v.mac });
  return {
    role: sp.role,
    srcMac: sp.isPod ? sp.mac : sp.isHost ? (sp.mac === 0 ? 0x02_00_00_00_00_01 : sp.mac) : 0x02_00_00_00_00_01,
    dstMac: st.vtepMac,
    srcIp: sp.isPod ? sp.ip : sp.isHost ? st.vtepIp : null,
    overlay: !sp.isOverlay ? null : {
      localUnderlay: st.underlayIp,
      port: st.vxlanPort,
      vni: st.vni,
      peerFor: (ip) => peerOf(st.peers.find((p) => p.podCidr !== null && p.podCidr.contains(ip))),
      peerAt: (ip) => peerOf(st.peerByIp.get(ip)),
    },
  };
}

/**
 * traceRequest builds the packet and runs the trace (Switch.trace: no side effects). The
 * virtio-net header comes from `vnet`, or from a description's `tso`/`partial-csum` (not both).
 */
export function traceRequest(sw: Switch, input: string, packet: TracePacketInput): TraceResult {
  const sp = tracePort(sw, input);
  const built = 'hex' in packet ? { frame: parseHexFrame(packet.hex), vnet: null } : buildTracePacket(packet.flow, traceDefaults(sw, sp));
  if (built.vnet !== null && packet.vnet !== undefined) {
    throw new FlatnetError('ERR_TRACE_INPUT', "the description's tso or partial-csum already gives the virtio-net header: leave out --vnet, or describe a complete frame");
  }
  const vnet = packet.vnet !== undefined ? parseVnet(packet.vnet) : built.vnet;
  if (vnet !== null && sp.vnetHdrLen === 0) {
    throw new FlatnetError('ERR_TRACE_INPUT', `port ${sp.name} receives complete frames without a virtio-net header (offloads are off on it, it reads through AF_XDP, or it is the overlay): tso, partial-csum and --vnet do not apply`);
  }
  return sw.trace({ port: sp, frame: built.frame, ...(vnet === null ? {} : { vnet }) });
}
