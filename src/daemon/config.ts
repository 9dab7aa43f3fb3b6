/**
 * The node configuration file (`flatnet vtep --config FILE`): JSON, validated in two steps.
 *   1. shape (zod): types, ranges, formats, unknown keys;
 *   2. meaning: CIDRs aligned and nested, addresses inside the right blocks, nothing used twice,
 *      the pod MTU fits the underlay.
 * Every failure is a ConfigError whose `field` names the offending path ("peers[1].podCidr"),
 * so a user can find the line. The result is compiled to numbers (uint32 addresses, 48-bit MACs,
 * Cidr objects) for the daemon.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import { formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import { SRC_PORT_RANGE_LINUX, SRC_PORT_RANGE_RFC, VXLAN_OVERHEAD, type DfPolicy } from '../wire/encap.js';

const ifname = z.string().regex(/^[^\s/:]{1,15}$/, 'an interface name: 1-15 characters, no whitespace, "/" or ":"');
const ipv4 = z.ipv4();
const mac = z.mac();
const cidr = z.string();
const udpPort = z.number().int().min(1).max(65535);

const peerSchema = z.object({
  name: z.string().min(1).max(63),
  underlay: ipv4,
  podCidr: cidr,
  vtepMac: mac,
}).strict();

const podSchema = z.object({
  name: z.string().min(1).max(63),
  interface: ifname,
  ip: ipv4,
  mac,
}).strict();

export const configSchema = z.object({
  node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a node name: letters, digits, "_", "." and "-"'),
  vni: z.number().int().min(0).max(0xff_ffff).default(1),
  port: udpPort.default(4789),
  mode: z.enum(['l3', 'l2']).default('l3'),
  underlay: z.object({
    interface: ifname,
    address: ipv4,
    /** Read from the interface when absent. */
    mtu: z.number().int().min(576).max(65535).optional(),
  }).strict(),
  podCidr: cidr,
  clusterCidr: cidr.default('10.244.0.0/16'),
  /** The pods' default gateway; default: the second address of the pod CIDR (10.244.N.1). */
  gateway: ipv4.optional(),
  /** Generated once and persisted in stateDir when absent. */
  vtepMac: mac.optional(),
  stateDir: z.string().min(1).default('/var/lib/flatnet'),
  udpChecksum: z.boolean().default(false),
  df: z.enum(['unset', 'set', 'inherit']).default('unset'),
  ttl: z.number().int().min(1).max(255).default(64),
  srcPortRange: z.union([z.enum(['rfc', 'linux']), z.tuple([udpPort, udpPort])]).default('rfc'),
  strict: z.boolean().default(true),
  gbp: z.boolean().default(false),
  checkPeerSource: z.boolean().default(true),
  checkInnerSource: z.boolean().default(true),
  host: z.object({
    interface: ifname.default('flatnet0'),
    mac: mac.optional(),
  }).strict().default({ interface: 'flatnet0' }),
  /** Default: underlay MTU - 50. */
  podMtu: z.number().int().min(68).max(65535).optional(),
  /** Virtio-net headers on pod and host ports, UDP GSO/GRO on the overlay (each probed, falling back on its own). */
  offloads: z.boolean().default(true),
  /** Clamp the MSS of TCP SYNs crossing the switch to pod MTU - 40. */
  mssClamp: z.boolean().default(false),
  controlSocket: z.string().min(1).optional(),
  metrics: z.string().regex(/^[0-9.]+:[0-9]{1,5}$/, 'an address:port such as 127.0.0.1:9465').nullable().default(null),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
  fdb: z.object({
    limit: z.number().int().min(1).max(1_000_000).default(8192),
    ageingSeconds: z.number().int().min(1).max(86_400).default(300),
  }).strict().default({ limit: 8192, ageingSeconds: 300 }),
  peers: z.array(peerSchema).default([]),
  pods: z.array(podSchema).default([]),
}).strict();

export type ConfigInput = z.input<typeof configSchema>;
type Shape = z.output<typeof configSchema>;

export interface PeerConfig {
  readonly name: string;
  readonly underlayIp: number;
  readonly podCidr: Cidr;
  readonly vtepMac: number;
}

export interface PodConfig {
  readonly name: string;
  readonly interface: string;
  readonly ip: number;
  readonly mac: number;
}

