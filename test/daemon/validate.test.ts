// The one validator: an entry against the node (as a command gives it: fields "pod.x",
// "peer.x"), two entries against each other, and the MTU rule. The config file's table is in
// config.test.ts; both end here.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { checkPeer, checkPod, relatePeers, relatePods, resolvePodMtu, type PeerInput, type PodInput } from '../../src/daemon/validate.js';

const node = parseConfig({ node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', host: { interface: 'flatnet0' } });
const POD: PodInput = { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' };
const PEER: PeerInput = { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' };

describe('validate', () => {
  it('compiles a valid pod and peer to numbers', () => {
    expect(checkPod(node, POD, 'pod')).toEqual({ name: 'a', interface: 'va', ip: 0x0af4_010a, mac: 0x0200_0000_010a });
    const p = checkPeer(node, PEER, 'peer');
    expect([p.name, p.underlayIp, p.podCidr.toString(), p.vtepMac]).toEqual(['n2', 0xc633_6402, '10.244.2.0/24', 0x0e00_0af4_0200]);
  });

  it.each<[string, Partial<PodInput>, string, string]>([
    ['an IP outside the pod CIDR', { ip: '10.244.2.10' }, 'ERR_CONFIG_INVALID_ADDRESS', 'pod.ip'],
    ['the broadcast address', { ip: '10.244.1.255' }, 'ERR_CONFIG_INVALID_ADDRESS', 'pod.ip'],
    ['the VTEP (network) address', { ip: '10.244.1.0' }, 'ERR_CONFIG_DUPLICATE', 'pod.ip'],
    ['the gateway address', { ip: '10.244.1.1' }, 'ERR_CONFIG_DUPLICATE', 'pod.ip'],
    ['a multicast MAC', { mac: '01:00:5e:00:00:01' }, 'ERR_CONFIG_INVALID_ADDRESS', 'pod.mac'],
    ['the zero MAC', { mac: '00:00:00:00:00:00' }, 'ERR_CONFIG_INVALID_ADDRESS', 'pod.mac'],
    ['the underlay interface', { interface: 'eth0' }, 'ERR_CONFIG_DUPLICATE', 'pod.interface'],
    ['the host interface', { interface: 'flatnet0' }, 'ERR_CONFIG_DUPLICATE', 'pod.interface'],
  ])('refuses a pod on %s', (_what, edit, code, field) => {
    expect(() => checkPod(node, { ...POD, ...edit }, 'pod')).toThrow(expect.objectContaining({ code, field }));
  });

  it.each<[string, Partial<PeerInput>, string, string]>([
    ['a pod CIDR outside the cluster', { podCidr: '10.245.2.0/24' }, 'ERR_CONFIG_INVALID_CIDR', 'peer.podCidr'],
    ['a misaligned pod CIDR', { podCidr: '10.244.2.1/24' }, 'ERR_CONFIG_INVALID_CIDR', 'peer.podCidr'],
    ['a pod CIDR overlapping ours', { podCidr: '10.244.0.0/23' }, 'ERR_CONFIG_OVERLAP', 'peer.podCidr'],
    ['our node name', { name: 'n1' }, 'ERR_CONFIG_DUPLICATE', 'peer.name'],
    ['our underlay address', { underlay: '198.51.100.1' }, 'ERR_CONFIG_DUPLICATE', 'peer.underlay'],
    ['a multicast VTEP MAC', { vtepMac: '33:33:00:00:00:01' }, 'ERR_CONFIG_INVALID_ADDRESS', 'peer.vtepMac'],
  ])('refuses a peer with %s', (_what, edit, code, field) => {
    expect(() => checkPeer(node, { ...PEER, ...edit }, 'peer')).toThrow(expect.objectContaining({ code, field }));
  });

  it.each<[string, Partial<PodInput>, string, string | null]>([
    ['the same pod', {}, 'identical', null],
    ['another pod', { name: 'b', interface: 'vb', ip: '10.244.1.11', mac: '02:00:00:00:01:0b' }, 'unrelated', null],
    ['the same name on another interface', { interface: 'vb' }, 'differs', 'interface'],
    ['the same name with another IP', { ip: '10.244.1.11' }, 'differs', 'ip'],
    ['the same name with another MAC', { mac: '02:00:00:00:01:0b' }, 'differs', 'mac'],
    ['another name with the same IP', { name: 'b', interface: 'vb', mac: '02:00:00:00:01:0b' }, 'clashes', 'ip'],
    ['another name with the same MAC', { name: 'b', interface: 'vb', ip: '10.244.1.11' }, 'clashes', 'mac'],
    ['another name on the same interface', { name: 'b', ip: '10.244.1.11', mac: '02:00:00:00:01:0b' }, 'clashes', 'interface'],
  ])('relates a pod to %s', (_what, edit, kind, field) => {
    const r = relatePods(checkPod(node, { ...POD, ...edit }, 'pod'), checkPod(node, POD, 'pod'));
    expect([r.kind, 'field' in r ? r.field : null]).toEqual([kind, field]);
  });

  it.each<[string, Partial<PeerInput>, string, string | null]>([
    ['the same peer', {}, 'identical', null],
    ['the same name, another VTEP MAC', { vtepMac: '0e:00:0a:f4:02:01' }, 'differs', 'vtepMac'],
    ['the same name, another underlay', { underlay: '198.51.100.9' }, 'differs', 'underlay'],
    ['another name inside its pod CIDR', { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.2.64/26' }, 'clashes', 'podCidr'],
    ['another name on its underlay address', { name: 'n3', podCidr: '10.244.3.0/24' }, 'clashes', 'underlay'],
    ['another peer', { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24' }, 'unrelated', null],
  ])('relates a peer to %s', (_what, edit, kind, field) => {
    const r = relatePeers(checkPeer(node, { ...PEER, ...edit }, 'peer'), checkPeer(node, PEER, 'peer'));
    expect([r.kind, 'field' in r ? r.field : null]).toEqual([kind, field]);
  });

  it.each<[number | null, number, number | string]>([
    [null, 1500, 1450],
    [1450, 1500, 1450],
    [1400, 1500, 1400],
    [1451, 1500, 'ERR_CONFIG_MTU'],
    [null, 9000, 8950],
    [9000, 9000, 'ERR_CONFIG_MTU'],
  ])('the MTU rule: pod MTU %s over an underlay MTU of %i gives %s', (pod, underlay, want) => {
    if (typeof want === 'number') expect(resolvePodMtu(pod, underlay)).toBe(want);
    else expect(() => resolvePodMtu(pod, underlay)).toThrow(expect.objectContaining({ code: want, field: 'podMtu' }));
  });
});
