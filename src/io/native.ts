/**
 * The only module that loads the native addon (native/build/Release/flatnet.node) and the
 * declaration of its interface. Everything else in src/io goes through `loadNative()`.
 *
 * Two kinds of calls, as in native/src/flatnet.h:
 *  - control calls (open, bind, ioctl, setns) throw; `control()` rewraps what the addon throws
 *    (an Error with `errno` and `syscall`) into a NativeError whose `code` is the errno name
 *    ('ENODEV', 'EPERM'), `errno` negative as in Node's ErrnoException;
 *  - hot calls (batched read/write) return a count or -errno, never throw and never create a JS
 *    object per frame. They take the arena Buffer and Int32Array metadata of src/buf/batch.ts.
 *
 * The addon is loaded lazily on first use, so modules that import this one (for types or
 * constants) still load on a machine without the addon: MemoryPort and the replay port never
 * touch it.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { FlatnetError, NativeError } from '../errors.js';

/** Layout of the Int32Array `res` that batched writes fill (native/src/flatnet.h kRes*). */
export const Res = {
  /** Frames the kernel refused with a hard error (skipped). */
  ERRORS: 0,
  /** Frames not taken because the queue was full (EAGAIN/ENOBUFS): the rest of the batch. */
  DROPPED: 1,
  /** The last errno seen (positive), 0 if none. */
  ERRNO: 2,
  /** ResFlag bits. */
  FLAGS: 3,
  /** Index of the first frame not processed (== count when the batch was finished). */
  NEXT: 4,
  /** Frame bytes accepted (without virtio-net headers). */
  BYTES: 5,
} as const;
export const RES_LEN = 8;

export const ResFlag = {
  /** sendmmsg returned EIO for a UDP_SEGMENT message: the route's device cannot do UDP GSO. */
  GSO_EIO: 1,
} as const;

/** tapOpen flags (native/src/tap.cc). */
export const TapFlag = { VNET_HDR: 1, MULTI_QUEUE: 2 } as const;
/** TUNSETOFFLOAD bits (linux/if_tun.h). */
export const TunOffload = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, USO4: 0x20, USO6: 0x40, UDP_TUNNEL_GSO: 0x80, UDP_TUNNEL_GSO_CSUM: 0x100 } as const;
/** packetOpen flags (native/src/packet.cc). */
export const PacketFlag = { VNET_HDR: 1, QDISC_BYPASS: 2, PROMISC: 4, FORCE_BPF_OUTGOING: 8 } as const;
/** udpOpen flags (native/src/udp.cc). */
export const UdpFlag = { GSO: 1, GRO: 2, REUSE_PORT: 4, DONT_FRAGMENT: 8, NO_CHECK: 16 } as const;

export interface TapOpenResult { fd: number; name: string; vnetHdrLen: number; offload: number }
export interface PacketOpenResult { fd: number; ignoreOutgoing: 'sockopt' | 'bpf'; qdiscBypass: boolean; rcvbuf: number; sndbuf: number }
export interface UdpOpenResult { fd: number; port: number; gso: boolean; gro: boolean; rcvbuf: number; sndbuf: number }
/** xskOpen's program modes (native/bpf/flatnet_xdp.c). */
export const XdpMode = { ALL: 0, VXLAN: 1 } as const;
export interface XskOpenResult {
  id: number;
  fd: number;
  /** How the kernel runs the program: 'native' (driver), 'generic' (skb), ... */
  attach: string;
  /** Attached through a BPF link (detached by the kernel when the process ends). */
  link: boolean;
  zerocopy: boolean;
}
export interface UmemCreateResult { id: number; buffer: Buffer }
/** A UMEM's chunks: in all, free (in its pool), taken by its sockets' shares; and its sockets. */
export interface UmemStats { chunks: number; free: number; reserved: number; sockets: number }
export interface XskStats {
  rxDropped: number; rxInvalid: number; txInvalid: number; rxRingFull: number; fillRingEmpty: number; txRingEmpty: number; txOutstanding: number;
  /** Frames whose partial TCP/UDP checksum the read finished (mode ALL: a pod's veth). */
  partialChecksums: number;
  /** This socket's share of its UMEM, in 2 KB chunks (three quarters for receive, native/src/xdp.cc). */
  umemFrames: number;
  /** Frames sent from the chunk they were read into (another port of the same UMEM): no copy. */
  zeroCopyTx: number;
  /** Frames copied into a chunk to be sent (from the kernel's sockets, the switch's scratch, another UMEM). */
  copiedTx: number;
  /** The UMEM the socket shares: its chunks, how many are free, how many sockets use it. */
  umem: { id: number; chunks: number; free: number; sockets: number };
}
export interface RouteGetResult { ifindex: number; gateway: number; src: number; local: boolean }

