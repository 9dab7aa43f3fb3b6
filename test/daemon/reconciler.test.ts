// The reconciler against a fake data plane and a fake host: what it does to the switch for a
// given desired state, in which order, and that it does nothing when nothing differs.
import { beforeEach, describe, expect, it } from 'vitest';
import type { AttachedPort, DataPlane, OverlayAttach, Port } from '../../src/daemon/data-plane.js';
import type { DesiredState, NodeSpec, PeerSpec, PodSpec } from '../../src/daemon/desired.js';
import { parseConfig } from '../../src/daemon/config.js';
import { Producer, Sources } from '../../src/daemon/producers.js';
import { NO_CHANGES, Reconciler, describeChanges } from '../../src/daemon/reconciler.js';
import { checkPeer, checkPod } from '../../src/daemon/validate.js';
import { formatIpv4 } from '../../src/wire/addr.js';
import { FakeHost } from '../support/fake-host.js';

const cfg = parseConfig({
  node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', vtepMac: '0e:00:0a:f4:01:00',
  peers: [
    { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' },
    { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' },
  ],
  pods: [
    { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' },
    { name: 'b', interface: 'vb', ip: '10.244.1.11', mac: '02:00:00:00:01:0b' },
  ],
});
const node: NodeSpec = cfg;
const pod = (name: string, iface: string, ip: string, mac: string): PodSpec => checkPod(node, { name, interface: iface, ip, mac }, 'pod');
const peer = (name: string, underlay: string, podCidr: string, vtepMac: string): PeerSpec => checkPeer(node, { name, underlay, podCidr, vtepMac }, 'peer');
const state = (peers: readonly PeerSpec[], pods: readonly PodSpec[]): DesiredState => Sources.of(node, { peers, pods }).state;

/** Records every call, in order, as a short string. */
class FakeDataPlane implements DataPlane<AttachedPort> {
  readonly calls: string[] = [];
  private next = 0;
  readonly attached = new Map<number, string>();
  private add(what: string): AttachedPort {
    const id = this.next++;
    this.attached.set(id, what);
    return { id };
  }
  attachHost(_p: Port, _mac: number, name: string): AttachedPort { this.calls.push(`attachHost ${name}`); return this.add(name); }
  attachOverlay(_p: Port, a: OverlayAttach, name: string): AttachedPort { this.calls.push(`attachOverlay ${name} ${a.rx}/${a.tx}`); return this.add(name); }
  attachPod(p: Port, ip: number, _mac: number, name: string): AttachedPort { this.calls.push(`attachPod ${name} ${formatIpv4(ip)} on ${p.name}`); return this.add(name); }
  detach(id: number): void { this.calls.push(`detach ${this.attached.get(id)}`); this.attached.delete(id); }
  setPeers(specs: readonly { name: string }[]): void { this.calls.push(`setPeers ${specs.map((s) => s.name).join(',')}`); }
  watch(h: AttachedPort): void { this.calls.push(`watch ${this.attached.get(h.id)}`); }
  announceGateway(h?: AttachedPort | null): number { this.calls.push(`announce ${h === undefined || h === null ? 'all' : this.attached.get(h.id)}`); return 1; }
  start(): void { this.calls.push('start'); }
  stop(): void { this.calls.push('stop'); }
  take(): string[] { return this.calls.splice(0); }
}

describe('Reconciler', () => {
  let dp: FakeDataPlane, host: FakeHost, r: Reconciler<AttachedPort>;
  beforeEach(() => {
    dp = new FakeDataPlane();
    host = new FakeHost();
    r = new Reconciler(dp, host, 1450);
  });

  it('brings the node up the first time: host and overlay, peers, pods, then starts draining', () => {
    const c = r.reconcile(state(cfg.peers, cfg.pods));
    expect(dp.take()).toEqual([
      'attachHost flatnet0', 'attachOverlay vxlan:4789 udp/ip',
      'setPeers n2,n3',
      'attachPod a 10.244.1.10 on va', 'announce a', 'attachPod b 10.244.1.11 on vb', 'announce b',
      'start',
    ]);
    expect(c).toEqual({ podsAttached: ['a', 'b'], podsDetached: [], podsReplaced: [], peersAdded: ['n2', 'n3'], peersRemoved: [], peersChanged: [] });
    expect(r.portInfo).toEqual({ tap: 'off', overlay: { gso: false } });
  });

  it('does nothing at all when the same desired state is applied again', () => {
    const s = state(cfg.peers, cfg.pods);
    r.reconcile(s);
    dp.take();
    expect(r.reconcile(s)).toBe(NO_CHANGES);
    expect(r.reconcile(state(cfg.peers, cfg.pods))).toBe(NO_CHANGES); // equal by value, not by identity
    expect(dp.take()).toEqual([]);
    expect(host.opened.map((p) => p.name)).toEqual(['va', 'vb']); // no port reopened
  });

  it('attaches an added pod alone, leaving the others their port and handle', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    const before = r.appliedPods.get('a')!;
    const c = r.reconcile(state(cfg.peers, [...cfg.pods, pod('c', 'vc', '10.244.1.12', '02:00:00:00:01:0c')]));
    expect(dp.take()).toEqual(['attachPod c 10.244.1.12 on vc', 'watch c', 'announce c']);
    expect(c.podsAttached).toEqual(['c']);
    expect(r.appliedPods.get('a')).toBe(before);
    expect(before.port).toMatchObject({ closed: false });
  });

  it('detaches a removed pod and closes its port', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    const c = r.reconcile(state(cfg.peers, [cfg.pods[0]!]));
    expect(dp.take()).toEqual(['detach b']);
    expect(host.port('vb')[0]!.closed).toBe(true);
    expect(describeChanges(c)).toBe('pods -b');
  });

  it('replaces a changed pod (same name, new IP) by detaching it before attaching it again', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    const moved = pod('b', 'vb', '10.244.1.21', '02:00:00:00:01:0b');
    const c = r.reconcile(state(cfg.peers, [cfg.pods[0]!, moved]));
    expect(dp.take()).toEqual(['detach b', 'attachPod b 10.244.1.21 on vb', 'watch b', 'announce b']);
    expect(c).toMatchObject({ podsAttached: [], podsDetached: [], podsReplaced: ['b'] });
    expect(host.port('vb').map((p) => p.closed)).toEqual([true, false]);
  });

  it('sets the peers once when they change, and not at all when only pods change', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    const n4 = peer('n4', '198.51.100.4', '10.244.4.0/24', '0e:00:0a:f4:04:00');
    const n2moved = peer('n2', '198.51.100.12', '10.244.2.0/24', '0e:00:0a:f4:02:00');
    const c = r.reconcile(state([n2moved, n4], cfg.pods));
    expect(dp.take()).toEqual(['setPeers n2,n4']);
    expect(c).toMatchObject({ peersAdded: ['n4'], peersRemoved: ['n3'], peersChanged: ['n2'] });
    expect([...r.appliedPeers.keys()]).toEqual(['n2', 'n4']);
    r.reconcile(state([n2moved, n4], [cfg.pods[1]!]));
    expect(dp.take()).toEqual(['detach a']);
  });

  it('changes nothing when a new pod cannot be opened, and closes what it opened for the others', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    host.failOn.add('vz');
    const want = state([cfg.peers[0]!], [pod('c', 'vc', '10.244.1.12', '02:00:00:00:01:0c'), pod('z', 'vz', '10.244.1.13', '02:00:00:00:01:0d')]);
    expect(() => r.reconcile(want)).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(dp.take()).toEqual([]);
    expect(host.port('vc')[0]!.closed).toBe(true);
    expect([...r.appliedPods.keys()]).toEqual(['a', 'b']);
    expect([...r.appliedPeers.keys()]).toEqual(['n2', 'n3']);
    host.failOn.clear();
    expect(r.reconcile(want).podsAttached).toEqual(['c', 'z']); // the same state applies once the veth exists
  });

  it('closes everything it opened when the first reconcile fails', () => {
    host.failOn.add('vb');
    expect(() => r.reconcile(state(cfg.peers, cfg.pods))).toThrow(expect.objectContaining({ code: 'ENODEV' }));
    expect(dp.take()).toEqual(['attachHost flatnet0', 'attachOverlay vxlan:4789 udp/ip', 'stop']);
    expect(host.port('va')[0]!.closed).toBe(true);
    expect(host.hostClosed).toEqual({ keep: false });
    expect(() => r.reconcile(state([], []))).toThrow(expect.objectContaining({ code: 'ERR_DAEMON_STOPPED' }));
  });

  it('keeps the control socket\'s pods across a reload that replaces the file\'s contribution', () => {
    let src = Sources.of(node, cfg);
    r.reconcile(src.state);
    src = src.put(Producer.CONTROL, 'pods', pod('rt', 'vrt', '10.244.1.30', '02:00:00:00:01:1e'), 'pod').sources;
    r.reconcile(src.state);
    dp.take();
    // The file now lists only pod b and peer n3.
    const next = src.replace(Producer.FILE, { peers: [cfg.peers[1]!], pods: [cfg.pods[1]!] });
    const c = r.reconcile(next.state);
    expect(dp.take()).toEqual(['detach a', 'setPeers n3']);
    expect(c).toMatchObject({ podsDetached: ['a'], peersRemoved: ['n2'] });
    expect([...r.appliedPods.keys()].sort()).toEqual(['b', 'rt']);
  });

  it('refuses a node section that differs from the running one (that needs a restart)', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    const other = Sources.of({ ...node, vni: 2 }, { peers: [], pods: [] }).state;
    expect(() => r.reconcile(other)).toThrow(expect.objectContaining({ code: 'ERR_RELOAD_NEEDS_RESTART' }));
    expect(r.reconcile(Sources.of({ ...node, logLevel: 'debug' }, cfg).state)).toBe(NO_CHANGES); // the log level is live
  });

  it('close stops draining and closes every port; the TAP stays with keep', () => {
    r.reconcile(state(cfg.peers, cfg.pods));
    dp.take();
    r.close(true);
    r.close(true);
    expect(dp.take()).toEqual(['stop']);
    expect(host.opened.every((p) => p.closed)).toBe(true);
    expect(host.hostClosed).toEqual({ keep: true });
  });
});
