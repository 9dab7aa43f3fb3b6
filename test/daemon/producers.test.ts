// Producers of desired state: the config file and the control socket contribute pods and
// peers; the desired state is their union; clashes between them are typed conflicts naming the
// field, and a reload replaces only the file's contribution.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import type { PeerSpec, PodSpec } from '../../src/daemon/desired.js';
import { Producer, Sources } from '../../src/daemon/producers.js';
import { checkPeer, checkPod, type PeerInput, type PodInput } from '../../src/daemon/validate.js';

const cfg = parseConfig({
  node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', vtepMac: '0e:00:0a:f4:01:00',
  peers: [{ name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' }],
  pods: [
    { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' },
    { name: 'b', interface: 'vb', ip: '10.244.1.11', mac: '02:00:00:00:01:0b' },
  ],
});
const A: PodInput = { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' };
const C: PodInput = { name: 'c', interface: 'vc', ip: '10.244.1.12', mac: '02:00:00:00:01:0c' };
const N2: PeerInput = { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' };
const N3: PeerInput = { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' };
const pod = (p: PodInput): PodSpec => checkPod(cfg, p, 'pod');
const peer = (p: PeerInput): PeerSpec => checkPeer(cfg, p, 'peer');
const names = (m: ReadonlyMap<string, unknown>): string[] => [...m.keys()];
const start = (): Sources => Sources.of(cfg, cfg);

describe('desired state from producers', () => {
  it('is the union of the file and the control socket, file entries first', () => {
    const s = start().put(Producer.CONTROL, 'pods', pod(C), 'pod').sources.put(Producer.CONTROL, 'peers', peer(N3), 'peer', true).sources;
    expect(names(s.state.sections.pods)).toEqual(['a', 'b', 'c']);
    expect(names(s.state.sections.peers)).toEqual(['n2', 'n3']);
    expect(s.holders('pods', 'c')).toEqual(['control']);
    expect(names(s.contribution(Producer.FILE).pods)).toEqual(['a', 'b']);
  });

  it.each<[string, PodInput, string]>([
    ['the IP of another pod', { ...C, ip: '10.244.1.10' }, 'pod.ip'],
    ['the MAC of another pod', { ...C, mac: '02:00:00:00:01:0b' }, 'pod.mac'],
    ['the interface of another pod', { ...C, interface: 'vb' }, 'pod.interface'],
    ['a known name on another interface', { ...A, interface: 'vc' }, 'pod.interface'],
    ['a known name with another IP', { ...A, ip: '10.244.1.99' }, 'pod.ip'],
    ['a known name with another MAC', { ...A, mac: '02:00:00:00:01:99' }, 'pod.mac'],
  ])('refuses a pod with %s: ERR_STATE_CONFLICT on %s', (_what, p, field) => {
    const s = start();
    expect(() => s.put(Producer.CONTROL, 'pods', pod(p), 'pod')).toThrow(expect.objectContaining({ code: 'ERR_STATE_CONFLICT', field }));
  });

  it('names the conflicting entry and who holds it', () => {
    expect(() => start().put(Producer.CONTROL, 'pods', pod({ ...C, ip: '10.244.1.10' }), 'pod'))
      .toThrow('pod.ip: already in use by pod a (interface va, ip 10.244.1.10, mac 02:00:00:00:01:0a), from the config file');
  });

  it('takes the same pod again as a no-op that only records the claim', () => {
    const s = start();
    const r = s.put(Producer.CONTROL, 'pods', pod(A), 'pod');
    expect(r.existing).toBe(true);
    expect(r.sources.state.sections.pods).toEqual(s.state.sections.pods);
    expect(r.sources.holders('pods', 'a')).toEqual(['file', 'control']);
  });

  it.each<[string, PeerInput, string]>([
    ['an overlapping pod CIDR', { ...N3, podCidr: '10.244.2.128/25' }, 'peer.podCidr'],
    ['the underlay address of another peer', { ...N3, underlay: '198.51.100.2' }, 'peer.underlay'],
  ])('refuses a peer with %s: ERR_STATE_CONFLICT on %s', (_what, p, field) => {
    expect(() => start().put(Producer.CONTROL, 'peers', peer(p), 'peer', true)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CONFLICT', field }));
  });

  it('replaces a peer of the same name wherever it was held (peer add), but only with replace', () => {
    const moved = peer({ ...N2, vtepMac: '0e:00:0a:f4:02:99' });
    expect(() => start().put(Producer.CONTROL, 'peers', moved, 'peer')).toThrow(expect.objectContaining({ code: 'ERR_STATE_CONFLICT', field: 'peer.vtepMac' }));
    const r = start().put(Producer.CONTROL, 'peers', moved, 'peer', true);
    expect(r.existing).toBe(false);
    expect(r.sources.state.sections.peers.get('n2')).toBe(moved);
    expect(r.sources.holders('peers', 'n2')).toEqual(['control']);
  });

  it('removes an entry from every producer; an unknown name is ERR_NOT_FOUND', () => {
    const s = start().put(Producer.CONTROL, 'pods', pod(A), 'pod').sources.remove('pods', 'a');
    expect(names(s.state.sections.pods)).toEqual(['b']);
    expect(s.holders('pods', 'a')).toEqual([]);
    expect(() => s.remove('pods', 'a')).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
    expect(() => s.remove('peers', 'n9')).toThrow(expect.objectContaining({ code: 'ERR_NOT_FOUND' }));
  });

  describe('a reload (the file\'s contribution replaced)', () => {
    const runtime = (): Sources => start().put(Producer.CONTROL, 'pods', pod(C), 'pod').sources.put(Producer.CONTROL, 'peers', peer(N3), 'peer', true).sources;

    it('keeps what the control socket added, also when the file drops everything', () => {
      const s = runtime().replace(Producer.FILE, { peers: [], pods: [] });
      expect(names(s.state.sections.pods)).toEqual(['c']);
      expect(names(s.state.sections.peers)).toEqual(['n3']);
    });

    it('brings back a file entry that was detached at runtime, when the file still has it', () => {
      const s = runtime().remove('pods', 'a');
      expect(names(s.replace(Producer.FILE, cfg).state.sections.pods)).toEqual(['a', 'b', 'c']);
    });

    it('keeps an entry both hold until neither does', () => {
      const both = start().put(Producer.CONTROL, 'pods', pod(A), 'pod').sources;
      const s = both.replace(Producer.FILE, { peers: cfg.peers, pods: [cfg.pods[1]!] });
      expect(names(s.state.sections.pods)).toEqual(['b', 'a']);
    });

    it.each<[string, (c: { peers: PeerSpec[]; pods: PodSpec[] }) => void, string]>([
      ['a file pod on a runtime pod\'s IP', (c) => c.pods.push(pod({ ...C, name: 'd', interface: 'vd', mac: '02:00:00:00:01:0d' })), 'pods[2].ip'],
      ['a file pod named like a runtime pod, other MAC', (c) => c.pods.push(pod({ ...C, mac: '02:00:00:00:01:0d' })), 'pods[2].mac'],
      ['a file peer overlapping a runtime peer', (c) => c.peers.push(peer({ ...N3, name: 'n4', underlay: '198.51.100.4', podCidr: '10.244.3.0/25' })), 'peers[1].podCidr'],
      ['a file peer named like a runtime peer, other underlay', (c) => c.peers.push(peer({ ...N3, underlay: '198.51.100.33' })), 'peers[1].underlay'],
    ])('refuses %s: ERR_STATE_CONFLICT on %s', (_what, edit, field) => {
      const file = { peers: [...cfg.peers], pods: [...cfg.pods] };
      edit(file);
      expect(() => runtime().replace(Producer.FILE, file)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CONFLICT', field }));
    });

    it('refuses the old file after the control socket replaced one of its peers, naming what differs', () => {
      const s = start().put(Producer.CONTROL, 'peers', peer({ ...N2, vtepMac: '0e:00:0a:f4:02:99' }), 'peer', true).sources;
      expect(() => s.replace(Producer.FILE, cfg)).toThrow(expect.objectContaining({ code: 'ERR_STATE_CONFLICT', field: 'peers[0].vtepMac' }));
    });
  });
});
