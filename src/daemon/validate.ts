/**
 * Every rule about desired state, in one place. Producers (the config file, the control
 * socket's commands, later the CNI plugin and the etcd watcher) all validate here, in two steps:
 *   1. shape (zod): types, ranges, formats, unknown keys: nodeSchema, podEntrySchema,
 *      peerEntrySchema, and schemaError() turning the first issue into a ConfigError;
 *   2. meaning: checkNode (CIDRs aligned and nested, addresses in the right blocks, the MTU),
 *      checkPeer / checkPod (an entry against the node), relatePeers / relatePods (an entry
 *      against another entry of its section: the same thing, a clash, or unrelated).
 * Every failure is a ConfigError whose `field` names the offending path ("peers[1].podCidr",
 * "pod.ip"). Who may hold what (two producers claiming one IP) is producers.ts's business, with
 * the relations defined here.
 */

import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import { SRC_PORT_RANGE_LINUX, SRC_PORT_RANGE_RFC, VXLAN_OVERHEAD } from '../wire/encap.js';
import type { NodeSpec, PeerSpec, PodSpec } from './desired.js';
import { DEFAULT_PREFIX, endpointSchema, prefixSchema } from '../control/schema.js';

// ---------------------------------------------------------------------------------------
// 1. Shape

const ifname = z.string().regex(/^[^\s/:]{1,15}$/, 'an interface name: 1-15 characters, no whitespace, "/" or ":"');
const ipv4 = z.ipv4();
const mac = z.mac();
const udpPort = z.number().int().min(1).max(65535);
const entryName = z.string().min(1).max(63);

/** The `io` choices (NodeSpec.io). */
export const IO_BACKENDS = ['auto', 'af_xdp', 'packet'] as const;
export type IoBackend = (typeof IO_BACKENDS)[number];

/**
 * choiceFromEnv: the default of config field `field` from environment variable `name`, one of
 * `choices`; unset or empty gives `dflt`, another value is a ConfigError on `field`.
 */
function choiceFromEnv<T extends string>(env: NodeJS.ProcessEnv, name: string, field: string, choices: readonly T[], dflt: T): T {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new ConfigError('ERR_CONFIG_INVALID', field, `${name}=${JSON.stringify(v)}: expected one of ${choices.join(', ')}`);
}

/** ioFromEnv: the default port backend, $FLATNET_IO (how CI runs the namespace suite on AF_XDP too), else 'packet'. */
export function ioFromEnv(env: NodeJS.ProcessEnv = process.env): IoBackend {
  return choiceFromEnv(env, 'FLATNET_IO', 'io', IO_BACKENDS, 'packet');
}

/**
 * podIoFromEnv: the default of `podIo`, $FLATNET_POD_IO (to run a suite with the pods on another
 * backend than the overlay), else `io`.
 */
export function podIoFromEnv(io: IoBackend, env: NodeJS.ProcessEnv = process.env): IoBackend {
  return choiceFromEnv(env, 'FLATNET_POD_IO', 'podIo', IO_BACKENDS, io);
}

/** The `tunnelOffload` choices (NodeSpec.tunnelOffload). */
export const TUNNEL_OFFLOADS = ['auto', 'off'] as const;

/** tunnelOffloadFromEnv: the default of `tunnelOffload`, $FLATNET_TUNNEL_OFFLOAD (to run a suite or a bench with it off), else 'auto'. */
export function tunnelOffloadFromEnv(env: NodeJS.ProcessEnv = process.env): (typeof TUNNEL_OFFLOADS)[number] {
  return choiceFromEnv(env, 'FLATNET_TUNNEL_OFFLOAD', 'tunnelOffload', TUNNEL_OFFLOADS, 'auto');
}

/** The name of a pod or peer (commands that take only a name use it). */
export const entryNameSchema = entryName;

export const peerEntrySchema = z.object({ name: entryName, underlay: ipv4, podCidr: z.string(), vtepMac: mac }).strict();
export const podEntrySchema = z.object({ name: entryName, interface: ifname, ip: ipv4, mac }).strict();
export type PeerInput = z.output<typeof peerEntrySchema>;
export type PodInput = z.output<typeof podEntrySchema>;