/** The addon's exports (native/src/*.cc). */
export interface NativeAddon {
  // descriptors
  close(fd: number): number;
  ownedFds(): number;
  // TAP
  tapOpen(name: string, flags: number, vnetHdrSz: number, offload: number): TapOpenResult;
  tapRead(fd: number, arena: Buffer, slotSize: number, headroom: number, meta: Int32Array, max: number, vnetHdrLen: number): number;
  tapWrite(fd: number, arena: Buffer, meta: Int32Array, count: number, vnetHdrLen: number, res: Int32Array): number;
  tapSetPersist(fd: number, on: boolean): void;
  // AF_PACKET
  packetOpen(ifindex: number, flags: number, rcvbuf: number, sndbuf: number): PacketOpenResult;
  packetRecv(fd: number, arena: Buffer, slotSize: number, headroom: number, meta: Int32Array, max: number, vnetHdrLen: number): number;
  packetSend(fd: number, arena: Buffer, meta: Int32Array, count: number, vnetHdrLen: number, res: Int32Array): number;
  // UDP
  udpProbe(): { gso: boolean; gro: boolean };
  udpOpen(addr: number, port: number, flags: number, rcvbuf: number, sndbuf: number): UdpOpenResult;
  udpRecv(fd: number, arena: Buffer, slotSize: number, headroom: number, meta: Int32Array, max: number): number;
  udpSend(fd: number, arena: Buffer, meta: Int32Array, from: number, count: number, gso: number, res: Int32Array): number;
  rawOpen(sndbuf: number): { fd: number; sndbuf: number };
  // readiness
  pollOpen(fd: number, cb: (status: number) => void): number;
  pollStart(id: number): number;
  pollStop(id: number): number;
  pollRef(id: number, keepAlive: boolean): number;
  pollClose(id: number): number;
  openPolls(): number;
  // link control
  ifIndex(name: string): number;
  ifNameOf(index: number): string;
  getMtu(name: string): number;
  setMtu(name: string, mtu: number): void;
  getFlags(name: string): number;
  setUp(name: string, up: boolean): void;
  getMac(name: string): Buffer;
  setMac(name: string, mac: Buffer): void;
  setTxQueueLen(name: string, len: number): void;
  // AF_XDP (native/src/xdp.cc)
  umemCreate(chunks: number): UmemCreateResult;
  umemStats(id: number): UmemStats;
  xskOpen(ifindex: number, objPath: string, mode: number, udpPort: number, localIp: number, generic: boolean, maxLen: number, frames: number, umemId: number): XskOpenResult;
  xskClose(id: number): number;
  xskRecv(id: number, meta: Int32Array, max: number, headroom: number): number;
  xskSend(id: number, arena: Buffer, meta: Int32Array, count: number, vnetHdrLen: number, res: Int32Array): number;
  xskSetPeers(id: number, addrs: Int32Array): number;
  xskStats(id: number): XskStats;
  xdpAttached(ifindex: number): number;
  // underlay next hop (native/src/nexthop.cc)
  nlOpen(): number;
  routeGet(nlFd: number, dst: number): RouteGetResult;
  neighGet(nlFd: number, ifindex: number, ip: number): { mac: Buffer | null; state: number };
  nlMonitorOpen(): number;
  nlDrain(fd: number): number;
  /** The connection table's pre-pass (native/src/conntrack.cc; src/conntrack/table.ts prepass). */
  ctBind(src: Int32Array, dst: Int32Array, ports: Int32Array, next: Int32Array, packets: Float64Array, bytes: Float64Array, proto: Uint8Array, state: Uint8Array,
    flags: Uint8Array, expires: Float64Array, buckets: Int32Array, timeouts: Float64Array, marks: Int32Array, aux: Int32Array, seed: number): unknown;
  ctPrepass(table: unknown, arena: Buffer, meta: Int32Array, n: number, now: number, framing: number, vni: number, podIp: number, vlen: number, out: Int32Array, room: number): number;
  // namespaces
  netnsEnter(path: string): number;
  netnsRestore(savedFd: number): void;
}

