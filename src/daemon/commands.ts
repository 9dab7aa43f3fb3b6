/**
 * The control commands: one entry each (name, argument schema, handler) over DaemonApi, the
 * daemon's operations. The handlers only translate; validation of meaning, conflicts and the
 * reconcile happen behind DaemonApi. Served by the control socket, and by any other front end
 * given the same registry; `flatnet show|pod|peer|reload` check their arguments with it first.
 *
 *   status                          this node: identity, MTUs, pod and peer counts, uptime
 *   show       {what}               routes | fdb | ports | counters | peers (show.ts)
 *   pod-attach {pod: {name, interface, ip, mac}}   idempotent: the same pod again is a no-op
 *   pod-detach {name}               ERR_NOT_FOUND for an unknown pod
 *   peer-add   {peer: {name, underlay, podCidr, vtepMac}}   replaces a peer of that name
 *   peer-del   {name}
 *   reload     {}                   re-read the config file, as SIGHUP does, and say what changed
 *   trace      {in, packet: {flow|hex, vnet?}} what the pipeline would do with a packet (no side effects)
 *   cni-*      the CNI plugin's calls (cni.ts): alloc, attach, del, get, gc, exec, status
 *   control-status {}               the etcd control plane (`flatnet show control`)
 */

import { z } from 'zod';
import { command, CommandRegistry, type Command } from './registry.js';
import type { CniApi } from './cni.js';
import type { Changes } from './reconciler.js';
import { SHOW_WHAT, type ShowWhat } from './show.js';
import { entryNameSchema, peerEntrySchema, podEntrySchema, type PeerInput, type PodInput } from './validate.js';
import type { TraceResult } from '../pipeline/trace.js';
import type { TracePacketInput } from '../trace/request.js';

/** A pod as the daemon reports it (addresses formatted). */
export interface PodView { readonly name: string; readonly interface: string; readonly ip: string; readonly mac: string }
export interface PeerView { readonly name: string; readonly underlay: string; readonly podCidr: string; readonly vtepMac: string }

export interface AttachResult extends PodView {
  /** The pod's name (the key earlier versions answered with). */
  readonly attached: string;
  /** True when exactly this pod was attached already (nothing was done). */
  readonly existing: boolean;
}

export interface PeerAddResult extends PeerView {
  readonly added: string;
  /** True when exactly this peer was there already. */
  readonly existing: boolean;
}

export interface ReloadResult {
  readonly config: string;
  readonly changes: Changes;
  /** Node fields taken over live (only log.level today). */
  readonly nodeChanged: readonly string[];
}

/** What the command handlers may ask of the daemon. */
export interface DaemonApi {
  status(): Record<string, unknown>;
  show(what: ShowWhat): unknown;
  attachPod(pod: PodInput): AttachResult;
  detachPod(name: string): { readonly detached: string };
  addPeer(peer: PeerInput): PeerAddResult;
  delPeer(name: string): { readonly removed: string };
  reload(): ReloadResult;
  trace(input: string, packet: TracePacketInput): TraceResult;
  /** The CNI plugin's side in the daemon: IPAM and attachments. */
  readonly cni: CniApi;
  /** The control plane's state (etcd lease, watch, rejected records); ERR_CONTROL_DISABLED without one. */
  controlStatus(): unknown;
}

const def = <A extends z.ZodType>(c: Command<A, DaemonApi>): Command<A, DaemonApi> => command(c);
const none = z.object({}).strict();
/**
 * A trace's packet: a flow description or a hex frame (each bounded: a control line is at most
 * 64 KiB), and optionally the virtio-net header it arrives with (`--vnet` syntax).
 */
const vnetSpec = z.string().min(1).max(200).optional();
const tracePacket = z.union([z.object({ flow: z.string().min(1).max(4096), vnet: vnetSpec }).strict(), z.object({ hex: z.string().min(1).max(65535 * 3), vnet: vnetSpec }).strict()]);
const byName = z.object({ name: entryNameSchema }).strict();
/** The CNI attachment key: CNI_CONTAINERID (as the spec restricts it) and CNI_IFNAME. */
const cniKey = {
  containerId: z.string().max(1024).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a container ID: letters, digits, "_", "." and "-", starting with a letter or digit'),
  ifname: z.string().regex(/^[^\s/:]{1,15}$/, 'an interface name: 1-15 characters, no whitespace, "/" or ":"'),
};
const k8sIdentity = z.object({ namespace: z.string().max(253).nullable(), name: z.string().max(253).nullable(), uid: z.string().max(64).nullable(), infraContainerId: z.string().max(1024).nullable() }).strict().nullable();
const cniAttach = z.object({
  ...cniKey, name: entryNameSchema, interface: cniKey.ifname, ip: z.ipv4(), mac: z.mac(), ipam: z.enum(['flatnet', 'delegated']), k8s: k8sIdentity,
}).strict();

