/**
 * The views other than the cluster picture: a node's pipeline, the encapsulation of a packet
 * between two pods, a packet's path, and the policies and Services. Each one asks the API (which
 * asks the daemons) and draws the answer; none computes what the daemons decide.
 */

import type { ClusterSnapshot, EncapView, HeaderInfo, PathView, PipelineView, TunnelInfo } from '../model.js';
import { api, count, h, replace, select, si } from './dom.js';
import { drawCluster, type Highlight, type Selection } from './topology.js';

interface PolicyRow { namespace: string; name: string; types: string[]; selects: string[]; allowed: number; denied: number; rules: { rule: string; hits: number }[] }
interface ServiceRow { service: string; frontend: string; protocol: string; scheduler: string; backends: { address: string; node: string | null; hits: number }[]; empty: string | null; rejected: number }
interface PolicyServiceView { nodes: { node: string; up: boolean; error: string | null; policies: PolicyRow[]; services: ServiceRow[] }[] }

const pods = (snap: ClusterSnapshot): [string, string][] => snap.nodes.flatMap((n) => n.pods.map((p) => [p.name, `${p.name} (${n.name}${n.kind === 'kernel' ? ', kernel' : ''}) ${p.ip}`] as [string, string]));
const flatnetPods = (snap: ClusterSnapshot): [string, string][] => snap.nodes.filter((n) => n.kind === 'flatnet').flatMap((n) => n.pods.map((p) => [p.name, `${p.name} (${n.name}) ${p.ip}`] as [string, string]));
const errorBox = (e: unknown): HTMLElement => h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));

// ---------------------------------------------------------------------------------------
// Pipeline

export async function drawPipeline(root: HTMLElement, snap: ClusterSnapshot, node: string | null, onNode: (n: string) => void): Promise<void> {
  const nodes = snap.nodes.filter((n) => n.kind === 'flatnet').map((n) => [n.name, `${n.name}${n.up ? '' : ' (down)'}`] as [string, string]);
  const name = node ?? nodes[0]?.[0] ?? null;
  const bar = h('div', { class: 'controls' }, h('label', {}, 'node ', select('pipeline-node', nodes, name, onNode)));
  if (name === null) { replace(root, bar, h('p', {}, 'No flatnet node.')); return; }
  let v: PipelineView;
  try {
    v = await api<PipelineView>(`/api/nodes/${encodeURIComponent(name)}/pipeline`);
  } catch (e) {
    replace(root, bar, errorBox(e));
    return;
  }
  const stages = h('div', { class: 'stages' }, ...v.stages.map((st, i) => h('div', { class: `stage${st.drops.some((d) => d.perSecond > 0) ? ' dropping' : st.drops.length > 0 ? ' hasdrops' : ''}`, 'data-stage': st.stage },
    h('div', { class: 'stage-title' }, `${i + 1}. ${st.stage}`),
    h('div', { class: 'stage-summary' }, st.summary),
    st.counters.length === 0 ? null : h('table', { class: 'kv' }, ...st.counters.map((c) => h('tr', {}, h('td', {}, c.name), h('td', { class: 'num', 'data-counter': c.name }, count(c.value))))),
    st.drops.length === 0 ? h('div', { class: 'nodrops' }, 'no drops') : h('table', { class: 'drops' }, ...st.drops.map((d) => h('tr', { title: d.help, 'data-drop': d.reason },
      h('td', {}, d.reason), h('td', { class: 'num' }, count(d.count)), h('td', { class: 'num rate' }, d.perSecond > 0 ? `+${si(d.perSecond)}/s` : '')))),
  )));
  const ports = h('table', { class: 'grid', id: 'ports' },
    h('tr', {}, ...['port', 'role', 'backend', 'rx packets', 'rx pps', 'tx packets', 'tx pps', 'rx err', 'tx err', 'tx dropped', 'kernel drops'].map((c) => h('th', {}, c))),
    ...v.ports.map((p) => h('tr', { 'data-port': p.name }, h('td', {}, p.name), h('td', {}, p.role), h('td', {}, p.backend),
      h('td', { class: 'num' }, count(p.rxPackets)), h('td', { class: 'num' }, si(p.rxPps)), h('td', { class: 'num' }, count(p.txPackets)), h('td', { class: 'num' }, si(p.txPps)),
      h('td', { class: 'num' }, count(p.rxErrors)), h('td', { class: 'num' }, count(p.txErrors)), h('td', { class: `num${p.txDropped > 0 ? ' bad' : ''}` }, count(p.txDropped)), h('td', { class: `num${p.kernelDrops > 0 ? ' bad' : ''}` }, count(p.kernelDrops)))));
  replace(root, bar, v.up ? null : h('p', { class: 'error' }, `${name} is down: ${v.error ?? ''}`), h('h2', {}, `Pipeline of ${name}`), stages, h('h3', {}, 'Ports (packets the switch received from / sent to each)'), ports);
}

