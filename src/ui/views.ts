/**
 * The views that need more than the cluster poll: the encapsulation of a packet between two pods,
 * a packet's path across the cluster, a node's pipeline, and the policies and Services. Every one
 * is built from real answers: the daemons' `trace` (the pipeline's own decide() of every stage, no
 * side effects), `show` snapshots, and the codec's dissector; nothing is made up here.
 *
 *   encap:    trace PROTO to DST on the source pod's node -> the overlay frame it would send,
 *             annotated field by field (frame.ts); then a DF packet of the underlay MTU, traced
 *             the same way, for the MTU arithmetic (frag-needed and what goes back to the pod).
 *   path:     trace on the source node; when it tunnels, the frame it would send is traced again
 *             as it arrives on the peer's overlay port (a flatnet peer), so each node's stages and
 *             decisions appear in order: pod -> veth -> stages -> VTEP -> underlay -> VTEP -> stages
 *             -> veth -> pod. A kernel peer cannot be traced: its hop says so.
 */

import { z } from 'zod';
import type { TraceResult } from '../pipeline/trace.js';
import { STAGE_NAMES } from '../pipeline/trace.js';
import { VXLAN_OVERHEAD } from '../wire/encap.js';
import type { PolicyRow } from '../policy/view.js';
import type { ServiceRow } from '../service/view.js';
import { UiError, type ClusterSource } from './cluster.js';
import { annotateFrame } from './frame.js';
import type { ClusterSnapshot, EncapView, NodeInfo, PathHop, PathView, PipelineView, PodInfo } from './model.js';
import { STAGE_COUNTERS, STAGE_SUMMARY } from './stages.js';

const podOrIp = z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'a pod name or an IPv4 address');
const ipv4 = z.ipv4();
export const encapQuery = z.object({
  from: podOrIp.optional(),
  to: podOrIp.optional(),
  proto: z.enum(['icmp', 'udp', 'tcp']).default('icmp'),
  /** A packet of the trace grammar (`flatnet trace`'s description) from `from` instead of a default one to `to`. */
  flow: z.string().min(1).max(4096).optional(),
  /** A captured frame (hex, Ethernet first) instead of two pods, and the node whose overlay it arrives on. */
  hex: z.string().regex(/^([0-9a-fA-F]{2})+$/, 'whole bytes of hex').max(2 * 9216).optional(),
  node: z.string().min(1).max(64).optional(),
}).strict();
export const pathQuery = z.object({
  from: podOrIp,
  to: podOrIp,
  proto: z.enum(['icmp', 'udp', 'tcp']).default('icmp'),
  /** A source address other than the pod's: a spoofed packet. */
  src: ipv4.optional(),
  /** The IPv4 total length. */
  len: z.coerce.number().int().min(28).max(9000).optional(),
}).strict();

type Trace = TraceResult;

/** Where a pod is: its node and itself; 404 for an unknown pod. */
function findPod(snap: ClusterSnapshot, name: string): { node: NodeInfo; pod: PodInfo } {
  for (const node of snap.nodes) {
    const pod = node.pods.find((p) => p.name === name);
    if (pod !== undefined) return { node, pod };
  }
  throw new UiError(404, 'ERR_UI_NO_POD', `no pod named ${JSON.stringify(name)}`);
}

/** destination: a pod name or an IPv4 address, as the trace's destination IP. */
function destination(snap: ClusterSnapshot, to: string): { ip: string; pod: PodInfo | null; node: NodeInfo | null } {
  if (ipv4.safeParse(to).success) {
    for (const node of snap.nodes) {
      const pod = node.pods.find((p) => p.ip === to);
      if (pod !== undefined) return { ip: to, pod, node };
    }
    return { ip: to, pod: null, node: null };
  }
  const { node, pod } = findPod(snap, to);
  return { ip: pod.ip, pod, node };
}

function flowFor(proto: 'icmp' | 'udp' | 'tcp', dst: string, extra: { src?: string | undefined; len?: number | undefined; df?: boolean } = {}): string {
  const src = extra.src === undefined ? '' : `${extra.src} `;
  const to = proto === 'icmp' ? dst : `${dst}:${proto === 'tcp' ? 80 : 5201}`;
  const opts = [extra.len === undefined ? '' : `len ${extra.len}`, extra.df === true ? 'df' : ''].filter((x) => x !== '').join(' ');
  return `${proto} ${src}to ${to}${opts === '' ? '' : ` ${opts}`}`;
}

