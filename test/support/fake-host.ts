/**
 * FakeHost: the daemon's HostOps over TestPorts (no TAP, no sockets, no root). Records what it
 * opened; `failOn` makes opening a pod's interface fail as a missing veth would (ENODEV).
 */

import type { OverlayAttach, Port } from '../../src/daemon/data-plane.js';
import type { NodeSpec, PodSpec } from '../../src/daemon/desired.js';
import type { HostOps } from '../../src/daemon/host.js';
import { FlatnetError } from '../../src/errors.js';
import { testPort } from './test-port.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';

export class FakeHost implements HostOps {
  readonly opened: MemoryPort[] = [];
  readonly failOn = new Set<string>();
  /** Interfaces hasLink() reports as gone (a CNI pod's veth deleted while the daemon was down). */
  readonly missingLinks = new Set<string>();
  hostPort: MemoryPort | null = null;
  overlayPort: MemoryPort | null = null;
  hostClosed: { keep: boolean } | null = null;

  openHost(node: NodeSpec): { port: Port; mac: number; info: Record<string, unknown> } {
    this.hostPort = testPort(node.host.interface);
    return { port: this.hostPort, mac: 0x0200_0000_00fe, info: { tap: 'off' } };
  }

  openOverlay(node: NodeSpec): { port: Port; attach: OverlayAttach; info: Record<string, unknown> } {
    this.overlayPort = testPort(`vxlan:${node.port}`);
    return { port: this.overlayPort, attach: { rx: 'udp', tx: 'ip' }, info: { gso: false } };
  }

  openPod(_node: NodeSpec, p: PodSpec): Port {
    if (this.failOn.has(p.interface)) throw new FlatnetError('ENODEV', `no interface ${p.interface}`);
    const port = testPort(p.interface);
    this.opened.push(port);
    return port;
  }

  hasLink(name: string): boolean {
    return !this.missingLinks.has(name);
  }

  closeHost(port: Port, keep: boolean): void {
    port.close();
    this.hostClosed = { keep };
  }

  /** The ports opened on `iface`, oldest first. */
  port(iface: string): MemoryPort[] {
    return this.opened.filter((p) => p.name === iface);
  }
}