// ---------------------------------------------------------------------------------------
// Encapsulation

export interface EncapChoice { from: string | null; to: string | null; proto: string; hex: string; flow: string }

function byteBar(v: EncapView): HTMLElement {
  const total = v.frame?.length ?? 1;
  return h('div', { class: 'bytebar' }, ...v.headers.map((hd) => h('div', {
    class: `seg ${hd.layer}${hd.overhead ? ' overhead' : ''}`, style: null, 'data-layer': hd.layer, title: `${hd.title}: bytes ${hd.offset}-${hd.offset + hd.length - 1}`,
    'data-w': String(Math.max(2, (100 * hd.length) / total)),
  }, h('span', {}, `${hd.title} ${hd.length}`))));
}

function headerTable(hd: HeaderInfo): HTMLElement {
  return h('div', { class: `header-card ${hd.layer}${hd.overhead ? ' overhead' : ''}`, 'data-layer': hd.layer },
    h('div', { class: 'header-title' }, `${hd.title}`, h('span', { class: 'muted' }, ` bytes ${hd.offset}–${hd.offset + hd.length - 1} (${hd.length})${hd.overhead ? ' · overhead' : ''}`)),
    h('table', { class: 'fields' }, h('tr', {}, h('th', {}, 'offset'), h('th', {}, 'len'), h('th', {}, 'field'), h('th', {}, 'value')),
      ...hd.fields.map((f) => h('tr', { 'data-field': f.name }, h('td', { class: 'num' }, f.offset), h('td', { class: 'num' }, f.length), h('td', {}, f.name), h('td', { class: 'value' }, f.value, f.note === null ? null : h('span', { class: 'note' }, ` ${f.note}`))))));
}

