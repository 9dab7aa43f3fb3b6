/**
 * The plugin's operations (CNI spec 1.1). Each either returns what to print on stdout (ADD,
 * VERSION), nothing (DEL, CHECK, GC, STATUS), or throws a CniError, having undone its own
 * partial work first, so that a failed ADD leaves no veth, no allocation and no attached port.
 *
 *   ADD     address (daemon IPAM, or the delegated plugin) -> veth pair configured in CNI_NETNS
 *           -> the daemon attaches the host end with the pod's IP and MAC bound
 *   DEL     the daemon detaches and releases -> the veth pair is deleted -> delegated IPAM DEL;
 *           nothing there is not an error, nor is a daemon that is not running (the veth goes,
 *           the allocation stays for the next DEL or GC)
 *   CHECK   the daemon's record and port, then the interface in CNI_NETNS, against prevResult
 *   GC      the daemon releases every attachment not in cni.dev/valid-attachments; their veths go
 *   STATUS  ready when the daemon answers and has a free address
 */

import { existsSync } from 'node:fs';
import type { AllocResult, CniAttachResult, CniGetResult, CniStatus } from '../daemon/cni.js';
import type { CniRecord } from '../daemon/ipam.js';
import { DaemonClient, DaemonDownError } from './daemon-client.js';
import { delegate } from './delegate.js';
import { merge, parseResult, toVersion, type CniResult } from './result.js';
import { CniCode, CniError, podIdentity, SUPPORTED_VERSIONS, type CniEnv, type NetConf } from './spec.js';
import { mark } from './timing.js';
import { createVeth, deleteVeth, deleteVeths, hostIfName, hostMacOf, inspect, linkExists, podMacOf, VethExistsError } from './veth.js';

/** A plugin-specific code (the spec leaves 100+ to plugins): CHECK found the attachment not as it should be. */
export const CHECK_MISMATCH = 100;

export function version(requested: string | null): Record<string, unknown> {
  const v = requested !== null && (SUPPORTED_VERSIONS as readonly string[]).includes(requested) ? requested : SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1];
  return { cniVersion: v, supportedVersions: [...SUPPORTED_VERSIONS] };
}

