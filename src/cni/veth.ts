/**
 * The pod's veth pair, made with iproute2 in as few processes as possible: one `ip -batch`
 * inside the pod's namespace (entered with nsenter) creates the pair with the host end sent to
 * the node's namespace (the plugin's own, /proc/PID/ns/net), then sets the address, the links up
 * and the default route. The host end is named from a hash of (containerId, ifname), as Calico
 * and Cilium name theirs, so DEL finds it without state; the daemon raises its MTU and brings it
 * up when it attaches it.
 *
 *   pod netns:   IFNAME  mac 02:00:<ip>  mtu M  IP/len  default via GW   lo up
 *                  | veth
 *   node netns:  flXXXXXXXXXXX (13 characters)  -> AF_PACKET port of the switch
 */

import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { CniCode, CniError } from './spec.js';

/** hostIfName: "fl" and 11 hex digits of SHA-256(containerId "/" ifname). */
export function hostIfName(containerId: string, ifname: string): string {
  return `fl${createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 11)}`;
}

/** podMacOf: 02:00 and the four bytes of the IPv4 address (locally administered, unicast; the MAC spells the IP). */
export function podMacOf(ip: string): string {
  return ['02', '00', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** hostMacOf: a stable locally administered MAC for the host end, from its name. */
export function hostMacOf(hostIf: string): string {
  const h = createHash('sha256').update(hostIf).digest();
  return ['0a', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export interface VethSpec {
  /** Where to open the pod's namespace (see CniEnv.netnsPath). */
  readonly netns: string;
  /** CNI_NETNS as the runtime gave it, for messages. */
  readonly sandbox: string;
  readonly ifname: string;
  readonly hostIf: string;
  readonly mac: string;
  readonly hostMac: string;
  readonly mtu: number;
  /** "10.244.1.5/24" */
  readonly address: string;
  readonly gateway: string | null;
}

interface Exec { readonly ok: boolean; readonly stdout: string; readonly stderr: string }

/** exec runs a command to its end without blocking the event loop (the daemon runs this code too: cni-exec). */
function exec(cmd: string, args: readonly string[], input?: string): Promise<Exec> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve(err === null ? { ok: true, stdout, stderr: '' } : { ok: false, stdout, stderr: stderr.trim() || err.message });
    });
    // A command that reads no stdin may exit before we close it: EPIPE is not a failure of ours.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/** linkExists: whether interface `name` exists in the plugin's (the node's) namespace. */
export async function linkExists(name: string): Promise<boolean> {
  return (await exec('ip', ['link', 'show', 'dev', name])).ok;
}

/**
 * createVeth makes and configures the pair (see the module comment). On any failure nothing is
 * left: a half-configured pair is deleted. The interface name already taken inside the pod is
 * code 4 naming CNI_IFNAME; other failures are code 5 with iproute2's words.
 */
export async function createVeth(v: VethSpec): Promise<void> {
  const lines = [
    `link add ${v.ifname} mtu ${v.mtu} address ${v.mac} type veth peer name ${v.hostIf} mtu ${v.mtu} address ${v.hostMac} netns /proc/${process.pid}/ns/net`,
    `addr add ${v.address} dev ${v.ifname}`,
    `link set ${v.ifname} up`,
    'link set lo up',
    ...(v.gateway === null ? [] : [`route add default via ${v.gateway} dev ${v.ifname}`]),
  ];
  const r = await exec('nsenter', [`--net=${v.netns}`, 'ip', '-batch', '-'], `${lines.join('\n')}\n`);
  if (r.ok) return;
  // `ip -batch` stops at the first failing line and names it ("Command failed -:N").
  const failedAt = Number(/Command failed -:(\d+)/.exec(r.stderr)?.[1] ?? '1');
  if (failedAt > 1) {
    await deleteVeth(v.hostIf);
    throw new CniError(CniCode.IO_FAILURE, `cannot configure ${v.ifname} in ${v.sandbox} (line ${failedAt}: ${lines[failedAt - 1] ?? '?'}); the veth pair was removed`, r.stderr);
  }
  if (/File exists/.test(r.stderr)) {
    const hostSide = await linkExists(v.hostIf);
    throw new VethExistsError(hostSide, hostSide
      ? `the host end ${v.hostIf} of this attachment already exists in the node's namespace`
      : `CNI_IFNAME: an interface ${v.ifname} already exists in ${v.sandbox}`, r.stderr);
  }
  throw new CniError(CniCode.IO_FAILURE, `cannot create the veth pair ${v.ifname} (in ${v.sandbox}) / ${v.hostIf}`, r.stderr);
}

/** Nothing was created because a name is taken: CNI_IFNAME in the pod (code 4) or the host end (code 5). */
export class VethExistsError extends CniError {
  constructor(readonly hostSide: boolean, msg: string, details: string) {
    super(hostSide ? CniCode.IO_FAILURE : CniCode.INVALID_ENV, msg, details);
  }
}

/** deleteVeth removes the pair by its host end; a missing one is not an error. */
export async function deleteVeth(hostIf: string): Promise<void> {
  const r = await exec('ip', ['link', 'del', 'dev', hostIf]);
  if (!r.ok && !/Cannot find device|does not exist/.test(r.stderr)) throw new CniError(CniCode.IO_FAILURE, `cannot delete ${hostIf}`, r.stderr);
}

/** deleteVeths removes several pairs in one `ip -force -batch` (GC); missing ones are skipped. */
export async function deleteVeths(hostIfs: readonly string[]): Promise<void> {
  if (hostIfs.length === 0) return;
  await exec('ip', ['-force', '-batch', '-'], hostIfs.map((h) => `link del dev ${h}`).join('\n') + '\n');
}

/** What CHECK finds inside the pod's namespace. */
export interface PodSide {
  readonly exists: boolean;
  readonly mac: string | null;
  readonly mtu: number | null;
  readonly up: boolean;
  readonly addresses: readonly string[];
  readonly defaultVia: string | null;
}

/** inspect reads IFNAME's link, addresses and the default route inside `netns` (one `ip -j -batch`). */
export async function inspect(netns: string, ifname: string): Promise<PodSide> {
  const r = await exec('nsenter', [`--net=${netns}`, 'ip', '-j', '-force', '-batch', '-'], `addr show dev ${ifname}\nroute show default\n`);
  const arrays = r.stdout.split('\n').filter((l) => l.startsWith('[')).map((l) => JSON.parse(l) as Record<string, unknown>[]);
  const link = (arrays.length === 2 ? arrays[0]![0] : undefined) as { address?: string; mtu?: number; flags?: string[]; addr_info?: { family: string; local: string; prefixlen: number }[] } | undefined;
  const routes = (arrays.length === 2 ? arrays[1]! : arrays[0] ?? []) as { dst?: string; gateway?: string; dev?: string }[];
  if (link === undefined) return { exists: false, mac: null, mtu: null, up: false, addresses: [], defaultVia: null };
  const def = routes.find((x) => x.dst === 'default' && x.dev === ifname);
  return {
    exists: true, mac: link.address ?? null, mtu: link.mtu ?? null, up: (link.flags ?? []).includes('UP'),
    addresses: (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    defaultVia: def?.gateway ?? null,
  };
}
