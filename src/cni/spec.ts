/**
 * The CNI protocol as the plugin speaks it (CNI spec 1.1): versions, error codes, the
 * environment a runtime passes, the network configuration on stdin.
 *
 * A plugin is called with CNI_COMMAND and friends in the environment and the network
 * configuration (JSON) on stdin; it answers on stdout and exits 0, or prints an error object
 * `{"cniVersion", "code", "msg", "details"}` and exits non-zero. Everything wrong with the input
 * is a CniError with the spec's code, raised before anything is changed.
 *
 * This module is on the plugin's start path (a runtime execs the plugin for every pod): node:*
 * only, no zod, no pino; validation is written out.
 */

/** The versions this plugin reads in configs and writes in results. */
export const SUPPORTED_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The spec's well-known error codes. */
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS: the plugin cannot service ADD requests. */
  NOT_AVAILABLE: 50,
  /** STATUS: ... and existing containers may have limited connectivity. */
  NOT_AVAILABLE_LIMITED: 51,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode];

/** An error the plugin reports to the runtime: the spec's code, a message a person understands, details. */
export class CniError extends Error {
  constructor(readonly code: number, msg: string, readonly details = '') {
    super(msg);
    this.name = 'CniError';
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return this.details === '' ? { cniVersion, code: this.code, msg: this.message } : { cniVersion, code: this.code, msg: this.message, details: this.details };
  }
}

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** The runtime's parameters (environment variables). */
export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  /**
   * Where this process opens CNI_NETNS: the path itself, or, when the daemon runs the invocation
   * for the fast launcher, the path as the launcher's mount namespace sees it (/proc/PID/root...:
   * a runtime's netns mounts need not be visible to the daemon).
   */
  readonly netnsPath: string;
  readonly ifname: string;
  /** CNI_ARGS as key/value pairs. */
  readonly args: ReadonlyMap<string, string>;
  /** CNI_PATH, split. */
  readonly path: readonly string[];
  /** Every CNI_* variable as given (passed on to a delegated IPAM plugin). */
  readonly vars: Readonly<Record<string, string>>;
}

const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IFNAME_RE = /^[^\s/:]{1,15}$/;

/** Which variables each command needs (spec: "Parameters"). */
const REQUIRED: Readonly<Record<CniCommand, readonly string[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

/** parseEnv reads the CNI_* variables; a missing or invalid one is code 4 naming it. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env['CNI_COMMAND'];
  if (command === undefined || command === '') throw new CniError(CniCode.INVALID_ENV, 'CNI_COMMAND is not set', `one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command)) throw new CniError(CniCode.INVALID_ENV, `CNI_COMMAND ${JSON.stringify(command)} is not a CNI command`, `one of ${COMMANDS.join(', ')}`);
  const cmd = command as CniCommand;
  // Only the variables a command uses are read: runtimes pass placeholders to the others
  // (libcni calls VERSION with CNI_NETNS=dummy).
  const per = cmd === 'ADD' || cmd === 'CHECK' || cmd === 'DEL';
  const path = (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== '');
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('CNI_') && e[1] !== undefined));
  if (!per) return { command: cmd, containerId: '', netns: '', netnsPath: '', ifname: '', args: new Map(), path, vars };
  const missing = REQUIRED[cmd].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) throw new CniError(CniCode.INVALID_ENV, `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set (needed by ${cmd})`);
  const containerId = env['CNI_CONTAINERID'] ?? '';
  if (containerId !== '' && !CONTAINER_ID_RE.test(containerId)) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_CONTAINERID ${JSON.stringify(containerId)} is not a container ID`, 'letters, digits, "_", "." and "-", starting with a letter or digit');
  }
  const ifname = env['CNI_IFNAME'] ?? '';
  if (ifname !== '' && (!IFNAME_RE.test(ifname) || ifname === '.' || ifname === '..')) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_IFNAME ${JSON.stringify(ifname)} is not an interface name`, '1-15 characters, no whitespace, "/" or ":"');
  }
  const netns = env['CNI_NETNS'] ?? '';
  if (netns !== '' && !netns.startsWith('/')) throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS ${JSON.stringify(netns)} is not an absolute path`);
  return { command: cmd, containerId, netns, netnsPath: netns, ifname, args: parseArgs(env['CNI_ARGS'] ?? ''), path, vars };
}

/** parseArgs: "K=V;K2=V2" (CNI_ARGS); a pair without "=" is code 4. */
export function parseArgs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text === '') return out;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.INVALID_ENV, `CNI_ARGS: ${JSON.stringify(pair)} is not KEY=VALUE`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/** The network configuration fields the plugin reads (the runtime adds name, cniVersion, prevResult, ...). */
export interface NetConf {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  /** The node daemon's control socket. */
  readonly socket: string;
  /** The pods' MTU; null: the daemon's (underlay MTU - 50). */
  readonly mtu: number | null;
  /** A delegated IPAM plugin's section (host-local, ...); null: flatnet's own IPAM. */
  readonly ipam: Readonly<Record<string, unknown>> & { readonly type: string } | null;
  /** The address the runtime asked for (own IPAM only), or null. */
  readonly requestedIp: string | null;
  readonly prevResult: unknown;
  /** GC: the attachments the runtime still has. */
  readonly validAttachments: readonly { readonly containerId: string; readonly ifname: string }[] | null;
  /** The configuration exactly as read (passed on to a delegated IPAM plugin). */
  readonly raw: string;
}