/** sourceNode: the flatnet node a pod's packets can be traced on; 409 for a pod of a kernel node. */
function sourceNode(node: NodeInfo, pod: string): NodeInfo {
  if (node.kind === 'kernel') throw new UiError(409, 'ERR_UI_KERNEL_NODE', `${pod} is on ${node.name}, a kernel-vxlan node: only flatnet nodes can trace; pick a pod of a flatnet node as the source`);
  if (!node.up) throw new UiError(502, 'ERR_UI_NODE_DOWN', `${node.name} is down (${node.error ?? 'no answer'}): it cannot trace`);
  return node;
}

async function trace(src: ClusterSource, node: string, input: string, packet: { flow: string } | { hex: string }): Promise<Trace> {
  return (await src.call(node, 'trace', { in: input, packet })) as Trace;
}

/** encapView: the frame a packet from one pod to another leaves its node as, and the MTU arithmetic. */
export async function encapView(src: ClusterSource, snap: ClusterSnapshot, q: z.output<typeof encapQuery>): Promise<EncapView> {
  let node: NodeInfo;
  let t: Trace;
  let flow: string;
  let from: string;
  let to: string;
  let frameHex: string;
  let frameMeta: EncapView['frame'];
  if (q.hex !== undefined) {
    if (q.from !== undefined || q.to !== undefined) throw new UiError(400, 'ERR_UI_BAD_QUERY', 'give either from and to (two pods) or hex (a captured frame), not both');
    const name = q.node ?? snap.nodes.find((n) => n.kind === 'flatnet' && n.up)?.name;
    if (name === undefined) throw new UiError(502, 'ERR_UI_NODE_DOWN', 'no flatnet node is up to trace the frame');
    const found = snap.nodes.find((n) => n.name === name);
    if (found === undefined) throw new UiError(404, 'ERR_UI_NO_NODE', `no node named ${JSON.stringify(name)}`);
    node = sourceNode(found, 'the frame');
    t = await trace(src, node.name, 'overlay', { hex: q.hex.toLowerCase() });
    flow = 'a captured frame';
    from = 'capture';
    to = node.name;
    frameHex = q.hex.toLowerCase();
    frameMeta = { hex: frameHex, length: frameHex.length / 2, to: null, kind: 'captured' };
  } else {
    if (q.from === undefined || (q.to === undefined && q.flow === undefined)) throw new UiError(400, 'ERR_UI_BAD_QUERY', 'from and to: the two pods (or from and flow: a packet description; or hex: a captured frame)');
    const a = findPod(snap, q.from);
    node = sourceNode(a.node, q.from);
    flow = q.flow ?? flowFor(q.proto, destination(snap, q.to!).ip);
    t = await trace(src, node.name, q.from, { flow });
    from = q.from;
    to = q.to ?? flow;
    const f = t.frames.find((x) => x.role === 'overlay') ?? t.frames[0] ?? null;
    frameHex = f?.hex ?? '';
    frameMeta = f === null ? null : { hex: f.hex, length: f.length, to: f.to, kind: f.kind };
  }
  const port = node.port ?? 4789;
  const headers = frameHex === '' ? [] : annotateFrame(Buffer.from(frameHex, 'hex'), port);
  const notes = [...t.notes];
  const outerEth = headers.find((h) => h.layer === 'outer-eth');
  if (outerEth !== undefined && /^(00:){5}00$/.test(outerEth.fields[0]?.value ?? '')) {
    const peer = snap.nodes.find((n) => n.underlayIp !== null && frameMeta?.to?.startsWith(`${n.underlayIp}:`));
    const macs = node.underlayMac !== null && peer?.underlayMac ? ` (on this lab: ${node.underlayMac} > ${peer.underlayMac}, the peer being on the same underlay segment)` : '';
    notes.push(`the outer Ethernet header is written by the kernel's IP stack, not by flatnet (its UDP socket sends from the IPv4 header on): the trace shows zeros there${macs}`);
  }
  const underlayMtu = node.underlayMtu ?? 1500;
  const dst = q.hex === undefined && q.to !== undefined ? destination(snap, q.to).ip : null;
  // A DF packet of the underlay MTU, as a pod that ignores its own MTU would send it: the real trace says what happens.
  const probeFlow = dst === null ? null : flowFor(q.proto, dst, { len: underlayMtu, df: true });
  let probe: EncapView['mtu']['probe'];
  if (probeFlow === null) probe = { flow: '', outcome: '', drop: null, verdict: '', reply: null, trace: null };
  else {
    const pt = await trace(src, node.name, q.from!, { flow: probeFlow });
    const egress = pt.steps.find((s) => s.stage === 'egress');
    const reply = pt.frames.find((f) => f.kind === 'icmp-error');
    const mtuMatch = egress?.matched.find((m) => m.what === 'mtu');
    probe = { flow: probeFlow, outcome: pt.outcome, drop: pt.drop?.reason ?? null, verdict: mtuMatch?.detail ?? egress?.verdict ?? pt.steps[pt.steps.length - 1]?.verdict ?? '', reply: reply === undefined ? null : `${reply.kind} out ${reply.port} (${reply.length} bytes)`, trace: pt };
  }
  return {
    from, to, node: node.name, flow, outcome: t.outcome, frame: frameMeta, headers,
    overhead: headers.filter((h) => h.overhead).reduce((n, h) => n + h.length, 0), notes,
    mtu: { underlayMtu, overhead: VXLAN_OVERHEAD, podMtu: node.podMtu ?? underlayMtu - VXLAN_OVERHEAD, probe }, trace: t,
  };
}

