/**
 * The cluster drawn as SVG: one box per node (its identity, host TAP or kernel devices, the
 * switch, its pods on their veths), the underlay segment under them, and the VXLAN tunnels between
 * VTEPs as arcs above, each labelled with its live packet and bit rates. A node that drops frames
 * is outlined red with its drop rate; a node that is down is greyed and says why. The layout is
 * fixed by the cluster's shape (nodes left to right, pods inside), so that a node keeps its place
 * from one second to the next.
 */

import type { ClusterSnapshot, NodeInfo, PodInfo, TunnelInfo } from '../model.js';
import { s, si } from './dom.js';

export type Selection =
  | { readonly type: 'pod'; readonly node: string; readonly pod: string }
  | { readonly type: 'node'; readonly node: string }
  | { readonly type: 'tunnel'; readonly a: string; readonly b: string };

/** What the packet-path view lays over the topology. */
export interface Highlight {
  readonly pods: ReadonlySet<string>;
  readonly nodes: ReadonlySet<string>;
  readonly tunnel: readonly [string, string] | null;
  /** The node where the packet was dropped, and why. */
  readonly drop: { readonly node: string; readonly label: string } | null;
}

const POD_W = 146, POD_H = 74, POD_GAP = 12, PAD = 14, NODE_GAP = 56, HEADER_H = 96, SWITCH_H = 34, TOP = 190;

interface Placed { node: NodeInfo; x: number; w: number; h: number }

function place(nodes: readonly NodeInfo[]): Placed[] {
  let x = 20;
  return nodes.map((node) => {
    const pods = Math.max(1, node.pods.length);
    const w = Math.max(300, pods * (POD_W + POD_GAP) - POD_GAP + 2 * PAD);
    const h = HEADER_H + 14 + SWITCH_H + 44 + POD_H + PAD;
    const p = { node, x, w, h };
    x += w + NODE_GAP;
    return p;
  });
}

function rateText(t: TunnelInfo): string {
  const dir = (r: TunnelInfo['ab']): string => (r === null ? '-' : `${si(r.pps, 'pps')} ${si(r.bps, 'b/s')}`);
  return `${t.a}→${t.b} ${dir(t.ab)} · ${t.b}→${t.a} ${dir(t.ba)}`;
}

