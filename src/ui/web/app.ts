/**
 * The visualizer's page: five views over one live cluster snapshot. The snapshot arrives by
 * Server-Sent Events (/api/events) once a second; the cluster view redraws from it, the others
 * ask their own API when opened, when a choice changes, and (pipeline, policies) on each update.
 * If the event stream stops, the status dot turns red and EventSource reconnects by itself.
 */

import type { ClusterSnapshot, NodeInfo, PodInfo } from '../model.js';
import { count, h, replace, si } from './dom.js';
import { drawCluster, type Selection } from './topology.js';
import { drawEncap, drawPath, drawPipeline, drawPolicies, tunnelDetails, type EncapChoice, type PathChoice } from './views.js';

type View = 'cluster' | 'pipeline' | 'encap' | 'path' | 'policies';
const VIEWS: readonly View[] = ['cluster', 'pipeline', 'encap', 'path', 'policies'];

const state = {
  view: 'cluster' as View,
  snap: null as ClusterSnapshot | null,
  selected: null as Selection | null,
  pipelineNode: null as string | null,
  encap: { from: null, to: null, proto: 'icmp', hex: '', flow: '' } as EncapChoice,
  path: { from: null, to: null, proto: 'icmp', src: '' } as PathChoice,
  /** A view that asks the API draws again only after its last answer came back. */
  busy: false,
  /** The view drawn last (a trace view is drawn once when opened, then on request). */
  drawn: null as View | null,
};

const $ = (id: string): HTMLElement => document.getElementById(id)!;

function podDetails(n: NodeInfo, p: PodInfo): HTMLElement {
  const row = (k: string, v: string | number | null, id?: string): HTMLElement => h('tr', {}, h('th', {}, k), h('td', id === undefined ? {} : { id }, v === null ? '-' : String(v)));
  return h('div', { id: 'pod-details', 'data-pod': p.name },
    h('h2', {}, p.name),
    h('table', { class: 'kv' },
      row('namespace', p.namespace), row('node', `${n.name} (${n.kind})`), row('IP', p.ip, 'pod-ip'), row('MAC', p.mac, 'pod-mac'),
      row('veth (host end)', p.hostIf, 'pod-veth'), row('MTU', p.mtu, 'pod-mtu'), row('gateway / VTEP', `${n.vtepIp ?? '?'} ${n.vtepMac ?? ''}`),
      ...(p.source === 'daemon' ? [
        row('from the pod', `${count(p.rxPackets)} packets, ${si(p.rxBytes ?? 0, 'B')}`), row('to the pod', `${count(p.txPackets)} packets, ${si(p.txBytes ?? 0, 'B')}`),
        row('kernel drops', p.kernelDrops),
      ] : [row('counters', n.kind === 'kernel' ? "a kernel node's pod: from the lab's plan (no control socket)" : "from the lab's plan: the node's daemon does not answer")])),
    h('p', { class: 'muted' }, 'The pod\'s eth0 is one end of a veth pair; the other end, in the node\'s namespace, is a port of the switch.'));
}

function nodeDetails(n: NodeInfo): HTMLElement {
  const row = (k: string, v: string | number | null | undefined): HTMLElement => h('tr', {}, h('th', {}, k), h('td', {}, v === null || v === undefined ? '-' : String(v)));
  return h('div', { id: 'node-details', 'data-node': n.name },
    h('h2', {}, `${n.name} `, h('span', { class: `state ${n.up ? 'up' : 'down'}` }, n.up ? 'up' : 'DOWN')),
    n.up ? null : h('p', { class: 'error' }, n.error ?? ''),
    h('table', { class: 'kv' }, row('kind', n.kind === 'flatnet' ? 'flatnet (userspace VXLAN)' : "kernel VXLAN (Linux's vxlan driver)"), row('underlay', `${n.underlayIp ?? '?'} ${n.underlayMac ?? ''}`),
      row('VTEP', `${n.vtepIp ?? '?'} ${n.vtepMac ?? ''}`), row('pod CIDR', n.podCidr), row('VNI / port', `${n.vni ?? '?'} / ${n.port ?? '?'}`), row('mode', n.mode),
      row('MTU', `${n.underlayMtu ?? '?'} underlay → ${n.podMtu ?? '?'} pods`), row(n.kind === 'flatnet' ? 'host TAP' : 'devices', n.kind === 'flatnet' ? `${n.host?.name ?? '?'} ${n.host?.mac ?? ''}` : `${n.vxlanDev ?? '?'}, ${n.host?.name ?? '?'}`),
      row('control socket', n.socket), row('lease', n.lease === null ? null : `${n.lease.subnet} (${n.lease.kind})`)),
    n.drops.length === 0 ? (n.counters === null ? null : h('p', {}, 'No drops.')) : h('table', { class: 'grid' }, h('tr', {}, h('th', {}, 'drop reason'), h('th', {}, 'stage'), h('th', {}, 'count'), h('th', {}, 'now')),
      ...n.drops.map((d) => h('tr', { title: d.help }, h('td', {}, d.reason), h('td', {}, d.stage), h('td', { class: 'num' }, count(d.count)), h('td', { class: 'num' }, d.perSecond > 0 ? `${si(d.perSecond)}/s` : '')))));
}