/** The node section of the config file (the file adds `peers` and `pods`: config.ts). */
export const nodeSchema = z.object({
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
  /** Required, unless `control.etcd` is given: then the subnet lease fills it in (src/control/join.ts). */
  podCidr: z.string().optional(),
  /** The control plane: lease the pod subnet and learn the peers from etcd (src/control/). */
  control: z.object({
    etcd: z.object({
      endpoints: z.array(endpointSchema).min(1).max(16),
      prefix: prefixSchema.default(DEFAULT_PREFIX),
      /** The subnet lease's TTL: a dead node's routes are gone from every node within about this long. */
      leaseTtlSeconds: z.number().int().min(2).max(86_400).default(60),
    }).strict(),
  }).strict().optional(),
  clusterCidr: z.string().default('10.244.0.0/16'),
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
  /**
   * TCP super-frames to peers handed whole to the kernel through a tunnel TAP (UDP-tunnel GSO,
   * Linux 6.17+): `auto` where the kernel offers it (with offloads on and udpChecksum off), `off`
   * for the switch's own segmentation everywhere. Default: $FLATNET_TUNNEL_OFFLOAD, else `auto`.
   */
  tunnelOffload: z.enum(TUNNEL_OFFLOADS).optional(),
  /**
   * Port backend: 'af_xdp' (AF_XDP sockets; fails when unavailable), 'packet' (AF_PACKET, UDP and
   * raw sockets), 'auto' (AF_XDP where it opens, else packet). Default: $FLATNET_IO, else 'packet'.
   */
  io: z.enum(IO_BACKENDS).optional(),
  /**
   * The pods' port backend where it should differ from `io`: 'packet' keeps the pods on AF_PACKET
   * (their TSO, through virtio-net headers) beside an AF_XDP overlay; 'af_xdp' and 'auto' put each
   * pod's veth on AF_XDP where it takes a native program (else that pod stays on AF_PACKET, with a
   * warning). Default: $FLATNET_POD_IO, else `io`.
   */
  podIo: z.enum(IO_BACKENDS).optional(),
  controlSocket: z.string().min(1).optional(),
  metrics: z.string().regex(/^[0-9.]+:[0-9]{1,5}$/, 'an address:port such as 127.0.0.1:9465').nullable().default(null),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
  fdb: z.object({
    limit: z.number().int().min(1).max(1_000_000).default(8192),
    ageingSeconds: z.number().int().min(1).max(86_400).default(300),
  }).strict().default({ limit: 8192, ageingSeconds: 300 }),
});
export type NodeInput = z.output<typeof nodeSchema>;