/** drawCluster: the whole picture; `onSelect` is called with what was clicked. */
export function drawCluster(snap: ClusterSnapshot, selected: Selection | null, onSelect: (sel: Selection) => void, hl: Highlight | null = null): SVGSVGElement {
  const placed = place(snap.nodes);
  const width = Math.max(800, placed.reduce((m, p) => Math.max(m, p.x + p.w), 0) + 20);
  const nodeH = placed.reduce((m, p) => Math.max(m, p.h), 0);
  const busY = TOP + nodeH + 46;
  const svg = s('svg', { id: 'topology', viewBox: `0 0 ${width} ${busY + 50}`, width, height: busY + 50, role: 'img', 'aria-label': 'cluster topology' });
  const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' })));
  svg.append(defs);

  // The underlay: one L2 segment (the lab's bridge), every node's eth0 on it.
  svg.append(s('line', { x1: 10, y1: busY, x2: width - 10, y2: busY, class: 'underlay' }));
  svg.append(s('text', { x: 14, y: busY + 20, class: 'label muted' }, 'underlay (UDP/IPv4, MTU ' + String(snap.nodes.find((n) => n.underlayMtu !== null)?.underlayMtu ?? '?') + ')'));

  const vtepX = (name: string): number | null => {
    const p = placed.find((q) => q.node.name === name);
    return p === undefined ? null : p.x + p.w / 2;
  };
  // Tunnels: arcs between VTEPs above the nodes; the higher the arc, the farther apart.
  snap.tunnels.forEach((t, i) => {
    const xa = vtepX(t.a), xb = vtepX(t.b);
    if (xa === null || xb === null) return;
    const up = snap.nodes.find((n) => n.name === t.a)?.up === true && snap.nodes.find((n) => n.name === t.b)?.up === true;
    const pps = (t.ab?.pps ?? 0) + (t.ba?.pps ?? 0);
    const bps = (t.ab?.bps ?? 0) + (t.ba?.bps ?? 0);
    const span = Math.abs(xb - xa);
    const lift = Math.min(TOP - 24, 40 + span / 5 + (i % 3) * 8);
    const y0 = TOP;
    const d = `M${xa},${y0} C${xa},${y0 - lift} ${xb},${y0 - lift} ${xb},${y0}`;
    const isSel = selected?.type === 'tunnel' && selected.a === t.a && selected.b === t.b;
    const onPath = hl?.tunnel !== null && hl?.tunnel !== undefined && [t.a, t.b].sort().join() === [...hl.tunnel].sort().join();
    const widthPx = 2 + Math.min(8, Math.log10(1 + bps / 1000));
    const g = s('g', { class: `tunnel${pps > 0 ? ' active' : ''}${up ? '' : ' down'}${isSel ? ' selected' : ''}${onPath ? ' onpath' : ''}`, 'data-tunnel': `${t.a}-${t.b}`, 'data-pps': pps.toFixed(1), onclick: () => onSelect({ type: 'tunnel', a: t.a, b: t.b }) },
      s('path', { d, class: 'tunnel-hit' }),
      s('path', { d, class: 'tunnel-line', 'stroke-width': widthPx.toFixed(1) }),
      s('text', { x: (xa + xb) / 2, y: y0 - lift * 0.75 - 4, class: 'tunnel-label', 'text-anchor': 'middle' }, `VXLAN vni ${t.vni} · ${si(pps, 'pps')} · ${si(bps, 'b/s')}`),
      s('title', {}, rateText(t)));
    svg.append(g);
  });

  for (const p of placed) svg.append(drawNode(p, nodeH, busY, selected, onSelect, hl));
  return svg;
}

