/**
 * The e2e bench's `ovs` system: Open vSwitch's userspace (netdev) datapath doing the same
 * flannel-style VXLAN between the same two nodes as `kernel` and `flatnet` (Debian's
 * openvswitch-switch, installed by .ci/setup). Per node namespace a private ovsdb-server and
 * ovs-vswitchd, run directory /run/flatnet/lab-NAME/ovs-nN; nothing of OVS in the root namespace,
 * and no kernel module (the netdev datapath is all in ovs-vswitchd):
 *
 *   fl-NAME-ul    br0 (Linux bridge) with ports u1, u2: the underlay, as in a lab
 *   fl-NAME-nN    eth0 (MAC 02:00:c6:33:64:0N, MTU 1500), the veth to u N
 *                 OVS br-phy (netdev, standalone = L2 learning): port eth0 (AF_PACKET); its
 *                   internal tap `br-phy` carries 198.51.100.N/24 and eth0's MAC, so OVS's tunnel
 *                   route and neighbour lookups find the underlay (OVS's userspace-tunneling
 *                   "br-phy" pattern)
 *                 OVS br-int (netdev, secure): port vp0 (ofport 1, AF_PACKET on the pod veth's
 *                   host end) and vx (ofport 2, vxlan, key 1, UDP 4789, remote 198.51.100.M)
 *   fl-NAME-nNp0  eth0 10.244.N.10/24, MTU 1450, default via 10.244.N.1, TX checksum offload
 *                 off (ovs-vswitchd reads the veth with AF_PACKET and no virtio-net header: a
 *                 frame with a partial checksum would cross the tunnel unfinished and be dropped
 *                 by the receiving pod)
 *
 * br-int's flows are flannel's L3 in OpenFlow: an ARP responder for the pod gateway 10.244.N.1,
 * and per direction a MAC rewrite (the VTEP MACs 0e:00:0a:f4:0N:00 on the tunnel, the gateway's
 * 02:00:0a:f4:0N:01 towards the pod) with dec_ttl, as the kernel's routing hops do.
 *
 * Teardown ends both daemons of each node by the PID in their pidfiles (after asking them to exit),
 * then labDown(name) deletes the fl-NAME-* namespaces and /run/flatnet/lab-NAME; a build that
 * fails half-way does the same before it rethrows.
 */

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlatnetError } from '../../src/errors.js';
import { addNs, inNs, inNsAsync, ipNs, isRunning, run, runAsync, sleep } from '../../src/lab/exec.js';
import { labDown } from '../../src/lab/lab.js';
import { labDir, labPrefix, podIpOf, podMacOf, POD_MTU, UNDERLAY_MTU, underlayIpOf, underlayMacOf, vtepMacOf } from '../../src/lab/topology.js';
import type { PortRow } from '../../src/daemon/show.js';
import type { Daemon, DaemonCounters } from './probe.js';

export const OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const OVS_TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovs-appctl'] as const;
const VNI = 1;
const VXLAN_PORT = 4789;
/** The pod gateway's MAC on node N (the ARP responder's answer): in the pods' 02:00:0a:f4:NN:xx range. */
const gatewayMacOf = (index: number): string => `02:00:0a:f4:${index.toString(16).padStart(2, '0')}:01`;

/** ovsMissing: null when Open vSwitch is installed, else what is missing and how to install it. */
export function ovsMissing(): string | null {
  const missing: string[] = OVS_TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (!existsSync(OVS_SCHEMA)) missing.push(OVS_SCHEMA);
  if (missing.length === 0) return null;
  return `the ovs system needs Open vSwitch (Debian's openvswitch-switch), and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: run \`bash .ci/setup\` as root, which installs it`;
}

/** One node of the OVS system: its namespaces, its run directory and its peer. */
interface OvsNode {
  readonly index: number;
  readonly name: string;
  readonly ns: string;
  readonly podNs: string;
  readonly podIp: string;
  readonly podMac: string;
  readonly dir: string;
  readonly peer: number;
}

const envOf = (dir: string): NodeJS.ProcessEnv => ({ ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir, OVS_SYSCONFDIR: dir });