export const COMMANDS = [
  def({ name: 'status', summary: "this node's identity, MTUs, pod and peer counts, uptime", mutates: false, args: none, run: (_a, d) => d.status() }),
  def({ name: 'show', summary: 'routes, fdb, ports, counters or peers of the switch', mutates: false, args: z.object({ what: z.enum(SHOW_WHAT) }).strict(), run: (a, d) => d.show(a.what) }),
  def({ name: 'pod-attach', summary: "attach a pod's veth (the same pod again is a no-op)", mutates: true, args: z.object({ pod: podEntrySchema }).strict(), run: (a, d) => d.attachPod(a.pod) }),
  def({ name: 'pod-detach', summary: 'detach a pod', mutates: true, args: byName, run: (a, d) => d.detachPod(a.name) }),
  def({ name: 'peer-add', summary: 'add a remote VTEP, or replace the one of that name', mutates: true, args: z.object({ peer: peerEntrySchema }).strict(), run: (a, d) => d.addPeer(a.peer) }),
  def({ name: 'peer-del', summary: 'remove a remote VTEP', mutates: true, args: byName, run: (a, d) => d.delPeer(a.name) }),
  def({ name: 'reload', summary: 're-read the config file (as SIGHUP) and report what changed', mutates: true, args: none, run: (_a, d) => d.reload() }),
  def({ name: 'cni-alloc', summary: "CNI ADD: an address for (containerId, ifname); the same one again for a repeated ADD", mutates: true, args: z.object({ ...cniKey, k8s: k8sIdentity, ip: z.ipv4().optional() }).strict(), run: (a, d) => d.cni.alloc(a) }),
  def({ name: 'cni-attach', summary: "CNI ADD: attach the pod's veth host end with its IP and MAC bound", mutates: true, args: cniAttach, run: (a, d) => d.cni.attach(a) }),
  def({ name: 'cni-del', summary: 'CNI DEL: detach and release (idempotent)', mutates: true, args: z.object(cniKey).strict(), run: (a, d) => d.cni.del(a) }),
  def({ name: 'cni-get', summary: 'CNI CHECK: one attachment and whether its port is attached', mutates: false, args: z.object(cniKey).strict(), run: (a, d) => d.cni.get(a) }),
  def({ name: 'cni-gc', summary: 'CNI GC: release every attachment not in the valid list', mutates: true, args: z.object({ valid: z.array(z.object(cniKey).strict()).max(65536) }).strict(), run: (a, d) => d.cni.gc(a.valid) }),
  def({ name: 'cni-exec', summary: 'run one CNI plugin invocation in the daemon (the fast launcher): exit status and stdout', mutates: true, args: z.object({ env: z.record(z.string().regex(/^(CNI_[A-Z_]+|FLATNET_CNI_TRACE)$/), z.string().max(4096)), stdin: z.string().max(60_000), pid: z.number().int().positive().optional() }).strict(), run: (a, d) => d.cni.exec(a.env, a.stdin, a.pid) }),
  def({ name: 'cni-status', summary: 'CNI STATUS: free addresses and attachments', mutates: false, args: none, run: (_a, d) => d.cni.status() }),
  def({ name: 'trace', summary: 'what the pipeline would do with a packet, stage by stage (changes nothing)', mutates: false, args: z.object({ in: z.string().min(1).max(64), packet: tracePacket }).strict(), run: (a, d) => d.trace(a.in, a.packet) }),
  def({ name: 'control-status', summary: 'the etcd control plane: lease, watch revision, last error, rejected records', mutates: false, args: none, run: (_a, d) => d.controlStatus() }),
];

/** The daemon's registry of control commands. */
export function controlRegistry(): CommandRegistry<DaemonApi> {
  return new CommandRegistry<DaemonApi>(COMMANDS);
}