export async function drawEncap(root: HTMLElement, snap: ClusterSnapshot, c: EncapChoice, onChange: (c: EncapChoice) => void): Promise<void> {
  const src = flatnetPods(snap);
  const all = pods(snap);
  const from = c.from ?? src[0]?.[0] ?? null;
  const fromNode = snap.nodes.find((n) => n.pods.some((p) => p.name === from));
  const to = c.to ?? all.find(([p]) => !fromNode?.pods.some((q) => q.name === p))?.[0] ?? null;
  const flowInput = h('input', { id: 'encap-flow', type: 'text', placeholder: 'or a packet: udp to 10.244.2.10:53 len 200', value: c.flow, size: 30 });
  const hexInput = h('input', { id: 'encap-hex', type: 'text', placeholder: 'or a captured frame, hex (Ethernet first)', value: c.hex, size: 40 });
  const bar = h('div', { class: 'controls' },
    h('label', {}, 'from ', select('encap-from', src, from, (v) => onChange({ ...c, from: v, hex: '' }))),
    h('label', {}, 'to ', select('encap-to', all, to, (v) => onChange({ ...c, to: v, hex: '', flow: '' }))),
    h('label', {}, 'protocol ', select('encap-proto', [['icmp', 'ICMP echo'], ['udp', 'UDP'], ['tcp', 'TCP SYN']], c.proto, (v) => onChange({ ...c, proto: v }))),
    flowInput, h('button', { id: 'encap-flow-go', onclick: () => onChange({ ...c, flow: flowInput.value.trim(), hex: '' }) }, 'trace'),
    hexInput, h('button', { id: 'encap-hex-go', onclick: () => onChange({ ...c, hex: hexInput.value.replace(/[^0-9a-fA-F]/g, ''), flow: '' }) }, 'decode frame'));
  if (from === null || to === null) { replace(root, bar, h('p', {}, 'Needs a pod on a flatnet node and a destination.')); return; }
  replace(root, bar, h('p', { class: 'muted' }, 'tracing…'));
  let v: EncapView;
  try {
    const q = c.hex !== '' ? `hex=${c.hex}` : c.flow !== '' ? `from=${encodeURIComponent(from)}&flow=${encodeURIComponent(c.flow)}` : `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&proto=${c.proto}`;
    v = await api<EncapView>(`/api/encap?${q}`);
  } catch (e) {
    replace(root, bar, errorBox(e));
    return;
  }
  const vx = v.headers.find((x) => x.layer === 'vxlan');
  const oip = v.headers.find((x) => x.layer === 'outer-ipv4');
  const summary = h('div', { class: 'encap-summary' },
    h('div', { class: 'big', id: 'encap-overhead' }, `${v.overhead} bytes`, h('span', {}, ' of VXLAN overhead')),
    h('div', {}, `VNI `, h('b', { id: 'encap-vni' }, vx?.fields.find((f) => f.name === 'VNI')?.value ?? '-'), ` · outer ${oip?.fields.find((f) => f.name === 'source')?.value ?? '?'} → `, h('b', { id: 'encap-peer' }, oip?.fields.find((f) => f.name === 'destination')?.value ?? '-'),
      ` · UDP ${v.headers.find((x) => x.layer === 'outer-udp')?.fields.find((f) => f.name === 'destination port')?.value ?? '-'} · frame ${v.frame?.length ?? 0} bytes · outcome `, h('b', {}, v.outcome)));
  const probe = v.mtu.probe;
  const mtu = v.frame?.kind === 'captured' || probe.flow === '' ? null : h('div', { class: 'mtu', id: 'encap-mtu' },
    h('h3', {}, 'MTU arithmetic'),
    h('div', { class: 'mtu-eq' }, h('span', { class: 'box' }, `underlay MTU ${v.mtu.underlayMtu}`), ' − ', h('span', { class: 'box overhead' }, `${v.mtu.overhead} (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14)`), ' = ', h('span', { class: 'box' }, `pod MTU ${v.mtu.podMtu}`)),
    h('p', { class: 'muted' }, `The outer Ethernet header (14) is not part of the underlay's IP MTU; the inner Ethernet header (14) is carried inside it: 20 + 8 + 8 + 14 = 50 bytes of headers per packet, so a pod's IP packet may be at most ${v.mtu.podMtu} bytes.`),
    h('p', { id: 'encap-probe' }, `A DF packet of ${v.mtu.underlayMtu} bytes (`, h('code', {}, probe.flow), `), traced by the node: `, h('b', { class: probe.outcome === 'drop' ? 'bad' : '' }, probe.outcome === 'drop' ? `drop ${probe.drop ?? ''}` : probe.outcome), ` — ${probe.verdict}`, probe.reply === null ? '' : `; ${probe.reply}`));
  replace(root, bar, h('h2', {}, v.frame?.kind === 'captured' ? `A captured frame, traced on ${v.node}'s overlay` : `${v.from} → ${v.to}: the frame as it leaves ${v.node}${v.frame === null ? ' (none: see the outcome)' : ''}`), h('p', { class: 'muted' }, `trace: `, h('code', {}, v.flow)),
    summary, byteBar(v), h('div', { class: 'headers' }, ...v.headers.map(headerTable)), mtu,
    v.notes.length === 0 ? null : h('ul', { class: 'notes' }, ...v.notes.map((n) => h('li', {}, n))));
  for (const seg of root.querySelectorAll<HTMLElement>('.bytebar .seg')) seg.style.flexGrow = seg.dataset['w'] ?? '1';
}