function drawDetails(): void {
  const aside = $('details');
  const snap = state.snap;
  const sel = state.selected;
  if (snap === null || sel === null) { replace(aside, h('p', { class: 'hint' }, 'Click a pod, a node or a tunnel for its details.')); return; }
  if (sel.type === 'pod') {
    const n = snap.nodes.find((x) => x.name === sel.node);
    const p = n?.pods.find((x) => x.name === sel.pod);
    replace(aside, n === undefined || p === undefined ? h('p', {}, `${sel.pod} is gone`) : podDetails(n, p));
  } else if (sel.type === 'node') {
    const n = snap.nodes.find((x) => x.name === sel.node);
    replace(aside, n === undefined ? h('p', {}, `${sel.node} is gone`) : nodeDetails(n));
  } else {
    const t = snap.tunnels.find((x) => x.a === sel.a && x.b === sel.b);
    replace(aside, t === undefined ? h('p', {}, 'that tunnel is gone') : tunnelDetails(t));
  }
}

function onSelect(sel: Selection): void {
  state.selected = sel;
  if (state.view === 'cluster') drawCluster_();
  drawDetails();
}

function drawCluster_(): void {
  const snap = state.snap!;
  const summary = h('div', { class: 'summary' },
    `${snap.nodes.length} nodes (${snap.nodes.filter((n) => n.up).length} up) · ${snap.nodes.reduce((k, n) => k + n.pods.length, 0)} pods · ${snap.tunnels.length} tunnels`,
    snap.store === null ? null : h('span', { class: snap.store.ok ? 'muted' : 'bad' }, snap.store.ok ? ` · etcd: ${snap.store.leases.length} leases (rev ${snap.store.revision ?? '?'})` : ` · etcd: ${snap.store.error ?? 'unreachable'}`),
    snap.labPresent === false ? h('span', { class: 'bad', id: 'lab-gone' }, ' · the lab is gone (torn down)') : null);
  replace($('view'), summary, h('div', { class: 'topo-wrap' }, drawCluster(snap, state.selected, onSelect)));
}

async function drawView(): Promise<void> {
  const snap = state.snap;
  if (snap === null) return;
  const root = $('view');
  root.dataset['view'] = state.view;
  state.drawn = state.view;
  switch (state.view) {
    case 'cluster': drawCluster_(); break;
    case 'pipeline': await drawPipeline(root, snap, state.pipelineNode, (n) => { state.pipelineNode = n; void redraw(); }); break;
    case 'encap': await drawEncap(root, snap, state.encap, (c) => { state.encap = c; void redraw(); }); break;
    case 'path': await drawPath(root, snap, state.path, (c) => { state.path = c; void redraw(); }, onSelect); break;
    case 'policies': await drawPolicies(root); break;
  }
}

async function redraw(): Promise<void> {
  if (state.busy) return;
  state.busy = true;
  try {
    await drawView();
  } finally {
    state.busy = false;
  }
  drawDetails();
}

function onSnapshot(snap: ClusterSnapshot): void {
  state.snap = snap;
  $('source').textContent = `${snap.source} · ${new Date(snap.at).toLocaleTimeString()}`;
  $('live').className = 'dot live';
  document.body.dataset['updated'] = String(snap.at);
  // Encapsulation and path are traces on demand: they do not redraw every second.
  if (state.view === 'cluster' || state.view === 'pipeline' || state.view === 'policies' || state.drawn !== state.view) void redraw();
  else drawDetails();
}

function setView(v: View): void {
  state.view = v;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.classList.toggle('active', b.dataset['view'] === v);
  history.replaceState(null, '', `#${v}`);
  void redraw();
}

function start(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.addEventListener('click', () => setView(b.dataset['view'] as View));
  const fromHash = location.hash.slice(1) as View;
  if (VIEWS.includes(fromHash)) state.view = fromHash;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.classList.toggle('active', b.dataset['view'] === state.view);
  const es = new EventSource('/api/events');
  es.addEventListener('cluster', (e) => onSnapshot(JSON.parse((e as MessageEvent<string>).data) as ClusterSnapshot));
  es.addEventListener('error', () => { $('live').className = 'dot dead'; $('source').textContent = 'disconnected from flatnet ui: reconnecting…'; });
}

start();