function requireNetns(env: CniEnv): void {
  if (!existsSync(env.netnsPath)) throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS: the network namespace ${env.netns} does not exist`);
}

interface Lease { readonly ip: string; readonly prefixLen: number; readonly gateway: string; readonly mtu: number; readonly existing: boolean }

/** The address of a delegated IPAM result: its first IPv4 address, and the gateway it names or the node's. */
function delegatedLease(out: unknown, podMtu: number, nodeGateway: string): Lease {
  const r = parseResult(out);
  const ip4 = r.ips.find((i) => !i.address.includes(':'));
  if (ip4 === undefined) throw new CniError(CniCode.IO_FAILURE, 'the IPAM plugin returned no IPv4 address');
  const [ip, len] = ip4.address.split('/');
  return { ip: ip!, prefixLen: Number(len), gateway: ip4.gateway ?? nodeGateway, mtu: podMtu, existing: false };
}

export async function add(env: CniEnv, conf: NetConf): Promise<Record<string, unknown>> {
  requireNetns(env);
  const prev = conf.prevResult === null ? null : parseResult(conf.prevResult);
  const key = { containerId: env.containerId, ifname: env.ifname };
  const k8s = podIdentity(env.args);
  const d = new DaemonClient(conf.socket);
  const hostIf = hostIfName(env.containerId, env.ifname);

  // 1. the address
  let lease: Lease;
  if (conf.ipam === null) {
    lease = await d.call<AllocResult>('cni-alloc', { ...key, k8s, ...(conf.requestedIp === null ? {} : { ip: conf.requestedIp }) });
  } else {
    const st = await d.call<{ podMtu: number; gateway: string }>('status');
    lease = delegatedLease(await delegate(conf.ipam.type, env, 'ADD', conf.raw), st.podMtu, st.gateway);
  }
  mark('lease');
  const undoLease = async (): Promise<void> => {
    if (lease.existing) return; // a repeated ADD: the first one's address stays
    try { await d.call('cni-del', key); } catch { /* the daemon went away: its next DEL or GC releases it */ }
    if (conf.ipam !== null) try { await delegate(conf.ipam.type, env, 'DEL', conf.raw); } catch { /* best effort */ }
  };

  // 2. the veth pair, 3. the daemon attaches its host end
  const mtu = conf.mtu ?? lease.mtu;
  const mac = podMacOf(lease.ip);
  const veth = { netns: env.netnsPath, sandbox: env.netns, ifname: env.ifname, hostIf, mac, hostMac: hostMacOf(hostIf), mtu, address: `${lease.ip}/${lease.prefixLen}`, gateway: lease.gateway };
  try {
    try {
      await createVeth(veth);
    } catch (e) {
      if (!(e instanceof VethExistsError && e.hostSide)) throw e;
      // The host end is there: a repeated ADD of a complete attachment is answered as the first
      // one was; anything else is what a crash left behind, made again.
      if (lease.existing && (await attachedAs(d, key, hostIf))) return result(conf, prev, env, hostIf, veth);
      await deleteVeth(hostIf);
      await createVeth(veth);
    }
    mark('veth');
    try {
      // The pod's name in the daemon: Kubernetes' (podman: the container's) if it has one.
      await d.call<CniAttachResult>('cni-attach', {
        ...key, name: k8s?.name !== null && k8s?.name !== undefined && k8s.name.length <= 63 ? k8s.name : hostIf,
        interface: hostIf, ip: lease.ip, mac, ipam: conf.ipam === null ? 'flatnet' : 'delegated', k8s,
      });
    } catch (e) {
      await deleteVeth(hostIf);
      throw e;
    }
  } catch (e) {
    await undoLease();
    throw e;
  }
  mark('attach');
  return result(conf, prev, env, hostIf, veth);
}

async function attachedAs(d: DaemonClient, key: { containerId: string; ifname: string }, hostIf: string): Promise<boolean> {
  try {
    const g = await d.call<CniGetResult>('cni-get', key);
    return g.attached && g.record.pod?.interface === hostIf;
  } catch {
    return false;
  }
}

function result(conf: NetConf, prev: CniResult | null, env: CniEnv, hostIf: string, v: { mac: string; hostMac: string; mtu: number; address: string; gateway: string }): Record<string, unknown> {
  const ours: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [{ name: hostIf, mac: v.hostMac }, { name: env.ifname, mac: v.mac, mtu: v.mtu, sandbox: env.netns }],
    ips: [{ address: v.address, gateway: v.gateway, interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: v.gateway }],
    dns: {},
  };
  return toVersion(merge(prev, ours), conf.cniVersion);
}

export async function del(env: CniEnv, conf: NetConf): Promise<void> {
  const key = { containerId: env.containerId, ifname: env.ifname };
  const d = new DaemonClient(conf.socket);
  try {
    await d.call('cni-del', key);
  } catch (e) {
    if (!(e instanceof DaemonDownError)) throw e;
    process.stderr.write(`flatnet-cni: DEL ${env.containerId} ${env.ifname}: ${e.message}; removing the veth, the address stays allocated until the next DEL or GC\n`);
  }
  await deleteVeth(hostIfName(env.containerId, env.ifname));
  if (conf.ipam !== null) await delegate(conf.ipam.type, env, 'DEL', conf.raw);
}

export async function check(env: CniEnv, conf: NetConf): Promise<void> {
  if (conf.prevResult === null) throw new CniError(CniCode.INVALID_CONFIG, 'prevResult: CHECK needs the result of the ADD');
  requireNetns(env);
  const prev = parseResult(conf.prevResult);
  const key = { containerId: env.containerId, ifname: env.ifname };
  const g = await new DaemonClient(conf.socket).call<CniGetResult>('cni-get', key);
  const hostIf = hostIfName(env.containerId, env.ifname);
  const want = { address: `${g.record.ip}/${g.prefixLen}`, mac: podMacOf(g.record.ip), mtu: conf.mtu ?? g.mtu, gateway: g.gateway };
  const diff: string[] = [];
  if (g.record.pod === null) diff.push('the daemon has the address but no attached pod (the ADD did not finish)');
  else if (!g.attached) diff.push(`the daemon has no port attached on ${g.record.pod.interface} with ${g.record.ip} ${g.record.pod.mac}`);
  if (!(await linkExists(hostIf))) diff.push(`the host end ${hostIf} is missing from the node's namespace`);
  const side = await inspect(env.netnsPath, env.ifname);
  if (!side.exists) {
    diff.push(`${env.ifname} is missing in ${env.netns}`);
  } else {
    if (side.mac !== want.mac) diff.push(`${env.ifname} has MAC ${side.mac}, not ${want.mac}`);
    if (side.mtu !== want.mtu) diff.push(`${env.ifname} has MTU ${side.mtu}, not ${want.mtu}`);
    if (!side.up) diff.push(`${env.ifname} is down`);
    if (!side.addresses.includes(want.address)) diff.push(`${env.ifname} lacks ${want.address} (has ${side.addresses.join(', ') || 'none'})`);
    if (side.defaultVia !== want.gateway) diff.push(`the default route is ${side.defaultVia === null ? 'missing' : `via ${side.defaultVia}`}, not via ${want.gateway}`);
  }
  if (!prev.ips.some((i) => i.address === want.address)) diff.push(`prevResult does not list ${want.address}`);
  if (!prev.interfaces.some((i) => i.name === env.ifname && i.sandbox === env.netns)) diff.push(`prevResult does not list ${env.ifname} in ${env.netns}`);
  if (diff.length > 0) throw new CniError(CHECK_MISMATCH, `CHECK ${env.containerId} ${env.ifname}: ${diff.join('; ')}`);
  if (conf.ipam !== null) await delegate(conf.ipam.type, env, 'CHECK', conf.raw);
}

export async function gc(conf: NetConf): Promise<void> {
  if (conf.validAttachments === null) throw new CniError(CniCode.INVALID_CONFIG, 'cni.dev/valid-attachments: GC needs the list of attachments to keep');
  const r = await new DaemonClient(conf.socket).call<{ released: CniRecord[] }>('cni-gc', { valid: conf.validAttachments });
  // Every stale host end: the daemon's released pods' and any flatnet veth of a released key.
  await deleteVeths(r.released.map((x) => x.pod?.interface ?? hostIfName(x.containerId, x.ifname)));
}

export async function status(conf: NetConf): Promise<void> {
  let st: CniStatus;
  try {
    st = await new DaemonClient(conf.socket).call<CniStatus>('cni-status');
  } catch (e) {
    if (e instanceof DaemonDownError) {
      throw new CniError(CniCode.NOT_AVAILABLE_LIMITED, `the flatnet daemon is not answering on ${conf.socket}: no pod can be added, and existing pods have no connectivity (their data plane is that daemon)`, e.details);
    }
    throw e;
  }
  if (!st.ready) throw new CniError(CniCode.NOT_AVAILABLE, `no free address in the node's pod CIDR (${st.attachments} allocated of ${st.capacity})`);
}