// ---------------------------------------------------------------------------------------
// Packet path

export interface PathChoice { from: string | null; to: string | null; proto: string; src: string }

export async function drawPath(root: HTMLElement, snap: ClusterSnapshot, c: PathChoice, onChange: (c: PathChoice) => void, onSelect: (s: Selection) => void): Promise<void> {
  const src = flatnetPods(snap);
  const all = pods(snap);
  const from = c.from ?? src[0]?.[0] ?? null;
  const fromNode = snap.nodes.find((n) => n.pods.some((p) => p.name === from));
  const to = c.to ?? all.find(([p]) => !fromNode?.pods.some((q) => q.name === p))?.[0] ?? null;
  const spoof = h('input', { id: 'path-src', type: 'text', placeholder: "source IP (blank: the pod's own)", value: c.src, size: 22 });
  const bar = h('div', { class: 'controls' },
    h('label', {}, 'from ', select('path-from', src, from, (v) => onChange({ ...c, from: v }))),
    h('label', {}, 'to ', select('path-to', all, to, (v) => onChange({ ...c, to: v }))),
    h('label', {}, 'protocol ', select('path-proto', [['icmp', 'ICMP echo'], ['udp', 'UDP'], ['tcp', 'TCP SYN']], c.proto, (v) => onChange({ ...c, proto: v }))),
    h('label', {}, 'spoof ', spoof), h('button', { id: 'path-go', onclick: () => onChange({ ...c, src: spoof.value.trim() }) }, 'trace'));
  if (from === null || to === null) { replace(root, bar, h('p', {}, 'Needs a pod on a flatnet node and a destination.')); return; }
  let v: PathView;
  try {
    v = await api<PathView>(`/api/path?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&proto=${c.proto}${c.src !== '' ? `&src=${encodeURIComponent(c.src)}` : ''}`);
  } catch (e) {
    replace(root, bar, errorBox(e));
    return;
  }
  const nodesOnPath = new Set(v.hops.map((x) => x.node).filter((x): x is string => x !== null));
  const vteps = [...new Set(v.hops.filter((x) => x.kind === 'vtep' || x.kind === 'kernel').map((x) => x.node).filter((x): x is string => x !== null))];
  const hl: Highlight = {
    pods: new Set(v.hops.filter((x) => x.kind === 'pod').map((x) => x.label)), nodes: nodesOnPath,
    tunnel: vteps.length === 2 ? [vteps[0]!, vteps[1]!] : null,
    drop: v.drop === null ? null : { node: v.drop.node, label: `${v.drop.stage}: ${v.drop.reason}` },
  };
  const chain = h('ol', { class: 'hops', id: 'hops' }, ...v.hops.map((x) => h('li', { class: `hop hop-${x.kind}${x.ok ? '' : ' failed'}`, 'data-kind': x.kind, 'data-label': x.label },
    h('div', { class: 'hop-head' }, h('span', { class: 'hop-kind' }, x.kind), ' ', h('b', {}, x.label), x.node === null ? null : h('span', { class: 'muted' }, ` @ ${x.node}`)),
    x.verdict === null ? null : h('div', { class: `verdict${x.ok ? '' : ' bad'}` }, `→ ${x.verdict}`),
    h('pre', { class: 'hop-detail' }, x.detail))));
  const outcome = h('div', { class: `outcome ${v.outcome}`, id: 'path-outcome' }, v.drop === null ? `outcome: ${v.outcome}` : `dropped at ${v.drop.node} ${v.drop.stage}: ${v.drop.reason} — ${v.drop.help}`);
  replace(root, bar, h('p', { class: 'muted' }, 'trace: ', h('code', {}, v.flow)), outcome, h('div', { class: 'topo-wrap' }, drawCluster(snap, null, onSelect, hl)), chain);
}