/** The validated, compiled configuration. */
export interface NodeConfig {
  readonly node: string;
  readonly vni: number;
  readonly port: number;
  readonly mode: 'l3' | 'l2';
  readonly underlay: { readonly interface: string; readonly address: number; readonly mtu: number | null };
  readonly podCidr: Cidr;
  readonly clusterCidr: Cidr;
  readonly gateway: number;
  /** flannel's VTEP address: the pod CIDR's network address (10.244.N.0/32). */
  readonly vtepIp: number;
  readonly vtepMac: number | null;
  readonly stateDir: string;
  readonly udpChecksum: boolean;
  readonly df: DfPolicy;
  readonly ttl: number;
  readonly srcPortRange: readonly [number, number];
  readonly strict: boolean;
  readonly gbp: boolean;
  readonly checkPeerSource: boolean;
  readonly checkInnerSource: boolean;
  readonly host: { readonly interface: string; readonly mac: number | null };
  readonly podMtu: number | null;
  readonly offloads: boolean;
  readonly mssClamp: boolean;
  readonly controlSocket: string;
  readonly metrics: { readonly host: string; readonly port: number } | null;
  readonly logLevel: string;
  readonly fdbLimit: number;
  readonly fdbAgeingMs: number;
  readonly peers: readonly PeerConfig[];
  readonly pods: readonly PodConfig[];
}

/** "a.b[2].c" from a zod issue path. */
function fieldPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** loadConfig reads and validates FILE; throws ConfigError (ERR_CONFIG_READ, _JSON, _INVALID...). */
export function loadConfig(path: string): NodeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_READ', '', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_JSON', '', `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseConfig(json);
}

/** parseConfig validates an already-parsed JSON value. */
export function parseConfig(json: unknown): NodeConfig {
  const r = configSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const extra = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
    const keys = issue.code === 'unrecognized_keys' ? `: ${(issue as { keys: string[] }).keys.join(', ')}` : '';
    throw new ConfigError('ERR_CONFIG_INVALID', fieldPath(issue.path), `${issue.message}${keys}${extra}`);
  }
  return compile(r.data);
}

function compile(c: Shape): NodeConfig {
  const podCidr = Cidr.parse(c.podCidr, 'podCidr');
  const clusterCidr = Cidr.parse(c.clusterCidr, 'clusterCidr');
  if (!(clusterCidr.len <= podCidr.len && clusterCidr.contains(podCidr.network))) {
    throw new ConfigError('ERR_CONFIG_INVALID_CIDR', 'podCidr', `${podCidr} is not inside the cluster CIDR ${clusterCidr}`);
  }
  if (podCidr.len > 30) throw new ConfigError('ERR_CONFIG_INVALID_CIDR', 'podCidr', `${podCidr} leaves no room for a gateway and pods`);
  const vtepIp = podCidr.network;
  const gateway = c.gateway === undefined ? podCidr.host(1) : parseIpv4(c.gateway);
  if (!podCidr.contains(gateway) || gateway === vtepIp || gateway === podCidr.host(podCidr.size - 1)) {
    throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', 'gateway', `the gateway must be a host address inside ${podCidr}, not its network (VTEP) or broadcast address`);
  }
  const underlayIp = parseIpv4(c.underlay.address);
  if (clusterCidr.contains(underlayIp)) {
    throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', 'underlay.address', `the underlay address lies inside the cluster CIDR ${clusterCidr}`);
  }

  const peers: PeerConfig[] = [];
  const peerNames = new Set<string>();
  const peerIps = new Set<number>([underlayIp]);
  const cidrs: { cidr: Cidr; field: string }[] = [{ cidr: podCidr, field: 'podCidr' }];
  c.peers.forEach((p, i) => {
    const f = `peers[${i}]`;
    const pc = Cidr.parse(p.podCidr, `${f}.podCidr`);
    if (!(clusterCidr.len <= pc.len && clusterCidr.contains(pc.network))) {
      throw new ConfigError('ERR_CONFIG_INVALID_CIDR', `${f}.podCidr`, `${pc} is not inside the cluster CIDR ${clusterCidr}`);
    }
    for (const o of cidrs) {
      if (o.cidr.overlaps(pc)) throw new ConfigError('ERR_CONFIG_OVERLAP', `${f}.podCidr`, `${pc} overlaps ${o.field} (${o.cidr})`);
    }
    cidrs.push({ cidr: pc, field: `${f}.podCidr` });
    if (peerNames.has(p.name) || p.name === c.node) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.name`, `peer name ${p.name} is used twice (or is this node's name)`);
    peerNames.add(p.name);
    const ul = parseIpv4(p.underlay);
    if (peerIps.has(ul)) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.underlay`, `underlay address ${p.underlay} is used twice (or is this node's)`);
    peerIps.add(ul);
    peers.push({ name: p.name, underlayIp: ul, podCidr: pc, vtepMac: checkUnicast(parseMac(p.vtepMac), `${f}.vtepMac`) });
  });

  const pods: PodConfig[] = [];
  const used = { ip: new Set<number>([gateway, vtepIp]), mac: new Set<number>(), ifname: new Set<string>([c.underlay.interface, c.host.interface]), name: new Set<string>() };
  c.pods.forEach((p, i) => {
    pods.push(checkPod(p, `pods[${i}]`, podCidr, used));
  });

  const mtu = c.underlay.mtu ?? null;
  if (c.podMtu !== undefined && mtu !== null && c.podMtu + VXLAN_OVERHEAD > mtu) {
    throw new ConfigError('ERR_CONFIG_MTU', 'podMtu', `a pod MTU of ${c.podMtu} does not fit an underlay MTU of ${mtu} after ${VXLAN_OVERHEAD} bytes of VXLAN overhead (at most ${mtu - VXLAN_OVERHEAD})`);
  }
  const range = c.srcPortRange === 'rfc' ? SRC_PORT_RANGE_RFC : c.srcPortRange === 'linux' ? SRC_PORT_RANGE_LINUX : c.srcPortRange;
  if (range[0] > range[1]) throw new ConfigError('ERR_CONFIG_INVALID', 'srcPortRange', `the range ${range[0]}-${range[1]} is empty`);
  const [mhost, mport] = c.metrics === null ? [null, null] : c.metrics.split(':');
  return {
    node: c.node,
    vni: c.vni,
    port: c.port,
    mode: c.mode,
    underlay: { interface: c.underlay.interface, address: underlayIp, mtu },
    podCidr,
    clusterCidr,
    gateway,
    vtepIp,
    vtepMac: c.vtepMac === undefined ? null : checkUnicast(parseMac(c.vtepMac), 'vtepMac'),
    stateDir: c.stateDir,
    udpChecksum: c.udpChecksum,
    df: c.df,
    ttl: c.ttl,
    srcPortRange: [range[0], range[1]],
    strict: c.strict,
    gbp: c.gbp,
    checkPeerSource: c.checkPeerSource,
    checkInnerSource: c.checkInnerSource,
    host: { interface: c.host.interface, mac: c.host.mac === undefined ? null : checkUnicast(parseMac(c.host.mac), 'host.mac') },
    podMtu: c.podMtu ?? null,
    offloads: c.offloads,
    mssClamp: c.mssClamp,
    controlSocket: c.controlSocket ?? join('/run/flatnet', `${c.node}.sock`),
    metrics: mhost === null || mport === null ? null : { host: parseMetricsHost(mhost), port: parsePort(mport, 'metrics') },
    logLevel: c.log.level,
    fdbLimit: c.fdb.limit,
    fdbAgeingMs: c.fdb.ageingSeconds * 1000,
    peers,
    pods,
  };
}