/** stageHops: one hop per stage of a trace, the last one failing when the trace ends in a drop. */
function stageHops(t: Trace, node: string): PathHop[] {
  return t.steps.map((s, i) => {
    const last = i === t.steps.length - 1;
    const dropped = last && t.outcome === 'drop';
    return { kind: 'stage', node, label: s.stage, detail: [s.looked, ...s.matched.map((m) => `${m.what}: ${m.detail}`)].join('\n'), verdict: s.verdict, ok: !dropped };
  });
}

/** pathView: a packet from a pod, stage by stage through every node it crosses. */
export async function pathView(src: ClusterSource, snap: ClusterSnapshot, q: z.output<typeof pathQuery>): Promise<PathView> {
  const a = findPod(snap, q.from);
  const node = sourceNode(a.node, q.from);
  const d = destination(snap, q.to);
  const flow = flowFor(q.proto, d.ip, { src: q.src, len: q.len });
  const hops: PathHop[] = [
    { kind: 'pod', node: node.name, label: q.from, detail: `${a.pod.ip} ${a.pod.mac ?? ''}`.trim(), verdict: `sends ${flow}`, ok: true },
    { kind: 'veth', node: node.name, label: a.pod.hostIf ?? 'veth', detail: `veth pair: eth0 in the pod, ${a.pod.hostIf ?? '?'} in ${node.name}; MTU ${a.pod.mtu ?? '?'}`, verdict: null, ok: true },
  ];
  const traces: PathView['traces'][number][] = [];
  const t1 = await trace(src, node.name, q.from, { flow });
  traces.push({ node: node.name, in: q.from, trace: t1 });
  hops.push(...stageHops(t1, node.name));
  let outcome: string = t1.outcome;
  let drop: PathView['drop'] = t1.drop === null ? null : { ...t1.drop, node: node.name, stage: t1.steps[t1.steps.length - 1]?.stage ?? '' };
  const deliverHops = (n: NodeInfo, t: Trace): void => {
    const f = t.frames.find((x) => x.role === 'pod' && x.kind === 'forwarded');
    const pod = f === undefined ? undefined : n.pods.find((p) => p.name === f.port);
    if (pod !== undefined) {
      hops.push({ kind: 'veth', node: n.name, label: pod.hostIf ?? 'veth', detail: `veth pair to ${pod.name}`, verdict: null, ok: true });
      hops.push({ kind: 'pod', node: n.name, label: pod.name, detail: `${pod.ip} ${pod.mac ?? ''}`.trim(), verdict: 'receives it', ok: true });
    } else if (t.frames.some((x) => x.role === 'host')) {
      hops.push({ kind: 'host', node: n.name, label: n.host?.name ?? 'host', detail: 'the node\'s own stack (host TAP)', verdict: 'receives it', ok: true });
    }
  };
  if (t1.outcome === 'deliver') deliverHops(node, t1);
  if (t1.outcome === 'tunnel') {
    const f = t1.frames.find((x) => x.role === 'overlay')!;
    const peerIp = f.to?.split(':')[0] ?? '';
    const peer = snap.nodes.find((n) => n.underlayIp === peerIp) ?? null;
    hops.push({ kind: 'vtep', node: node.name, label: `VTEP ${node.name}`, detail: `${node.vtepMac ?? ''} underlay ${node.underlayIp ?? ''}: adds ${VXLAN_OVERHEAD} bytes (outer Ethernet, IPv4, UDP, VXLAN vni ${node.vni ?? '?'})`, verdict: `send ${f.length} bytes to ${f.to ?? '?'}`, ok: true });
    hops.push({ kind: 'underlay', node: null, label: 'underlay', detail: `UDP ${node.underlayIp ?? '?'} -> ${f.to ?? '?'}`, verdict: null, ok: true });
    if (peer === null) {
      hops.push({ kind: 'vtep', node: null, label: `VTEP ${peerIp}`, detail: 'no node of this cluster has that underlay address', verdict: null, ok: false });
    } else if (peer.kind === 'kernel') {
      hops.push({ kind: 'kernel', node: peer.name, label: `VTEP ${peer.name} (kernel ${peer.vxlanDev ?? 'vxlan'})`, detail: `the kernel's vxlan driver decapsulates and ${peer.host?.name ?? 'its bridge'} delivers; a kernel node has no trace`, verdict: null, ok: peer.up });
      if (d.pod !== null && d.node?.name === peer.name) {
        hops.push({ kind: 'veth', node: peer.name, label: d.pod.hostIf ?? 'veth', detail: `veth pair to ${d.pod.name}`, verdict: null, ok: peer.up });
        hops.push({ kind: 'pod', node: peer.name, label: d.pod.name, detail: d.pod.ip, verdict: null, ok: peer.up });
      }
    } else if (!peer.up) {
      hops.push({ kind: 'vtep', node: peer.name, label: `VTEP ${peer.name}`, detail: `${peer.name} is down: ${peer.error ?? ''}`, verdict: null, ok: false });
      outcome = 'drop';
    } else {
      hops.push({ kind: 'vtep', node: peer.name, label: `VTEP ${peer.name}`, detail: `${peer.vtepMac ?? ''} underlay ${peer.underlayIp ?? ''}: receives on UDP ${peer.port ?? ''}`, verdict: 'decapsulate', ok: true });
      const t2 = await trace(src, peer.name, 'overlay', { hex: f.hex });
      traces.push({ node: peer.name, in: 'overlay', trace: t2 });
      hops.push(...stageHops(t2, peer.name));
      outcome = t2.outcome;
      if (t2.drop !== null) drop = { ...t2.drop, node: peer.name, stage: t2.steps[t2.steps.length - 1]?.stage ?? '' };
      if (t2.outcome === 'deliver') deliverHops(peer, t2);
    }
  }
  return { flow, from: q.from, to: q.to, outcome, drop, hops, traces };
}