// ---------------------------------------------------------------------------------------
// Policies and Services

export async function drawPolicies(root: HTMLElement): Promise<void> {
  let v: PolicyServiceView;
  try {
    v = await api<PolicyServiceView>('/api/policies');
  } catch (e) {
    replace(root, errorBox(e));
    return;
  }
  const sections = v.nodes.map((n) => h('section', { class: 'node-section', 'data-node': n.node },
    h('h3', {}, `${n.node}`, n.up ? null : h('span', { class: 'bad' }, ` down: ${n.error ?? ''}`)),
    n.policies.length === 0 ? h('p', { class: 'muted' }, 'No NetworkPolicy installed.') : h('table', { class: 'grid policies' },
      h('tr', {}, ...['policy', 'types', 'selects', 'allowed', 'denied', 'rule hits'].map((c) => h('th', {}, c))),
      ...n.policies.map((p) => h('tr', { 'data-policy': `${p.namespace}/${p.name}` }, h('td', {}, `${p.namespace}/${p.name}`), h('td', {}, p.types.join(', ')),
        h('td', {}, p.selects.length === 0 ? h('span', { class: 'muted' }, 'no pod here') : p.selects.join(', ')), h('td', { class: 'num' }, count(p.allowed)), h('td', { class: `num${p.denied > 0 ? ' bad' : ''}` }, count(p.denied)),
        h('td', {}, p.rules.map((r) => `${r.rule}: ${r.hits}`).join(', '))))),
    n.services.length === 0 ? h('p', { class: 'muted' }, 'No Service installed.') : h('table', { class: 'grid services' },
      h('tr', {}, ...['service', 'ClusterIP:port', 'proto', 'endpoints (connections)', 'rejected'].map((c) => h('th', {}, c))),
      ...n.services.map((sv) => h('tr', { 'data-service': sv.service }, h('td', {}, sv.service), h('td', {}, sv.frontend), h('td', {}, sv.protocol),
        h('td', {}, sv.backends.length === 0 ? h('span', { class: 'bad' }, sv.empty ?? 'none') : h('ul', { class: 'plain' }, ...sv.backends.map((b) => h('li', {}, `${b.address}${b.node === null ? '' : ` (${b.node})`}: ${b.hits}`)))),
        h('td', { class: 'num' }, count(sv.rejected)))))));
  replace(root, h('h2', {}, 'NetworkPolicies and Services, as each node enforces them'), ...sections);
}

export function tunnelDetails(t: TunnelInfo): HTMLElement {
  const dir = (label: string, r: TunnelInfo['ab']): HTMLElement => h('tr', {}, h('td', {}, label), h('td', { class: 'num' }, r === null ? '-' : si(r.pps, 'pps')), h('td', { class: 'num' }, r === null ? '-' : si(r.bps, 'b/s')), h('td', { class: 'num' }, r === null ? '-' : count(r.packets)), h('td', {}, r?.countedBy ?? ''));
  return h('div', { id: 'tunnel-details' }, h('h2', {}, `Tunnel ${t.a} ⇄ ${t.b}`),
    h('p', {}, `VXLAN VNI ${t.vni}, UDP port ${t.port}, ${t.aUnderlay} ⇄ ${t.bUnderlay}`),
    h('table', { class: 'grid' }, h('tr', {}, ...['direction', 'rate', 'bit rate', 'packets', 'counted by'].map((c) => h('th', {}, c))), dir(`${t.a} → ${t.b}`, t.ab), dir(`${t.b} → ${t.a}`, t.ba)));
}
