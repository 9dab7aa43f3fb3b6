import { describe, expect, it } from 'vitest';
import { completeWith, hasControl } from '../../src/control/join.js';
import { parseNetwork } from '../../src/control/network.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketPath } from '../../src/cli/client.js';
import { etcdTarget } from '../../src/cli/control-plane.js';
import { parseConfig } from '../../src/daemon/config.js';
import { Cidr } from '../../src/fib/cidr.js';

const file = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, stateDir: '/tmp/x',
  control: { etcd: { endpoints: ['http://198.51.100.241:2379'] } }, pods: [{ name: 'a', interface: 'vp0', ip: '10.244.7.10', mac: '02:00:0a:f4:07:0a' }], ...extra,
});
const net = parseNetwork({ vni: 5, port: 8472 });
const subnet = Cidr.parse('10.244.7.0/24');
const mac = 0x0e000af40700;

describe("a node config with control.etcd", () => {
  it('is completed from the network config and the lease, then parses as any config', () => {
    expect(hasControl(file())).toBe(true);
    const c = parseConfig(completeWith(file(), net, subnet, mac));
    expect([c.podCidr.toString(), c.clusterCidr.toString(), c.vni, c.port, c.mode, c.vtepMac]).toEqual(['10.244.7.0/24', '10.244.0.0/16', 5, 8472, 'l3', mac]);
    expect(c.control).toEqual({ endpoints: ['http://198.51.100.241:2379'], prefix: '/flatnet', leaseTtlSeconds: 60 });
    expect(c.pods).toHaveLength(1);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['a podCidr of its own', { podCidr: '10.244.7.0/24' }, 'ERR_CONFIG_INVALID', 'podCidr'],
    ['another VNI than the cluster', { vni: 1 }, 'ERR_CONFIG_NETWORK_MISMATCH', 'vni'],
    ['another cluster CIDR', { clusterCidr: '10.0.0.0/8' }, 'ERR_CONFIG_NETWORK_MISMATCH', 'clusterCidr'],
  ])('refuses %s, naming the field', (_w, extra, code, field) => {
    expect(() => completeWith(file(extra), net, subnet, mac)).toThrow(expect.objectContaining({ code, field }));
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no endpoint', { control: { etcd: { endpoints: [] } } }, 'control.etcd.endpoints'],
    ['an endpoint that is not http:// or unix://', { control: { etcd: { endpoints: ['198.51.100.241:2379'] } } }, 'control.etcd.endpoints[0]'],
    ['a prefix with a trailing slash', { control: { etcd: { endpoints: ['http://a:1'], prefix: '/flatnet/' } } }, 'control.etcd.prefix'],
    ['a lease TTL under 2 s', { control: { etcd: { endpoints: ['http://a:1'], leaseTtlSeconds: 1 } } }, 'control.etcd.leaseTtlSeconds'],
    ['a control section without etcd', { control: { consul: {} } }, 'control.etcd'],
  ])('validates the control section: %s', (_w, extra, field) => {
    expect(() => parseConfig({ ...file(extra), podCidr: '10.244.7.0/24' })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field }));
  });

  it('without control, podCidr is still required', () => {
    const { control: _c, ...rest } = file();
    expect(hasControl(rest)).toBe(false);
    expect(() => parseConfig(rest)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field: 'podCidr' }));
  });

  it('`--config FILE` finds the control socket of a node without a podCidr', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'flatnet-join-')), 'n1.json');
    writeFileSync(f, JSON.stringify(file()));
    expect(socketPath({ config: f })).toBe('/run/flatnet/n1.sock');
    writeFileSync(f, JSON.stringify({ ...file(), controlSocket: '/tmp/x.sock' }));
    expect(socketPath({ config: f })).toBe('/tmp/x.sock');
  });

  it('--etcd and --prefix of the CLI are checked, naming the flag', () => {
    expect(etcdTarget({ etcd: 'http://198.51.100.241:2379,unix:///tmp/e/localhost:2379', prefix: '/flatnet' }).endpoints).toHaveLength(2);
    expect(() => etcdTarget({ etcd: '198.51.100.241:2379', prefix: '/flatnet' })).toThrow(expect.objectContaining({ code: 'ERR_CLI_ETCD', field: 'etcd' }));
    expect(() => etcdTarget({ etcd: 'http://a:1', prefix: 'flatnet' })).toThrow(expect.objectContaining({ code: 'ERR_CLI_ETCD', field: 'prefix' }));
  });
});
