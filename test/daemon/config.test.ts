import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, resolveVtepMac, type ConfigInput } from '../../src/daemon/config.js';
import { formatIpv4, formatMac } from '../../src/wire/addr.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (): ConfigInput => ({
  node: 'node1',
  underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 },
  podCidr: '10.244.1.0/24',
  stateDir: dir,
  peers: [{ name: 'node2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' }],
  pods: [{ name: 'a', interface: 'veth-a', ip: '10.244.1.2', mac: '02:00:0a:f4:01:02' }],
});

const edit = (f: (c: Record<string, any>) => void): unknown => {
  const c = structuredClone(base()) as Record<string, any>;
  f(c);
  return c;
};

describe('node config', () => {
  it('fills defaults the way flannel and the RFC would', () => {
    const c = parseConfig(base());
    expect([c.vni, c.port, c.mode, c.udpChecksum, c.df, c.ttl, c.strict]).toEqual([1, 4789, 'l3', false, 'unset', 64, true]);
    expect([formatIpv4(c.gateway), formatIpv4(c.vtepIp), c.clusterCidr.toString()]).toEqual(['10.244.1.1', '10.244.1.0', '10.244.0.0/16']);
    expect(c.srcPortRange).toEqual([49152, 65535]);
    expect([c.host.interface, c.fdbLimit, c.fdbAgeingMs, c.controlSocket]).toEqual(['flatnet0', 8192, 300_000, '/run/flatnet/node1.sock']);
    expect(parseConfig(edit((x) => { x.srcPortRange = 'linux'; })).srcPortRange).toEqual([32768, 60999]);
  });

  it.each<[string, (c: Record<string, any>) => void, string, string]>([
    ['a missing field', (c) => { delete c.podCidr; }, 'ERR_CONFIG_INVALID', 'podCidr'],
    ['an unknown key', (c) => { c.colour = 'blue'; }, 'ERR_CONFIG_INVALID', ''],
    ['a bad peer address', (c) => { c.peers[0].underlay = '198.51.100'; }, 'ERR_CONFIG_INVALID', 'peers[0].underlay'],
    ['a bad MAC', (c) => { c.pods[0].mac = 'zz:00:00:00:00:01'; }, 'ERR_CONFIG_INVALID', 'pods[0].mac'],
    ['a multicast VTEP MAC', (c) => { c.peers[0].vtepMac = '01:00:5e:00:00:01'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].vtepMac'],
    ['a VNI beyond 24 bits', (c) => { c.vni = 1 << 24; }, 'ERR_CONFIG_INVALID', 'vni'],
    ['port 0', (c) => { c.port = 0; }, 'ERR_CONFIG_INVALID', 'port'],
    ['a misaligned pod CIDR', (c) => { c.podCidr = '10.244.1.1/24'; }, 'ERR_CONFIG_INVALID_CIDR', 'podCidr'],
    ['a pod CIDR outside the cluster', (c) => { c.podCidr = '10.245.1.0/24'; }, 'ERR_CONFIG_INVALID_CIDR', 'podCidr'],
    ['overlapping peer CIDRs', (c) => { c.peers.push({ name: 'node3', underlay: '198.51.100.3', podCidr: '10.244.2.128/25', vtepMac: '0e:00:0a:f4:03:00' }); }, 'ERR_CONFIG_OVERLAP', 'peers[1].podCidr'],
    ['a peer overlapping our CIDR', (c) => { c.peers[0].podCidr = '10.244.0.0/23'; }, 'ERR_CONFIG_OVERLAP', 'peers[0].podCidr'],
    ['a peer with our underlay address', (c) => { c.peers[0].underlay = '198.51.100.1'; }, 'ERR_CONFIG_DUPLICATE', 'peers[0].underlay'],
    ['a peer on the limited broadcast address', (c) => { c.peers[0].underlay = '255.255.255.255'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].underlay'],
    ['a peer on a multicast address', (c) => { c.peers[0].underlay = '239.1.1.1'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].underlay'],
    ['a peer on a loopback address', (c) => { c.peers[0].underlay = '127.0.0.1'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].underlay'],
    ['a peer on the unspecified address', (c) => { c.peers[0].underlay = '0.0.0.0'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].underlay'],
    ['a peer on a reserved address', (c) => { c.peers[0].underlay = '240.0.0.1'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'peers[0].underlay'],
    ['a peer with our VTEP MAC', (c) => { c.vtepMac = '0e:00:0a:f4:01:00'; c.peers[0].vtepMac = '0e:00:0a:f4:01:00'; }, 'ERR_CONFIG_DUPLICATE', 'peers[0].vtepMac'],
    ['a pod outside the pod CIDR', (c) => { c.pods[0].ip = '10.244.2.9'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'pods[0].ip'],
    ['a pod on the gateway address', (c) => { c.pods[0].ip = '10.244.1.1'; }, 'ERR_CONFIG_DUPLICATE', 'pods[0].ip'],
    ['two pods with one MAC', (c) => { c.pods.push({ name: 'b', interface: 'veth-b', ip: '10.244.1.3', mac: '02:00:0a:f4:01:02' }); }, 'ERR_CONFIG_DUPLICATE', 'pods[1].mac'],
    ['two pods on one interface', (c) => { c.pods.push({ name: 'b', interface: 'veth-a', ip: '10.244.1.3', mac: '02:00:0a:f4:01:03' }); }, 'ERR_CONFIG_DUPLICATE', 'pods[1].interface'],
    ['an interface name too long for Linux', (c) => { c.pods[0].interface = 'a-very-long-ifname'; }, 'ERR_CONFIG_INVALID', 'pods[0].interface'],
    ['a pod MTU that cannot fit', (c) => { c.podMtu = 1451; }, 'ERR_CONFIG_MTU', 'podMtu'],
    ['an underlay inside the cluster CIDR', (c) => { c.underlay.address = '10.244.9.9'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'underlay.address'],
    ['an empty source-port range', (c) => { c.srcPortRange = [50000, 40000]; }, 'ERR_CONFIG_INVALID', 'srcPortRange'],
    ['a gateway outside the pod CIDR', (c) => { c.gateway = '10.244.2.1'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'gateway'],
    ['a gateway on the VTEP address', (c) => { c.gateway = '10.244.1.0'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'gateway'],
    ['a pod CIDR too small for a gateway and pods', (c) => { c.podCidr = '10.244.1.0/31'; delete c.pods; }, 'ERR_CONFIG_INVALID_CIDR', 'podCidr'],
    ['a misaligned cluster CIDR', (c) => { c.clusterCidr = '10.244.1.0/16'; }, 'ERR_CONFIG_INVALID_CIDR', 'clusterCidr'],
    ['a multicast host MAC', (c) => { c.host = { mac: '01:00:00:00:00:01' }; }, 'ERR_CONFIG_INVALID_ADDRESS', 'host.mac'],
    ['a metrics address that is not IPv4', (c) => { c.metrics = '1.2.3:80'; }, 'ERR_CONFIG_INVALID', 'metrics'],
    ['a metrics port beyond 65535', (c) => { c.metrics = '127.0.0.1:70000'; }, 'ERR_CONFIG_INVALID', 'metrics'],
    ['an unknown key inside a pod', (c) => { c.pods[0].colour = 'red'; }, 'ERR_CONFIG_INVALID', 'pods[0]'],
    ['a peer named like this node', (c) => { c.peers[0].name = 'node1'; }, 'ERR_CONFIG_DUPLICATE', 'peers[0].name'],
    ['two peers with one name', (c) => { c.peers.push({ name: 'node2', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' }); }, 'ERR_CONFIG_DUPLICATE', 'peers[1].name'],
    ['two peers with one underlay address', (c) => { c.peers.push({ name: 'node3', underlay: '198.51.100.2', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' }); }, 'ERR_CONFIG_DUPLICATE', 'peers[1].underlay'],
    ['a pod on the broadcast address', (c) => { c.pods[0].ip = '10.244.1.255'; }, 'ERR_CONFIG_INVALID_ADDRESS', 'pods[0].ip'],
    ['a pod on the VTEP address', (c) => { c.pods[0].ip = '10.244.1.0'; }, 'ERR_CONFIG_DUPLICATE', 'pods[0].ip'],
    ['a pod on the host interface', (c) => { c.pods[0].interface = 'flatnet0'; }, 'ERR_CONFIG_DUPLICATE', 'pods[0].interface'],
    ['a pod on the underlay interface', (c) => { c.pods[0].interface = 'eth0'; }, 'ERR_CONFIG_DUPLICATE', 'pods[0].interface'],
    ['two pods with one IP', (c) => { c.pods.push({ name: 'b', interface: 'veth-b', ip: '10.244.1.2', mac: '02:00:0a:f4:01:03' }); }, 'ERR_CONFIG_DUPLICATE', 'pods[1].ip'],
    ['two pods with one name', (c) => { c.pods.push({ ...c.pods[0] }); }, 'ERR_CONFIG_DUPLICATE', 'pods[1].name'],
    ['an unknown io backend', (c) => { c.io = 'dpdk'; }, 'ERR_CONFIG_INVALID', 'io'],
    ['an unknown podIo backend', (c) => { c.podIo = 'xdp'; }, 'ERR_CONFIG_INVALID', 'podIo'],
    ['tunnelOffload neither auto nor off', (c) => { c.tunnelOffload = 'on'; }, 'ERR_CONFIG_INVALID', 'tunnelOffload'],
    ['tunnelOffload as a boolean', (c) => { c.tunnelOffload = true; }, 'ERR_CONFIG_INVALID', 'tunnelOffload'],
    ['a busyPoll word that is not off or auto', (c) => { c.busyPoll = 'on'; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a busyPoll budget of 0 µs', (c) => { c.busyPoll = 0; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a busyPoll budget beyond 10 ms', (c) => { c.busyPoll = 10_001; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a fractional busyPoll budget', (c) => { c.busyPoll = 2.5; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a busyPoll budget as a string', (c) => { c.busyPoll = '50'; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a busyPoll object without a budget', (c) => { c.busyPoll = { auto: true }; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
    ['a busyPoll object with an unknown key', (c) => { c.busyPoll = { us: 50, spin: true }; }, 'ERR_CONFIG_INVALID', 'busyPoll'],
  ])('rejects %s with a code naming the field', (_name, f, code, field) => {
    expect(() => parseConfig(edit(f))).toThrow(expect.objectContaining({ code, field }));
  });

  it('takes the io backend from the file, else $FLATNET_IO, else packet; a bad $FLATNET_IO names the field', () => {
    const saved = process.env['FLATNET_IO'];
    try {
      delete process.env['FLATNET_IO'];
      expect(parseConfig(base()).io).toBe('packet');
      process.env['FLATNET_IO'] = 'af_xdp';
      expect(parseConfig(base()).io).toBe('af_xdp');
      expect(parseConfig(edit((c) => { c.io = 'auto'; })).io).toBe('auto');
      process.env['FLATNET_IO'] = 'xdp';
      expect(() => parseConfig(base())).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field: 'io' }));
      expect(parseConfig(edit((c) => { c.io = 'packet'; })).io).toBe('packet');
    } finally {
      if (saved === undefined) delete process.env['FLATNET_IO'];
      else process.env['FLATNET_IO'] = saved;
    }
  });

  it('takes podIo from the file, else $FLATNET_POD_IO, else io; a bad $FLATNET_POD_IO names the field', () => {
    const saved = [process.env['FLATNET_IO'], process.env['FLATNET_POD_IO']] as const;
    try {
      delete process.env['FLATNET_IO'];
      delete process.env['FLATNET_POD_IO'];
      expect(parseConfig(base())).toMatchObject({ io: 'packet', podIo: 'packet' });
      expect(parseConfig(edit((c) => { c.io = 'af_xdp'; }))).toMatchObject({ io: 'af_xdp', podIo: 'af_xdp' });
      expect(parseConfig(edit((c) => { c.io = 'af_xdp'; c.podIo = 'packet'; }))).toMatchObject({ io: 'af_xdp', podIo: 'packet' });
      process.env['FLATNET_IO'] = 'auto';
      expect(parseConfig(base())).toMatchObject({ io: 'auto', podIo: 'auto' });
      process.env['FLATNET_POD_IO'] = 'packet';
      expect(parseConfig(base())).toMatchObject({ io: 'auto', podIo: 'packet' });
      expect(parseConfig(edit((c) => { c.podIo = 'af_xdp'; }))).toMatchObject({ podIo: 'af_xdp' });
      process.env['FLATNET_POD_IO'] = 'dpdk';
      expect(() => parseConfig(base())).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field: 'podIo' }));
    } finally {
      for (const [k, v] of [['FLATNET_IO', saved[0]], ['FLATNET_POD_IO', saved[1]]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('takes tunnelOffload from the file, else $FLATNET_TUNNEL_OFFLOAD, else auto; a bad value there names the field', () => {
    const saved = process.env['FLATNET_TUNNEL_OFFLOAD'];
    try {
      delete process.env['FLATNET_TUNNEL_OFFLOAD'];
      expect(parseConfig(base()).tunnelOffload).toBe('auto');
      expect(parseConfig(edit((c) => { c.tunnelOffload = 'off'; })).tunnelOffload).toBe('off');
      process.env['FLATNET_TUNNEL_OFFLOAD'] = 'off';
      expect(parseConfig(base()).tunnelOffload).toBe('off');
      expect(parseConfig(edit((c) => { c.tunnelOffload = 'auto'; })).tunnelOffload).toBe('auto');
      process.env['FLATNET_TUNNEL_OFFLOAD'] = 'yes';
      expect(() => parseConfig(base())).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field: 'tunnelOffload' }));
    } finally {
      if (saved === undefined) delete process.env['FLATNET_TUNNEL_OFFLOAD'];
      else process.env['FLATNET_TUNNEL_OFFLOAD'] = saved;
    }
  });

  it('compiles busyPoll: off by default, auto with its budget, a number spins always', () => {
    expect(parseConfig(base()).busyPoll).toEqual({ mode: 'off', budgetUs: 0 });
    expect(parseConfig(edit((c) => { c.busyPoll = 'off'; })).busyPoll).toEqual({ mode: 'off', budgetUs: 0 });
    expect(parseConfig(edit((c) => { c.busyPoll = 'auto'; })).busyPoll).toEqual({ mode: 'auto', budgetUs: 50 });
    expect(parseConfig(edit((c) => { c.busyPoll = 100; })).busyPoll).toEqual({ mode: 'always', budgetUs: 100 });
    expect(parseConfig(edit((c) => { c.busyPoll = { us: 200, auto: true }; })).busyPoll).toEqual({ mode: 'auto', budgetUs: 200 });
    expect(parseConfig(edit((c) => { c.busyPoll = { us: 20 }; })).busyPoll).toEqual({ mode: 'always', budgetUs: 20 });
  });

  it('accepts a pod MTU of exactly underlay - 50', () => {
    expect(parseConfig(edit((c) => { c.podMtu = 1450; })).podMtu).toBe(1450);
  });

  it('reports unreadable files and bad JSON with their own codes', () => {
    expect(() => loadConfig(join(dir, 'missing.json'))).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_READ' }));
    const f = join(dir, 'bad.json');
    writeFileSync(f, '{"node": ');
    expect(() => loadConfig(f)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_JSON' }));
  });

  it('generates a VTEP MAC once, persists it, and returns the same one on restart', () => {
    const c = parseConfig(edit((x) => { x.node = 'persist'; }));
    const m1 = resolveVtepMac(c);
    expect(Math.floor(m1 / 2 ** 40) % 4).toBe(2); // unicast, locally administered
    expect(readFileSync(join(dir, 'persist.vtep-mac'), 'utf8').trim()).toBe(formatMac(m1));
    expect(resolveVtepMac(c)).toBe(m1);
    expect(resolveVtepMac(parseConfig(edit((x) => { x.vtepMac = '0e:00:00:00:00:01'; })))).toBe(0x0e00_0000_0001);
  });
});