function drawNode(p: Placed, nodeH: number, busY: number, selected: Selection | null, onSelect: (sel: Selection) => void, hl: Highlight | null): SVGGElement {
  const n = p.node;
  const dropping = n.up && n.dropRate > 0;
  const dropped = hl?.drop?.node === n.name;
  const cls = ['node', n.kind, n.up ? 'up' : 'down', dropping ? 'dropping' : '', selected?.type === 'node' && selected.node === n.name ? 'selected' : '', hl?.nodes.has(n.name) ? 'onpath' : '', dropped ? 'dropsite' : ''].filter((c) => c !== '').join(' ');
  const g = s('g', { class: cls, 'data-node': n.name, 'data-up': String(n.up), transform: `translate(${p.x},${TOP})` });
  g.append(s('rect', { x: 0, y: 0, width: p.w, height: nodeH, rx: 10, class: 'node-box', onclick: () => onSelect({ type: 'node', node: n.name }) }));
  const line = (y: number, text: string, c = 'label'): SVGTextElement => s('text', { x: PAD, y, class: c }, text);
  g.append(s('text', { x: PAD, y: 24, class: 'node-title', onclick: () => onSelect({ type: 'node', node: n.name }) }, `${n.name}`),
    s('text', { x: PAD + 14 + n.name.length * 11, y: 24, class: `badge ${n.kind}` }, n.kind === 'flatnet' ? 'flatnet' : 'kernel VXLAN'));
  g.append(s('text', { x: p.w - PAD, y: 24, class: `state ${n.up ? 'up' : 'down'}`, 'text-anchor': 'end', 'data-state': n.up ? 'up' : 'down' }, n.up ? '● up' : '● DOWN'));
  g.append(line(44, `underlay ${n.underlayIp ?? '?'}${n.underlayMac !== null ? `  ${n.underlayMac}` : ''}`));
  g.append(line(62, `VTEP ${n.vtepIp ?? '?'}  ${n.vtepMac ?? ''}`));
  g.append(line(80, `pod CIDR ${n.podCidr ?? '?'}  ·  MTU ${n.underlayMtu ?? '?'} → ${n.podMtu ?? '?'}`));
  if (!n.up) {
    const why = n.error ?? 'down';
    const room = Math.floor(p.w / 7.2);
    g.append(s('text', { x: PAD, y: HEADER_H + 4, class: 'down-reason' }, why.length > room ? `${why.slice(0, room - 1)}…` : why, s('title', {}, why)));
  }
  if (dropping || dropped) {
    const text = dropped ? `✖ ${hl!.drop!.label}` : `${si(n.dropRate)} drops/s: ${n.drops.filter((d) => d.perSecond > 0).map((d) => d.reason).join(', ')}`;
    g.append(s('text', { x: PAD, y: HEADER_H + 4, class: 'drop-text', 'data-drops': n.name }, text.slice(0, Math.floor(p.w / 6.5))));
  }

  // The switch (flatnet) or the kernel's devices, with the host TAP / bridge and the VTEP.
  const swY = HEADER_H + 14;
  const swLabel = n.kind === 'flatnet' ? `flatnet switch · host TAP ${n.host?.name ?? '?'}` : `kernel ${n.vxlanDev ?? 'vxlan'} + bridge ${n.host?.name ?? 'cni0'}`;
  g.append(s('rect', { x: PAD, y: swY, width: p.w - 2 * PAD, height: SWITCH_H, rx: 6, class: 'switch' }));
  g.append(s('text', { x: PAD + 8, y: swY + 21, class: 'label switch-label' }, swLabel));
  // The VTEP on top (tunnels end there) and eth0 below (to the underlay).
  g.append(s('line', { x1: p.w / 2, y1: 0, x2: p.w / 2, y2: -6, class: 'vtep-stub' }));
  g.append(s('circle', { cx: p.w / 2, cy: 0, r: 6, class: 'vtep' }, s('title', {}, `VTEP ${n.vtepMac ?? ''} on ${n.underlayIp ?? ''}`)));
  g.append(s('line', { x1: p.w / 2, y1: nodeH, x2: p.w / 2, y2: busY - TOP, class: 'eth0' }));
  g.append(s('text', { x: p.w / 2 + 6, y: nodeH + 18, class: 'label muted' }, `eth0 ${n.underlayIp ?? ''}`));

  const podY = swY + SWITCH_H + 44;
  n.pods.forEach((pod, i) => {
    const x = PAD + i * (POD_W + POD_GAP);
    g.append(s('line', { x1: x + POD_W / 2, y1: swY + SWITCH_H, x2: x + POD_W / 2, y2: podY, class: 'veth' }));
    g.append(s('text', { x: x + POD_W / 2 + 4, y: swY + SWITCH_H + 26, class: 'label tiny' }, pod.hostIf ?? ''));
    g.append(drawPod(pod, n, x, podY, selected, onSelect, hl));
  });
  return g;
}

function drawPod(pod: PodInfo, n: NodeInfo, x: number, y: number, selected: Selection | null, onSelect: (sel: Selection) => void, hl: Highlight | null): SVGGElement {
  const sel = selected?.type === 'pod' && selected.pod === pod.name;
  const kd = (pod.kernelDrops ?? 0) > 0;
  const g = s('g', { class: `pod${sel ? ' selected' : ''}${hl?.pods.has(pod.name) ? ' onpath' : ''}${kd ? ' kdrops' : ''}`, 'data-pod': pod.name, transform: `translate(${x},${y})`, onclick: () => onSelect({ type: 'pod', node: n.name, pod: pod.name }) },
    s('rect', { width: POD_W, height: POD_H, rx: 8, class: 'pod-box' }),
    s('text', { x: 8, y: 20, class: 'pod-name' }, pod.name),
    s('text', { x: 8, y: 38, class: 'label' }, pod.ip),
    s('text', { x: 8, y: 54, class: 'label tiny' }, pod.mac ?? ''),
    s('text', { x: 8, y: 68, class: 'label tiny' }, pod.txPackets === null ? 'eth0' : `sent ${si(pod.rxPackets ?? 0)} · got ${si(pod.txPackets)}`));
  return g;
}