/** ovs runs an OVS tool against node's private instance (inside its namespace if `inNode`); throws ERR_LAB_COMMAND. */
function ovs(node: OvsNode, tool: string, args: readonly string[], o: { input?: string; inNode?: boolean } = {}): string {
  const [cmd, argv] = o.inNode === true ? ['ip', ['netns', 'exec', node.ns, tool, ...args]] : [tool, [...args]];
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', env: envOf(node.dir), input: o.input, timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new FlatnetError('ERR_LAB_COMMAND', `${node.name}: ${[tool, ...args].join(' ')}: ${(err.stderr ?? '').trim() || err.message}`, { cause: e });
  }
}

const vsctl = (n: OvsNode, ...args: string[]): string => ovs(n, 'ovs-vsctl', ['--timeout=20', `--db=unix:${join(n.dir, 'db.sock')}`, ...args]);
const appctl = (n: OvsNode, ...args: string[]): string => ovs(n, 'ovs-appctl', ['--timeout=10', '-t', join(n.dir, 'ovs-vswitchd.ctl'), ...args]);

/** The PID in `dir/NAME.pid` if that process still runs and is `name`, else null. */
function ourPid(dir: string, name: string): number | null {
  try {
    const pid = Number(readFileSync(join(dir, `${name}.pid`), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return null;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name ? pid : null;
  } catch {
    return null;
  }
}

/** stopOvsDaemon: ask `name` of node to exit (its unixctl `exit`), then SIGTERM and SIGKILL its PID. */
async function stopOvsDaemon(n: OvsNode, name: 'ovs-vswitchd' | 'ovsdb-server'): Promise<void> {
  const pid = ourPid(n.dir, name);
  if (pid === null) return;
  await runAsync('ovs-appctl', ['--timeout=5', '-t', join(n.dir, `${name}.ctl`), 'exit', ...(name === 'ovs-vswitchd' ? ['--cleanup'] : [])], { timeoutMs: 7000 });
  for (const [signal, waitMs] of [['SIGTERM', 3000], ['SIGKILL', 2000]] as const) {
    for (let t = 0; t < waitMs && isRunning(pid); t += 50) await sleep(50);
    if (!isRunning(pid)) return;
    try { process.kill(pid, signal); } catch { /* gone */ }
  }
}

function startNode(n: OvsNode): void {
  mkdirSync(n.dir, { recursive: true });
  ovs(n, 'ovsdb-tool', ['create', join(n.dir, 'conf.db'), OVS_SCHEMA]);
  // --detach returns once the daemon is ready (and has redirected its standard streams).
  ovs(n, 'ovsdb-server', [join(n.dir, 'conf.db'), `--remote=punix:${join(n.dir, 'db.sock')}`,
    `--pidfile=${join(n.dir, 'ovsdb-server.pid')}`, `--unixctl=${join(n.dir, 'ovsdb-server.ctl')}`,
    '-vconsole:off', `--log-file=${join(n.dir, 'ovsdb-server.log')}`, '--detach', '--no-chdir'], { inNode: true });
  vsctl(n, '--no-wait', 'init');
  // One handler and one revalidator thread on this 2-vCPU machine. Packets of AF_PACKET and tap
  // ports are forwarded by ovs-vswitchd's main thread (the non-PMD thread) in any case.
  vsctl(n, '--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:n-handler-threads=1', 'other_config:n-revalidator-threads=1');
  ovs(n, 'ovs-vswitchd', [`unix:${join(n.dir, 'db.sock')}`, `--pidfile=${join(n.dir, 'ovs-vswitchd.pid')}`,
    `--unixctl=${join(n.dir, 'ovs-vswitchd.ctl')}`, '-vconsole:off', `--log-file=${join(n.dir, 'ovs-vswitchd.log')}`,
    '--detach', '--no-chdir'], { inNode: true });
}

function flowsOf(n: OvsNode): string {
  const gw = `10.244.${n.index}.1`, gwMac = gatewayMacOf(n.index);
  return [
    'table=0,priority=0,actions=drop',
    // ARP responder: the request for the gateway becomes its reply, sent back where it came from.
    `table=0,priority=200,in_port=1,arp,arp_op=1,arp_tpa=${gw},actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:${gwMac},` +
      `load:2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:${gwMac}->arp_sha,set_field:${gw}->arp_spa,in_port`,
    `table=0,priority=100,in_port=1,ip,nw_dst=10.244.${n.peer}.0/24,actions=mod_dl_src:${vtepMacOf(n.index)},mod_dl_dst:${vtepMacOf(n.peer)},dec_ttl,output:2`,
    `table=0,priority=100,in_port=2,ip,nw_dst=${n.podIp},actions=mod_dl_src:${gwMac},mod_dl_dst:${n.podMac},dec_ttl,output:1`,
    '',
  ].join('\n');
}

function buildNode(n: OvsNode, underlayNs: string, underlayOffloads: boolean): void {
  addNs(n.ns);
  run('ip', ['link', 'add', `u${n.index}`, 'netns', underlayNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns]);
  ipNs(underlayNs, 'link', 'set', `u${n.index}`, 'master', 'br0', 'up');
  ipNs(n.ns, 'link', 'set', 'eth0', 'address', underlayMacOf(n.index), 'mtu', String(UNDERLAY_MTU));
  if (!underlayOffloads) inNs(n.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  ipNs(n.ns, 'link', 'set', 'eth0', 'up');

  addNs(n.podNs);
  run('ip', ['link', 'add', 'vp0', 'netns', n.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.podNs]);
  ipNs(n.podNs, 'link', 'set', 'eth0', 'address', n.podMac, 'mtu', String(POD_MTU));
  ipNs(n.podNs, 'addr', 'add', `${n.podIp}/24`, 'dev', 'eth0');
  inNs(n.podNs, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  ipNs(n.podNs, 'link', 'set', 'eth0', 'up');
  ipNs(n.podNs, 'route', 'add', 'default', 'via', `10.244.${n.index}.1`);
  ipNs(n.ns, 'link', 'set', 'vp0', 'mtu', String(POD_MTU), 'up');

  startNode(n);
  vsctl(n, 'add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev', 'fail-mode=standalone',
    `other_config:hwaddr="${underlayMacOf(n.index)}"`, '--', 'add-port', 'br-phy', 'eth0');
  ipNs(n.ns, 'addr', 'add', `${underlayIpOf(n.index)}/24`, 'dev', 'br-phy');
  ipNs(n.ns, 'link', 'set', 'br-phy', 'up');
  vsctl(n, 'add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev', 'fail-mode=secure',
    '--', 'add-port', 'br-int', 'vp0', '--', 'set', 'interface', 'vp0', 'ofport_request=1',
    '--', 'add-port', 'br-int', 'vx', '--', 'set', 'interface', 'vx', 'type=vxlan', 'ofport_request=2',
    `options:remote_ip=${underlayIpOf(n.peer)}`, `options:key=${VNI}`, `options:dst_port=${VXLAN_PORT}`);
  const mgmt = `unix:${join(n.dir, 'br-int.mgmt')}`;
  ovs(n, 'ovs-ofctl', ['del-flows', mgmt]);
  ovs(n, 'ovs-ofctl', ['add-flows', mgmt, '-'], { input: flowsOf(n) });
}

/** waitTunnelRoute: until OVS's router (learnt from the namespace's routes) sends to the peer through br-phy. */
async function waitTunnelRoute(n: OvsNode): Promise<void> {
  let last = '';
  for (let t = 0; t < 10_000; t += 100) {
    try {
      last = appctl(n, 'ovs/route/lookup', underlayIpOf(n.peer));
      if (/\bbr-phy\b/.test(last)) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${n.name}: OVS has no route to ${underlayIpOf(n.peer)} through br-phy after 10 s (${last.trim()})`);
}

/** logTail: the last warnings or errors of node n's ovs-vswitchd (its log is removed with the lab). */
function logTail(n: OvsNode): string {
  try {
    const lines = readFileSync(join(n.dir, 'ovs-vswitchd.log'), 'utf8').trim().split('\n').filter((l) => /\|(WARN|ERR|EMER)\|/.test(l));
    return lines.slice(-2).map((l) => l.slice(0, 300)).join(' | ') || 'no warnings in ovs-vswitchd.log';
  } catch {
    return 'no ovs-vswitchd.log';
  }
}

/**
 * parseDpctlShow: `ovs-appctl dpctl/show -s` of a netdev datapath as port rows (one per datapath
 * port: eth0, vp0, the internal taps, vxlan_sys_4789) and its lookup counters (hit, missed, lost).
 * OVS counts no batches here: rxBatches and txBatches are 0.
 */
export function parseDpctlShow(text: string): DaemonCounters {
  const counters: Record<string, number> = {};
  const lk = /lookups: hit:(\d+) missed:(\d+) lost:(\d+)/.exec(text);
  if (lk !== null) Object.assign(counters, { 'dp.hit': Number(lk[1]), 'dp.missed': Number(lk[2]), 'dp.lost': Number(lk[3]) });
  const ports: PortRow[] = [];
  const blocks = text.split(/\n(?=\s*port \d+: )/);
  for (const b of blocks) {
    const h = /^\s*port (\d+): (\S+)(?: \(([^)]*)\))?/.exec(b);
    if (h === null) continue;
    const num = (re: RegExp): number => Number(re.exec(b)?.[1] ?? 0);
    const name = h[2]!;
    const type = (h[3] ?? '').split(':')[0]!;
    ports.push({
      id: Number(h[1]), name, kind: type === '' ? 'system' : type, backend: 'ovs-netdev', io: null, ip: null, mac: null,
      role: name === 'vp0' ? 'pod' : name === 'eth0' ? 'underlay' : type === 'vxlan' ? 'overlay' : 'internal',
      rxPackets: num(/RX packets:(\d+)/), rxBytes: num(/RX bytes:(\d+)/), rxBatches: 0, rxErrors: num(/RX packets:\d+ errors:(\d+)/),
      txPackets: num(/TX packets:(\d+)/), txBytes: num(/TX bytes:(\d+)/), txBatches: 0, txErrors: num(/TX packets:\d+ errors:(\d+)/),
      txDropped: num(/TX packets:\d+ errors:\d+ dropped:(\d+)/),
      kernelDrops: null,
    });
    const rxDropped = num(/RX packets:\d+ errors:\d+ dropped:(\d+)/);
    if (rxDropped > 0) counters[`${name}.rxDropped`] = rxDropped;
  }
  return { ports, counters, drops: {} };
}

/**
 * daemonOf: the ovs-vswitchd of node `n` as a Daemon: its PID (CPU time) and its datapath's port
 * counters. (The tunnel port is left out: the netdev datapath counts nothing on it, and br-int's
 * OpenFlow counters for it arrive late, with the revalidator's flow statistics.)
 */
function daemonOf(n: OvsNode, pid: number): Daemon {
  return {
    node: n.name,
    pid,
    socket: join(n.dir, 'ovs-vswitchd.ctl'),
    async counters() {
      const r = await runAsync('ovs-appctl', ['--timeout=5', '-t', join(n.dir, 'ovs-vswitchd.ctl'), 'dpctl/show', '-s'], { timeoutMs: 7000 });
      if (r.code !== 0) return null;
      const c = parseDpctlShow(r.stdout);
      return { ...c, ports: c.ports.filter((p) => p.kind !== 'vxlan') };
    },
  };
}

/** What the build saw on the underlay: VXLAN frames of its check ping, both ways. */
export interface VxlanCheck {
  readonly capturedOn: string;
  readonly udpPort: number;
  readonly vni: number;
  /** tcpdump's lines, e.g. "198.51.100.1.52311 > 198.51.100.2.4789: VXLAN, flags [I] (0x08), vni 1 ...". */
  readonly frames: readonly string[];
}

/**
 * pingAcross: ping from node a's pod to node b's pod until one answer comes back (the first
 * packets towards an unresolved tunnel neighbour make OVS send an ARP request and are dropped),
 * while tcpdump on the underlay bridge's port u1 waits for a VXLAN frame each way (UDP 4789, the
 * I flag alone, VNI 1: the header bytes in the filter). Throws when either is missing.
 */
async function pingAcross(a: OvsNode, b: OvsNode, underlayNs: string): Promise<VxlanCheck> {
  const hdr = `udp[8:4] = 0x08000000 and udp[12:4] = 0x${(VNI << 8).toString(16).padStart(8, '0')}`;
  const filter = `udp dst port ${VXLAN_PORT} and ${hdr} and ((src host ${underlayIpOf(a.index)} and dst host ${underlayIpOf(b.index)}) or ` +
    `(src host ${underlayIpOf(b.index)} and dst host ${underlayIpOf(a.index)}))`;
  const dump = spawn('ip', ['netns', 'exec', underlayNs, 'tcpdump', '-i', `u${a.index}`, '-nn', '-p', '-l', '-c', '2', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  dump.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => dump.on('close', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump on u${a.index} did not start within 10 s: ${err.trim()}`)), 10_000);
      dump.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) { clearTimeout(timer); resolve(); } });
      dump.on('close', (code) => { clearTimeout(timer); reject(new Error(`tcpdump exited (${String(code)}): ${err.trim()}`)); });
    });
    let crossed = false;
    for (let i = 0; i < 10 && !crossed; i++) {
      crossed = (await inNsAsync(a.podNs, 'ping', ['-n', '-q', '-c', '1', '-W', '1', b.podIp], { timeoutMs: 5000 })).code === 0;
    }
    if (!crossed) throw new Error(`no ping from ${a.podIp} reaches ${b.podIp} through OVS (n1: ${logTail(a)}; n2: ${logTail(b)})`);
    await Promise.race([exited, sleep(3000)]);
    const frames = out.trim().split('\n').filter((l) => l.includes(`.${VXLAN_PORT}: VXLAN`));
    const ways = new Set(frames.map((l) => /(\d+\.\d+\.\d+\.\d+)\.\d+ > /.exec(l)?.[1]));
    if (frames.length < 2 || ways.size < 2) {
      throw new Error(`a ping crossed OVS, but tcpdump on u${a.index} did not see it as VXLAN (UDP ${VXLAN_PORT}, VNI ${VNI}) both ways: ${out.trim() || 'nothing'}`);
    }
    return { capturedOn: `u${a.index}`, udpPort: VXLAN_PORT, vni: VNI, frames };
  } finally {
    if (dump.exitCode === null && dump.signalCode === null) dump.kill('SIGKILL');
    await exited;
  }
}