/** pipelineView: a node's stages with the counters and drops each owns, and its ports, from the last poll. */
export function pipelineView(src: ClusterSource, snap: ClusterSnapshot, name: string): PipelineView {
  const node = snap.nodes.find((n) => n.name === name);
  if (node === undefined) throw new UiError(404, 'ERR_UI_NO_NODE', `no node named ${JSON.stringify(name)}`);
  if (node.kind === 'kernel') throw new UiError(409, 'ERR_UI_KERNEL_NODE', `node ${name} runs the kernel's vxlan driver: it has no flatnet pipeline`);
  const rates = new Map<string, number>();
  for (const d of node.drops) rates.set(d.reason, d.perSecond);
  const stages = STAGE_NAMES.filter((s) => node.mode !== 'l3' || s !== 'bridge').map((stage) => ({
    stage, summary: STAGE_SUMMARY[stage],
    counters: STAGE_COUNTERS[stage].filter((c) => node.counters?.[c] !== undefined).map((c) => ({ name: c, value: node.counters![c]!, perSecond: 0 })),
    drops: node.drops.filter((d) => d.stage === stage),
  }));
  const ports = src.portRows.get(name);
  return {
    node: name, up: node.up, error: node.error, stages,
    ports: (ports?.rows ?? []).map((p) => ({
      name: p.name, role: p.role, backend: p.backend, rxPackets: p.rxPackets, txPackets: p.txPackets,
      rxPps: ports?.rates.get(p.name)?.rx ?? 0, txPps: ports?.rates.get(p.name)?.tx ?? 0,
      rxErrors: p.rxErrors, txErrors: p.txErrors, txDropped: p.txDropped, kernelDrops: p.kernelDrops?.total ?? 0,
    })),
  };
}

export interface PolicyServiceView {
  readonly nodes: readonly { readonly node: string; readonly up: boolean; readonly error: string | null; readonly policies: readonly PolicyRow[]; readonly services: readonly ServiceRow[] }[];
}

/** policyView: each flatnet node's policies (which pods they select, hits) and Services (endpoints, connections). */
export async function policyView(src: ClusterSource, snap: ClusterSnapshot): Promise<PolicyServiceView> {
  const nodes = await Promise.all(snap.nodes.filter((n) => n.kind === 'flatnet').map(async (n) => {
    if (!n.up) return { node: n.name, up: false, error: n.error, policies: [], services: [] };
    try {
      const [policies, services] = await Promise.all([src.call(n.name, 'show', { what: 'policy' }), src.call(n.name, 'show', { what: 'services' })]);
      return { node: n.name, up: true, error: null, policies: policies as PolicyRow[], services: services as ServiceRow[] };
    } catch (e) {
      return { node: n.name, up: false, error: (e as Error).message, policies: [], services: [] };
    }
  }));
  return { nodes };
}
