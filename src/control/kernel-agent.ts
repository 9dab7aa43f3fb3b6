/**
 * `flatnet kernel-agent`: what flanneld does for a node that runs the kernel's vxlan driver,
 * from the same store as the flatnet daemons. Run inside the kernel node's namespace, it
 *   1. leases the node's subnet (the record carries the vxlan device's MAC and the underlay
 *      address, kind "kernel"), keeping the lease alive;
 *   2. puts the subnet's network address on the device (L3: 10.244.K.0/32, as flannel does);
 *   3. watches the leases and programs, per remote node, flannel's triple (L3)
 *        ip route replace SUBNET via SUBNET.0 dev DEV onlink
 *        ip neigh replace SUBNET.0 lladdr VTEP_MAC dev DEV nud permanent
 *        bridge fdb replace VTEP_MAC dev DEV dst UNDERLAY self permanent
 *      or, in L2, one all-zeros flood entry per remote underlay address
 *        bridge fdb append 00:00:00:00:00:00 dev DEV dst UNDERLAY
 *      and removes them when the lease goes (deleted or expired). Only what differs from what it
 *      applied is changed, so a resync touches nothing.
 * Bad records are ignored with a reason, as by the daemons (records.ts).
 */

import { execFileSync } from 'node:child_process';
import type { Logger } from 'pino';
import { FlatnetError } from '../errors.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import type { PeerSpec } from '../daemon/desired.js';
import type { ControlSpec } from './node-control.js';
import { NodeControl } from './node-control.js';

export interface KernelAgentOptions {
  readonly control: ControlSpec;
  readonly node: string;
  readonly underlay: string;
  readonly dev: string;
  readonly stateDir: string;
  readonly log: Logger;
  /** Runs a command (default: execFileSync); tests record instead. */
  readonly exec?: (cmd: string, args: readonly string[]) => void;
}

/** The commands that add or remove one peer's entries (L3: flannel's triple; L2: a flood entry). */
export function peerCommands(mode: 'l3' | 'l2', dev: string, p: PeerSpec, op: 'add' | 'del'): [string, string[]][] {
  const vtep = formatIpv4(p.podCidr.network), mac = formatMac(p.vtepMac), under = formatIpv4(p.underlayIp);
  if (mode === 'l2') return [['bridge', ['fdb', op === 'add' ? 'append' : 'del', '00:00:00:00:00:00', 'dev', dev, 'dst', under]]];
  if (op === 'add') {
    return [
      ['bridge', ['fdb', 'replace', mac, 'dev', dev, 'dst', under, 'self', 'permanent']],
      ['ip', ['neigh', 'replace', vtep, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']],
      ['ip', ['route', 'replace', p.podCidr.toString(), 'via', vtep, 'dev', dev, 'onlink']],
    ];
  }
  return [
    ['ip', ['route', 'del', p.podCidr.toString(), 'via', vtep, 'dev', dev, 'onlink']],
    ['ip', ['neigh', 'del', vtep, 'dev', dev]],
    ['bridge', ['fdb', 'del', mac, 'dev', dev, 'dst', under, 'self']],
  ];
}

const samePeer = (a: PeerSpec, b: PeerSpec): boolean =>
  a.underlayIp === b.underlayIp && a.vtepMac === b.vtepMac && a.podCidr.network === b.podCidr.network && a.podCidr.len === b.podCidr.len;

/** The device's MAC, read with `ip -j link`. */
export function deviceMac(dev: string): number {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', 'link', 'show', 'dev', dev], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new FlatnetError('ERR_AGENT_NO_DEVICE', `no vxlan device ${dev} in this namespace (${(e as Error).message.split('\n')[0]})`, { cause: e });
  }
  const links = JSON.parse(out) as { address?: string }[];
  return parseMac(links[0]?.address ?? '');
}

export class KernelAgent {
  private applied = new Map<string, PeerSpec>();
  private errors = 0;

  private constructor(private readonly o: KernelAgentOptions, readonly control: NodeControl) {}

  static async start(o: KernelAgentOptions): Promise<KernelAgent> {
    const vtepMac = deviceMac(o.dev);
    const control = await NodeControl.join(o.control, { node: o.node, underlayIp: parseIpv4(o.underlay), vtepMac, kind: 'kernel' }, o.stateDir, o.log);
    const a = new KernelAgent(o, control);
    if (control.network.mode === 'l3') a.run('ip', ['addr', 'replace', `${formatIpv4(control.subnet.network)}/32`, 'dev', o.dev]);
    o.log.info({ node: o.node, subnet: control.subnet.toString(), dev: o.dev, vtepMac: formatMac(vtepMac), mode: control.network.mode }, 'kernel agent up');
    control.watch((peers) => a.apply(peers));
    return a;
  }

  private run(cmd: string, args: readonly string[]): boolean {
    try {
      if (this.o.exec !== undefined) this.o.exec(cmd, args);
      else execFileSync(cmd, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      return true;
    } catch (e) {
      this.errors++;
      this.o.log.warn({ cmd: `${cmd} ${args.join(' ')}`, err: (e as Error).message.split('\n')[0] }, 'kernel programming failed');
      return false;
    }
  }

  /** apply: remove gone and changed peers' entries, add new and changed ones. */
  apply(peers: readonly PeerSpec[]): void {
    const mode = this.control.network.mode;
    const want = new Map(peers.map((p) => [p.name, p]));
    const added: string[] = [], removed: string[] = [], changed: string[] = [];
    for (const [name, old] of this.applied) {
      const p = want.get(name);
      if (p !== undefined && samePeer(p, old)) continue;
      for (const [c, a] of peerCommands(mode, this.o.dev, old, 'del')) this.run(c, a);
      this.applied.delete(name);
      (p === undefined ? removed : changed).push(name);
    }
    for (const [name, p] of want) {
      if (this.applied.has(name)) continue;
      for (const [c, a] of peerCommands(mode, this.o.dev, p, 'add')) this.run(c, a);
      this.applied.set(name, p);
      if (!changed.includes(name)) added.push(name);
    }
    if (added.length + removed.length + changed.length > 0) this.o.log.info({ added, removed, changed, peers: this.applied.size }, 'kernel peers programmed');
  }

  status(): Record<string, unknown> {
    return { ...(this.control.status() as unknown as Record<string, unknown>), programmed: [...this.applied.keys()], commandErrors: this.errors };
  }

  async stop(): Promise<void> {
    await this.control.close();
  }
}