export interface OvsSystem {
  readonly src: { readonly ns: string; readonly ip: string };
  readonly dst: { readonly ns: string; readonly ip: string };
  readonly daemons: Daemon[];
  readonly offloads: Readonly<Record<string, unknown>>;
  teardown(): Promise<void>;
}

/**
 * buildOvs builds the OVS system as lab `name` (namespaces fl-NAME-*) and checks that a ping
 * crosses it; on any failure it removes what it built and throws.
 */
export async function buildOvs(name: string, o: { readonly underlayOffloads: boolean; readonly progress: (l: string) => void }): Promise<OvsSystem> {
  const missing = ovsMissing();
  if (missing !== null) throw new FlatnetError('ERR_BENCH_OVS_MISSING', missing);
  const prefix = labPrefix(name), dir = labDir(name);
  const nodes: OvsNode[] = [1, 2].map((i) => ({
    index: i, name: `n${i}`, ns: `${prefix}n${i}`, podNs: `${prefix}n${i}p0`, podIp: podIpOf(i, 0), podMac: podMacOf(i, 0),
    dir: join(dir, `ovs-n${i}`), peer: 3 - i,
  }));
  const teardown = async (): Promise<void> => {
    for (const n of nodes) {
      await stopOvsDaemon(n, 'ovs-vswitchd');
      await stopOvsDaemon(n, 'ovsdb-server');
    }
    await labDown(name);
  };
  try {
    const ul = `${prefix}ul`;
    addNs(ul);
    ipNs(ul, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    ipNs(ul, 'link', 'set', 'br0', 'up');
    for (const n of nodes) buildNode(n, ul, o.underlayOffloads);
    for (const n of nodes) await waitTunnelRoute(n);
    const [a, b] = [nodes[0]!, nodes[1]!];
    const vxlanCheck = await pingAcross(a, b, ul);
    const daemons = nodes.map((n) => {
      const pid = ourPid(n.dir, 'ovs-vswitchd');
      if (pid === null) throw new Error(`${n.name}: ovs-vswitchd is not running (${logTail(n)})`);
      return daemonOf(n, pid);
    });
    const version = /\(Open vSwitch\) (\S+)/.exec(ovs(a, 'ovs-vswitchd', ['--version']))?.[1] ?? 'unknown';
    const offloads: Record<string, unknown> = {};
    for (const n of nodes) offloads[n.name] = { ovs: version, datapath: 'netdev', pods: 'tx checksum offload off' };
    offloads['vxlanCheck'] = vxlanCheck;
    o.progress(`    OVS ${version} userspace datapath up: ovs-vswitchd pids ${daemons.map((d) => `${d.node} ${d.pid}`).join(', ')}`);
    return { src: { ns: a.podNs, ip: a.podIp }, dst: { ns: b.podNs, ip: b.podIp }, daemons, offloads, teardown };
  } catch (e) {
    o.progress(`ovs ${name}: setup failed (${(e as Error).message.split('\n')[0]}); removing it`);
    await teardown();
    throw e;
  }
}
