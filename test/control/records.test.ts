import { describe, expect, it } from 'vitest';
import { parseNetwork } from '../../src/control/network.js';
import { selectPeers, type RawRecord } from '../../src/control/records.js';
import { Cidr } from '../../src/fib/cidr.js';
import { formatIpv4, parseIpv4 } from '../../src/wire/addr.js';

const net = parseNetwork({});
let rev = 10;
const rec = (subnet: string, fields: Record<string, unknown> = {}, raw?: string): RawRecord => {
  rev++;
  const n = Number(subnet.split('.')[2]);
  const value = raw ?? JSON.stringify({ node: `n${n}`, underlay: `198.51.100.${n}`, vtepMac: `0e:00:0a:f4:${n.toString(16).padStart(2, '0')}:00`, vni: 1, port: 4789, ...fields });
  return { key: `/flatnet/subnets/${subnet.replace('/', '-')}`, value, createRevision: rev, modRevision: rev };
};
const self = { node: 'n1', subnet: Cidr.parse('10.244.1.0/24'), underlayIp: parseIpv4('198.51.100.1') };

describe('lease records -> peers', () => {
  it('turns valid records into peers, in creation order, and skips this node', () => {
    const s = selectPeers('/flatnet', net, [rec('10.244.3.0/24'), rec('10.244.1.0/24'), rec('10.244.2.0/24')], self);
    expect(s.peers.map((p) => [p.name, p.podCidr.toString(), formatIpv4(p.underlayIp)])).toEqual([['n3', '10.244.3.0/24', '198.51.100.3'], ['n2', '10.244.2.0/24', '198.51.100.2']]);
    expect(s.records.size).toBe(3);
    expect(s.rejected).toEqual([]);
  });

  it.each<[string, () => RawRecord, string]>([
    ['malformed JSON', () => rec('10.244.5.0/24', {}, '{"node": "n5",'), 'malformed_json'],
    ['a missing field', () => rec('10.244.5.0/24', {}, JSON.stringify({ node: 'n5', underlay: '198.51.100.5', vni: 1, port: 4789 })), 'bad_record'],
    ['a multicast VTEP MAC', () => rec('10.244.5.0/24', { vtepMac: '01:00:5e:00:00:05' }), 'bad_record'],
    ['an underlay inside the pod network', () => rec('10.244.5.0/24', { underlay: '10.244.9.9' }), 'bad_record'],
    ['a subnet outside the network', () => rec('10.245.5.0/24'), 'outside_network'],
    ['a subnet overlapping this node\'s', () => rec('10.244.0.0/23', { node: 'evil', underlay: '198.51.100.66' }), 'overlap'],
    ['a subnet overlapping an earlier record', () => rec('10.244.2.128/25', { node: 'evil', underlay: '198.51.100.66' }), 'overlap'],
    ['a subnet of another length', () => rec('10.244.8.0/25', { node: 'evil', underlay: '198.51.100.66' }), 'wrong_subnet_len'],
    ["a record claiming this node's underlay IP", () => rec('10.244.5.0/24', { node: 'evil', underlay: '198.51.100.1' }), 'underlay_claimed'],
    ["a record claiming another node's underlay IP", () => rec('10.244.5.0/24', { node: 'evil', underlay: '198.51.100.2' }), 'underlay_claimed'],
    ['a second subnet for one node', () => rec('10.244.5.0/24', { node: 'n2', underlay: '198.51.100.5' }), 'duplicate_node'],
    ['another subnet in this node\'s name', () => rec('10.244.5.0/24', { node: 'n1', underlay: '198.51.100.5' }), 'duplicate_node'],
    ['another VNI', () => rec('10.244.5.0/24', { vni: 2 }), 'vni_port_mismatch'],
    ['a key that is not a subnet', () => ({ ...rec('10.244.5.0/24'), key: '/flatnet/subnets/junk' }), 'bad_key'],
  ])('ignores %s with a named reason, and installs nothing from it', (_what, make, reason) => {
    const good = rec('10.244.2.0/24');
    const bad = make();
    const s = selectPeers('/flatnet', net, [rec('10.244.1.0/24'), good, bad], self);
    expect(s.peers.map((p) => p.name)).toEqual(['n2']);
    expect(s.rejected.map((r) => [r.key, r.reason])).toEqual([[bad.key, reason]]);
  });

  it('keeps the earlier of two clashing records, whatever order they are listed in', () => {
    const first = rec('10.244.2.0/24');
    const second = rec('10.244.7.0/24', { node: 'n7', underlay: '198.51.100.2' });
    for (const order of [[first, second], [second, first]]) {
      const s = selectPeers('/flatnet', net, order, self);
      expect(s.peers.map((p) => p.name)).toEqual(['n2']);
      expect(s.rejected.map((r) => r.reason)).toEqual(['underlay_claimed']);
    }
  });

  it('without a self (a tool listing the leases) checks records only against each other', () => {
    const s = selectPeers('/flatnet', net, [rec('10.244.1.0/24'), rec('10.244.2.0/24')], null);
    expect(s.peers.map((p) => p.name)).toEqual(['n1', 'n2']);
  });
});
