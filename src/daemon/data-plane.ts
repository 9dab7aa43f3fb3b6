/**
 * The daemon's view of the switch. This is the only module of src/daemon/ that imports the
 * Switch; everything else uses the names below, so moving the Switch class is a change of the
 * one import here.
 *
 * DataPlane is what the reconciler does to the switch, and nothing more: attach and detach
 * ports, set the peers, start and stop draining, announce the gateway. The reconciler's unit
 * tests pass a fake. The daemon validates everything before calling it (validate.ts,
 * producers.ts): the switch's own argument checks are assertions, and the daemon never relies
 * on them to report a user's mistake.
 */

import type { VtepSpec } from '../fib/vtep.js';
import type { Port } from '../pipeline/port.js';
import { Framing, Switch, SwitchMode, fdbMoveChannel, fdbRefusedChannel, type OverlayAttach, type SwitchOptions, type SwitchPort } from '../pipeline/switch.js';

export { Framing, Switch, SwitchMode, fdbMoveChannel, fdbRefusedChannel };
export type { OverlayAttach, Port, SwitchOptions, SwitchPort };

/** A port as the switch hands it back from attach*(): at least its id (for detach). */
export interface AttachedPort {
  readonly id: number;
}

export interface DataPlane<H extends AttachedPort = AttachedPort> {
  attachHost(port: Port, mac: number, name: string): H;
  attachOverlay(port: Port, attach: OverlayAttach, name: string): H;
  attachPod(port: Port, ip: number, mac: number, name: string): H;
  /** detach removes a port from the switch (its routes and FDB entries go with it); the port stays open. */
  detach(id: number): unknown;
  /** setPeers replaces the whole set of remote VTEPs (routes, FDB entries, flood list). */
  setPeers(specs: readonly VtepSpec[]): void;
  /** watch starts draining a port attached after start(). */
  watch(port: H): void;
  /** announceGateway sends a gratuitous ARP for the gateway to one pod port (L3; 0 in L2). */
  announceGateway(only?: H | null): number;
  start(): void;
  stop(): void;
}

/** switchDataPlane: the Switch as a DataPlane (this line fails to compile if the two drift apart). */
export function switchDataPlane(sw: Switch): DataPlane<SwitchPort> {
  return sw;
}