interface Used { ip: Set<number>; mac: Set<number>; ifname: Set<string>; name: Set<string> }

/** checkPod validates one pod entry (config file or `flatnet pod attach`) against what is in use. */
export function checkPod(p: z.output<typeof podSchema>, f: string, podCidr: Cidr, used: Used): PodConfig {
  const ip = parseIpv4(p.ip);
  if (!podCidr.contains(ip) || ip === podCidr.host(podCidr.size - 1)) {
    throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', `${f}.ip`, `${p.ip} is not a host address of the pod CIDR ${podCidr}`);
  }
  if (used.ip.has(ip)) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.ip`, `${p.ip} is already in use (a pod, the gateway or the VTEP address)`);
  const m = checkUnicast(parseMac(p.mac), `${f}.mac`);
  if (used.mac.has(m)) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.mac`, `${p.mac} is already in use`);
  if (used.ifname.has(p.interface)) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.interface`, `${p.interface} is already in use`);
  if (used.name.has(p.name)) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.name`, `pod name ${p.name} is used twice`);
  used.ip.add(ip); used.mac.add(m); used.ifname.add(p.interface); used.name.add(p.name);
  return { name: p.name, interface: p.interface, ip, mac: m };
}

export const podEntrySchema = podSchema;
export const peerEntrySchema = peerSchema;

function checkUnicast(m: number, field: string): number {
  if (m === 0 || Math.floor(m / 2 ** 40) % 2 === 1) throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', field, `${formatMac(m)} is not a unicast MAC address`);
  return m;
}

function parsePort(s: string, field: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError('ERR_CONFIG_INVALID', field, `${s} is not a TCP port`);
  return n;
}

function parseMetricsHost(s: string): string {
  try {
    parseIpv4(s);
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'metrics', `${s} is not an IPv4 address`, { cause: e });
  }
  return s;
}

/**
 * resolveVtepMac returns the configured VTEP MAC or the one persisted for this node, generating
 * and persisting a random locally administered unicast MAC the first time (flannel keeps its
 * VTEP MAC across restarts so that peers' static entries stay valid: flannel #1155, #1795).
 */
export function resolveVtepMac(cfg: NodeConfig): number {
  if (cfg.vtepMac !== null) return cfg.vtepMac;
  const file = join(cfg.stateDir, `${cfg.node}.vtep-mac`);
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    try {
      return checkUnicast(parseMac(text), file);
    } catch (e) {
      throw new ConfigError('ERR_CONFIG_STATE', file, `persisted VTEP MAC ${JSON.stringify(text)} is invalid; delete the file to generate a new one`, { cause: e });
    }
  }
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  const m = parseMac([...b].map((x) => x.toString(16).padStart(2, '0')).join(':'));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${formatMac(m)}\n`, { mode: 0o644 });
  return m;
}