export const DEFAULT_SOCKET = '/run/flatnet/flatnet.sock';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** versionOf: the cniVersion of a parsed config, for error replies even when the rest is bad. */
export function versionOf(json: unknown): string {
  const v = (json as { cniVersion?: unknown } | null)?.cniVersion;
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!;
}

/** decode: stdin to JSON; code 6 when it is not. */
export function decode(stdin: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CniCode.DECODE_FAILURE, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CniError(CniCode.DECODE_FAILURE, 'the network configuration on stdin is not a JSON object');
  return json as Record<string, unknown>;
}

/**
 * parseConf checks the configuration: its version (code 1), the fields it knows (code 7 for a
 * bad value), and the ones flatnet does not do (code 2: ipMasq, MAC requests, more than one
 * requested address or an IPv6 one).
 */
export function parseConf(json: Record<string, unknown>, raw: string, env: CniEnv): NetConf {
  const v = json['cniVersion'];
  if (typeof v !== 'string') throw new CniError(CniCode.INCOMPATIBLE_VERSION, 'cniVersion is missing from the network configuration', `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) throw new CniError(CniCode.INCOMPATIBLE_VERSION, `cniVersion ${v} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  const cniVersion = v as CniVersion;
  const bad = (field: string, why: string): never => { throw new CniError(CniCode.INVALID_CONFIG, `${field}: ${why}`); };
  const name = json['name'];
  if (typeof name !== 'string' || !NAME_RE.test(name)) bad('name', 'the network name must be a string of letters, digits, "_", "." and "-"');
  const type = json['type'];
  if (type !== 'flatnet') bad('type', `this plugin is "flatnet", the configuration says ${JSON.stringify(type)}`);
  const socket = json['socket'] ?? DEFAULT_SOCKET;
  if (typeof socket !== 'string' || !socket.startsWith('/')) bad('socket', 'the daemon\'s control socket must be an absolute path');
  const mtu = json['mtu'] ?? null;
  if (mtu !== null && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) bad('mtu', `${JSON.stringify(mtu)} is not an MTU (68-65535)`);
  const ipam = json['ipam'] ?? null;
  if (ipam !== null && (typeof ipam !== 'object' || Array.isArray(ipam))) bad('ipam', 'must be an object with a "type"');
  const ipamType = (ipam as { type?: unknown } | null)?.type;
  if (ipam !== null && Object.keys(ipam as object).length > 0 && (typeof ipamType !== 'string' || !NAME_RE.test(ipamType))) bad('ipam.type', 'the IPAM plugin\'s name is missing or not a plugin name');
  if (json['ipMasq'] === true) throw new CniError(CniCode.UNSUPPORTED_FIELD, 'ipMasq: true is not supported: flatnet pods talk without NAT', 'ipMasq=true');
  const ownIpam = ipam === null || Object.keys(ipam as object).length === 0;
  const rc = (json['runtimeConfig'] ?? {}) as Record<string, unknown>;
  const cniArgs = ((json['args'] as { cni?: Record<string, unknown> } | undefined)?.cni ?? {});
  let requestedIp: string | null = null;
  if (ownIpam) {
    // A requested address (host-local's ways: runtimeConfig / args ips, CNI_ARGS IP=): one IPv4 address.
    const ips = rc['ips'] ?? cniArgs['ips'] ?? (env.args.has('IP') ? [env.args.get('IP')] : undefined);
    if (ips !== undefined) {
      const list = Array.isArray(ips) ? ips : [ips];
      const ip = typeof list[0] === 'string' ? list[0].split('/')[0]! : '';
      if (list.length !== 1 || !IPV4_RE.test(ip)) throw new CniError(CniCode.UNSUPPORTED_FIELD, 'a requested address must be one IPv4 address: flatnet gives each attachment one', `ips=${JSON.stringify(ips)}`);
      requestedIp = ip;
    }
  }
  const mac = rc['mac'] ?? env.args.get('MAC');
  if (mac !== undefined) throw new CniError(CniCode.UNSUPPORTED_FIELD, 'a requested MAC address is not supported: flatnet derives the MAC from the IP', `mac=${JSON.stringify(mac)}`);
  const valid = json['cni.dev/valid-attachments'] ?? json['cni.dev/attachments'] ?? null;
  let validAttachments: NetConf['validAttachments'] = null;
  if (valid !== null) {
    if (!Array.isArray(valid)) bad('cni.dev/valid-attachments', 'must be a list of {containerID, ifname}');
    validAttachments = (valid as unknown[]).map((a, i) => {
      const o = a as { containerID?: unknown; ifname?: unknown } | null;
      if (typeof o?.containerID !== 'string' || typeof o.ifname !== 'string') bad(`cni.dev/valid-attachments[${i}]`, 'needs containerID and ifname strings');
      return { containerId: o!.containerID as string, ifname: o!.ifname as string };
    });
  }
  return {
    cniVersion, name: name as string, type: 'flatnet', socket: socket as string, mtu: mtu as number | null,
    ipam: ownIpam ? null : (ipam as NetConf['ipam']), requestedIp, prevResult: json['prevResult'] ?? null, validAttachments, raw,
  };
}

/** Versions at which commands appeared: CHECK in 0.4.0, GC and STATUS in 1.1.0. */
export function requireVersion(conf: NetConf, command: CniCommand): void {
  const min = command === 'CHECK' ? '0.4.0' : command === 'GC' || command === 'STATUS' ? '1.1.0' : null;
  if (min !== null && compareVersions(conf.cniVersion, min) < 0) {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `${command} needs cniVersion ${min} or later; the configuration says ${conf.cniVersion}`);
  }
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** The pod's identity from CNI_ARGS, as Kubernetes runtimes pass it; null when none of it is there. */
export function podIdentity(args: ReadonlyMap<string, string>): { namespace: string | null; name: string | null; uid: string | null; infraContainerId: string | null } | null {
  const g = (k: string): string | null => args.get(k) ?? null;
  const id = { namespace: g('K8S_POD_NAMESPACE'), name: g('K8S_POD_NAME'), uid: g('K8S_POD_UID'), infraContainerId: g('K8S_POD_INFRA_CONTAINER_ID') };
  return id.namespace === null && id.name === null && id.uid === null && id.infraContainerId === null ? null : id;
}