/** "a.b[2].c" from a zod issue path, after `prefix` ("pod" + ["ip"] -> "pod.ip"). */
export function fieldPath(path: readonly PropertyKey[], prefix = ''): string {
  let s = prefix;
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** schemaError: the first issue of a failed parse as a ConfigError naming its field. */
export function schemaError(code: string, error: z.ZodError, prefix = ''): ConfigError {
  const issue = error.issues[0]!;
  const extra = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  const keys = issue.code === 'unrecognized_keys' ? `: ${issue.keys.join(', ')}` : '';
  return new ConfigError(code, fieldPath(issue.path, prefix), `${issue.message}${keys}${extra}`);
}

// ---------------------------------------------------------------------------------------
// 2. Meaning

/** checkNode compiles and checks the node section. */
export function checkNode(c: NodeInput): NodeSpec {
  if (c.podCidr === undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'podCidr', 'required (or give control.etcd, and the node leases one)');
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
  const underlayMtu = c.underlay.mtu ?? null;
  if (underlayMtu !== null) resolvePodMtu(c.podMtu ?? null, underlayMtu);
  const range = c.srcPortRange === 'rfc' ? SRC_PORT_RANGE_RFC : c.srcPortRange === 'linux' ? SRC_PORT_RANGE_LINUX : c.srcPortRange;
  if (range[0] > range[1]) throw new ConfigError('ERR_CONFIG_INVALID', 'srcPortRange', `the range ${range[0]}-${range[1]} is empty`);
  const [mhost, mport] = c.metrics === null ? [null, null] : c.metrics.split(':');
  const io = c.io ?? ioFromEnv();
  return {
    node: c.node,
    vni: c.vni,
    port: c.port,
    mode: c.mode,
    underlay: { interface: c.underlay.interface, address: underlayIp, mtu: underlayMtu },
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
    tunnelOffload: c.tunnelOffload ?? tunnelOffloadFromEnv(),
    io,
    podIo: c.podIo ?? podIoFromEnv(io),
    controlSocket: c.controlSocket ?? `/run/flatnet/${c.node}.sock`,
    metrics: mhost === null || mport === null ? null : { host: parseMetricsHost(mhost), port: parsePort(mport, 'metrics') },
    logLevel: c.log.level,
    fdbLimit: c.fdb.limit,
    fdbAgeingMs: c.fdb.ageingSeconds * 1000,
    control: c.control === undefined ? null : { endpoints: c.control.etcd.endpoints, prefix: c.control.etcd.prefix, leaseTtlSeconds: c.control.etcd.leaseTtlSeconds },
  };
}

/**
 * resolvePodMtu is the MTU rule: the pod MTU (default: underlay MTU - 50) must fit the underlay
 * MTU after the VXLAN overhead. Checked when the file gives the underlay MTU, and again at start
 * with the MTU read from the interface. Returns the pod MTU in effect.
 */
export function resolvePodMtu(podMtu: number | null, underlayMtu: number): number {
  const max = underlayMtu - VXLAN_OVERHEAD;
  if (podMtu !== null && podMtu > max) {
    throw new ConfigError('ERR_CONFIG_MTU', 'podMtu', `a pod MTU of ${podMtu} does not fit an underlay MTU of ${underlayMtu} after ${VXLAN_OVERHEAD} bytes of VXLAN overhead (at most ${max})`);
  }
  if (podMtu === null && max < 68) throw new ConfigError('ERR_CONFIG_MTU', 'underlay.mtu', `an underlay MTU of ${underlayMtu} leaves no room for pods after ${VXLAN_OVERHEAD} bytes of VXLAN overhead`);
  return podMtu ?? max;
}

/**
 * checkPeer compiles one peer entry (field `f`: "peers[2]", "peer") and checks it against the
 * node: a peer's underlay address must be one VXLAN can be sent to and answered from (unicast,
 * not this node's), and its VTEP MAC must not be ours. `ownVtepMac` is the node's VTEP MAC in
 * effect (the daemon passes the one it generated when the file gives none).
 */
export function checkPeer(node: NodeSpec, p: PeerInput, f: string, ownVtepMac: number | null = node.vtepMac): PeerSpec {
  const podCidr = Cidr.parse(p.podCidr, `${f}.podCidr`);
  if (!(node.clusterCidr.len <= podCidr.len && node.clusterCidr.contains(podCidr.network))) {
    throw new ConfigError('ERR_CONFIG_INVALID_CIDR', `${f}.podCidr`, `${podCidr} is not inside the cluster CIDR ${node.clusterCidr}`);
  }
  if (podCidr.overlaps(node.podCidr)) throw new ConfigError('ERR_CONFIG_OVERLAP', `${f}.podCidr`, `${podCidr} overlaps podCidr (${node.podCidr}), this node's`);
  if (p.name === node.node) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.name`, `${p.name} is this node's name`);
  const underlayIp = parseIpv4(p.underlay);
  if (underlayIp === node.underlay.address) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.underlay`, `${p.underlay} is this node's underlay address`);
  const kind = nonUnicastKind(underlayIp);
  if (kind !== null) throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', `${f}.underlay`, `${p.underlay} is ${kind} address; a peer VTEP needs a unicast underlay address`);
  const vtepMac = checkUnicast(parseMac(p.vtepMac), `${f}.vtepMac`);
  if (ownVtepMac !== null && vtepMac === ownVtepMac) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.vtepMac`, `${p.vtepMac} is this node's own VTEP MAC`);
  return { name: p.name, underlayIp, podCidr, vtepMac };
}

/** checkPeerMacs: the file's peers against the node's VTEP MAC in effect (a generated one is known only at start). */
export function checkPeerMacs(peers: readonly PeerSpec[], ownVtepMac: number, prefix = 'peers'): void {
  peers.forEach((p, i) => {
    if (p.vtepMac === ownVtepMac) throw new ConfigError('ERR_CONFIG_DUPLICATE', `${prefix}[${i}].vtepMac`, `${formatMac(p.vtepMac)} is this node's own VTEP MAC`);
  });
}

/**
 * nonUnicastKind: what keeps an IPv4 address from being a peer's underlay address ("the
 * limited broadcast", "a multicast", ...), or null for an ordinary unicast address.
 */
export function nonUnicastKind(a: number): string | null {
  if (a === 0xffff_ffff) return 'the limited broadcast';
  if (a >>> 28 === 0xe) return 'a multicast';
  if (a >>> 28 === 0xf) return 'a reserved (240.0.0.0/4)';
  if (a >>> 24 === 127) return 'a loopback';
  if (a >>> 24 === 0) return a === 0 ? 'the unspecified' : 'a "this network" (0.0.0.0/8)';
  return null;
}

/** checkPod compiles one pod entry (field `f`: "pods[0]", "pod") and checks it against the node. */
export function checkPod(node: NodeSpec, p: PodInput, f: string): PodSpec {
  const ip = parseIpv4(p.ip);
  const cidr = node.podCidr;
  if (!cidr.contains(ip) || ip === cidr.host(cidr.size - 1)) {
    throw new ConfigError('ERR_CONFIG_INVALID_ADDRESS', `${f}.ip`, `${p.ip} is not a host address of the pod CIDR ${cidr}`);
  }
  if (ip === node.gateway || ip === node.vtepIp) {
    throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.ip`, `${p.ip} is already in use (the gateway or the VTEP address)`);
  }
  const m = checkUnicast(parseMac(p.mac), `${f}.mac`);
  if (p.interface === node.underlay.interface || p.interface === node.host.interface) {
    throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.interface`, `${p.interface} is already in use (the underlay or the host interface)`);
  }
  return { name: p.name, interface: p.interface, ip, mac: m };
}