const ADDON_REL = join('native', 'build', 'Release', 'flatnet.node');

/**
 * Where the XDP program object is: $FLATNET_XDP_OBJECT (tests point it at a missing file to
 * force the packet fallback), else next to the addon (native/build/Release/flatnet_xdp.o).
 */
export function xdpObjectPath(): string | null {
  const env = process.env['FLATNET_XDP_OBJECT'];
  if (env !== undefined && env !== '') return existsSync(env) ? env : null;
  const a = addonPath();
  if (a === null) return null;
  const p = join(dirname(a), 'flatnet_xdp.o');
  return existsSync(p) ? p : null;
}

/** Where the addon is: $FLATNET_ADDON, else native/build/Release under the package root. */
export function addonPath(): string | null {
  const env = process.env['FLATNET_ADDON'];
  if (env !== undefined && env !== '') return existsSync(env) ? env : null;
  // src/io/native.ts and dist/src/io/native.js sit 2 and 3 levels below the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, ADDON_REL);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

let addon: NativeAddon | null = null;
let loadError: Error | null = null;

/** loadNative returns the addon, loading it on first use; throws ERR_NATIVE_UNAVAILABLE. */
export function loadNative(): NativeAddon {
  if (addon !== null) return addon;
  if (loadError !== null) throw loadError;
  const path = addonPath();
  if (path === null) {
    loadError = new FlatnetError('ERR_NATIVE_UNAVAILABLE', `the native addon is not built (${ADDON_REL}); run \`npm run build:native\``);
    throw loadError;
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
    return addon;
  } catch (e) {
    loadError = new FlatnetError('ERR_NATIVE_UNAVAILABLE', `cannot load ${path}: ${(e as Error).message}`, { cause: e });
    throw loadError;
  }
}

/** Why the addon cannot be used here, or null when it can (for test skips and the CLI). */
export function nativeUnavailableReason(): string | null {
  try {
    loadNative();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** errnoName(-19) === 'ENODEV' (accepts either sign). */
export function errnoName(errno: number): string {
  if (errno === 0) return 'OK';
  try {
    return getSystemErrorName(errno < 0 ? errno : -errno);
  } catch {
    return `E${Math.abs(errno)}`;
  }
}

interface AddonErrnoError extends Error { errno: number; syscall: string }

function isAddonError(e: unknown): e is AddonErrnoError {
  return e instanceof Error && typeof (e as Partial<AddonErrnoError>).errno === 'number' && typeof (e as Partial<AddonErrnoError>).syscall === 'string';
}

/** nativeError builds the NativeError for a failed system call (`errno` of either sign). */
export function nativeError(errno: number, syscall: string, what = ''): NativeError {
  const neg = errno < 0 ? errno : -errno;
  const code = errnoName(neg);
  const detail = what === '' ? '' : ` (${what})`;
  return new NativeError(code, neg, syscall, `${syscall} failed: ${code}${detail}`);
}

/**
 * control runs a control call and turns the addon's errno errors into NativeError (`what`
 * says what was being done, e.g. the interface name). Other errors pass through.
 */
export function control<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isAddonError(e)) {
      const err = nativeError(e.errno, e.syscall, what);
      (err as { cause?: unknown }).cause = e;
      throw err;
    }
    throw e;
  }
}