export function checkUnicast(m: number, field: string): number {
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

// ---------------------------------------------------------------------------------------
// Two entries of one section

/**
 * How entry `a` relates to an existing entry `b` of its section:
 *   unrelated  nothing in common;
 *   identical  the same name and parameters (the same thing asked for twice);
 *   differs    the same name with other parameters; `field` is the first that differs;
 *   clashes    other names sharing something only one may have (an IP, a MAC, an interface,
 *              an underlay address, overlapping pod CIDRs); `field` is what they share.
 * `message` describes b, for an error about a.
 */
export interface Conflict { readonly field: string; readonly overlap: boolean; readonly message: string }
export type Relation =
  | { readonly kind: 'unrelated' }
  | { readonly kind: 'identical' }
  | ({ readonly kind: 'differs' } & Conflict)
  | ({ readonly kind: 'clashes' } & Conflict);

const UNRELATED: Relation = { kind: 'unrelated' };
const IDENTICAL: Relation = { kind: 'identical' };

export function describePod(p: PodSpec): string {
  return `pod ${p.name} (interface ${p.interface}, ip ${formatIpv4(p.ip)}, mac ${formatMac(p.mac)})`;
}

export function describePeer(p: PeerSpec): string {
  return `peer ${p.name} (underlay ${formatIpv4(p.underlayIp)}, podCidr ${p.podCidr}, vtepMac ${formatMac(p.vtepMac)})`;
}

export function relatePods(a: PodSpec, b: PodSpec): Relation {
  if (a.name === b.name) {
    const field = a.interface !== b.interface ? 'interface' : a.ip !== b.ip ? 'ip' : a.mac !== b.mac ? 'mac' : null;
    return field === null ? IDENTICAL : { kind: 'differs', field, overlap: false, message: `${describePod(b)} has that name with other parameters (detach it first to change it)` };
  }
  const field = a.ip === b.ip ? 'ip' : a.mac === b.mac ? 'mac' : a.interface === b.interface ? 'interface' : null;
  return field === null ? UNRELATED : { kind: 'clashes', field, overlap: false, message: `already in use by ${describePod(b)}` };
}

export function relatePeers(a: PeerSpec, b: PeerSpec): Relation {
  if (a.name === b.name) {
    const field = a.underlayIp !== b.underlayIp ? 'underlay' : a.podCidr.toString() !== b.podCidr.toString() ? 'podCidr' : a.vtepMac !== b.vtepMac ? 'vtepMac' : null;
    return field === null ? IDENTICAL : { kind: 'differs', field, overlap: false, message: `${describePeer(b)} has that name with other parameters` };
  }
  if (a.podCidr.overlaps(b.podCidr)) return { kind: 'clashes', field: 'podCidr', overlap: true, message: `overlaps ${describePeer(b)}` };
  if (a.underlayIp === b.underlayIp) return { kind: 'clashes', field: 'underlay', overlap: false, message: `already in use by ${describePeer(b)}` };
  return UNRELATED;
}

/**
 * checkUnique checks the entries of one document (a config file) against each other: a name
 * given twice, or two entries clashing, is ERR_CONFIG_DUPLICATE (ERR_CONFIG_OVERLAP for
 * overlapping CIDRs) on the later entry's field, `${prefix}[i].field`.
 */
export function checkUnique<T extends { readonly name: string }>(entries: readonly T[], prefix: string, relate: (a: T, b: T) => Relation): void {
  entries.forEach((a, i) => {
    for (let j = 0; j < i; j++) {
      const r = relate(a, entries[j]!);
      if (r.kind === 'unrelated') continue;
      const f = `${prefix}[${i}]`;
      if (r.kind === 'clashes') throw new ConfigError(r.overlap ? 'ERR_CONFIG_OVERLAP' : 'ERR_CONFIG_DUPLICATE', `${f}.${r.field}`, `${r.message} (${prefix}[${j}])`);
      throw new ConfigError('ERR_CONFIG_DUPLICATE', `${f}.name`, `${a.name} is used twice (${prefix}[${j}])`);
    }
  });
}
