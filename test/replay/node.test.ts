import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { peerSpecsFor, switchOptionsFor } from '../../src/daemon/switch-options.js';
import { DEFAULT_NODE, DEFAULT_UNDERLAY_MACS, DEFAULT_VTEP_MAC, defaultNodeConfig, replayVtepMac } from '../../src/replay/node.js';
import { ReplayNode } from '../../src/replay/replay.js';
import { formatIpv4, formatMac } from '../../src/wire/addr.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatnet-replay-node-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the replay node', () => {
  it('the built-in node is lab node 1 and a valid configuration', () => {
    const c = defaultNodeConfig();
    expect([c.node, c.mode, c.vni, c.port, c.podCidr.toString(), formatIpv4(c.underlay.address), c.underlay.mtu, c.podMtu]).toEqual(
      ['node1', 'l3', 1, 4789, '10.244.1.0/24', '198.51.100.1', 1550, 1500]);
    expect(c.peers.map((p) => `${p.name} ${formatIpv4(p.underlayIp)} ${p.podCidr}`)).toEqual(['node2 198.51.100.2 10.244.2.0/24', 'node3 198.51.100.3 10.244.3.0/24']);
    expect(c.pods.map((p) => `${p.name} ${formatIpv4(p.ip)} ${formatMac(p.mac)}`)).toEqual(['pod-a 10.244.1.10 02:00:0a:f4:01:0a', 'pod-b 10.244.1.11 02:00:0a:f4:01:0b']);
  });

  it('switchOptionsFor (shared with the daemon) carries every configured field, plus the outer MACs', () => {
    const c = parseConfig({ ...DEFAULT_NODE, mode: 'l2', strict: false, gbp: true, checkPeerSource: false, checkInnerSource: false, ttl: 9, df: 'inherit', udpChecksum: true, srcPortRange: 'linux', fdb: { limit: 77, ageingSeconds: 5 }, mssClamp: true });
    const o = switchOptionsFor(c, 0x0e0000000001, 1550, DEFAULT_UNDERLAY_MACS);
    expect(o).toEqual({
      mode: 'l2', vni: 1, vtepMac: 0x0e0000000001, vtepIp: c.vtepIp, podCidr: c.podCidr, clusterCidr: c.clusterCidr, gatewayIp: c.gateway,
      underlayIp: c.underlay.address, port: 4789, strict: false, gbp: true, checkPeerSource: false, checkInnerSource: false, fdbLimit: 77, fdbAgeingMs: 5000,
      underlayMtu: 1550, podMtu: 1500, mssClamp: true,
      encap: { localUnderlayMac: DEFAULT_UNDERLAY_MACS.local, nextHopMac: DEFAULT_UNDERLAY_MACS.nextHop, ttl: 9, df: 'inherit', udpChecksum: true, srcPortRange: [32768, 60999] },
    });
    expect(peerSpecsFor(c).map((p) => [p.name, p.vni, p.port])).toEqual([['node2', 1, 4789], ['node3', 1, 4789]]);
  });

  it('the VTEP MAC: configured, else the daemon\'s persisted one (read, never written), else the default', () => {
    const { vtepMac: _, ...noMac } = DEFAULT_NODE;
    const c = parseConfig({ ...noMac, stateDir: tmp });
    expect(replayVtepMac(defaultNodeConfig())).toEqual({ mac: DEFAULT_VTEP_MAC, source: 'config' });
    expect(replayVtepMac(c)).toEqual({ mac: DEFAULT_VTEP_MAC, source: 'default' });
    writeFileSync(join(tmp, 'node1.vtep-mac'), '0e:00:00:00:00:42\n');
    expect(replayVtepMac(c)).toEqual({ mac: 0x0e0000000042, source: 'state' });
    writeFileSync(join(tmp, 'node1.vtep-mac'), 'garbage\n');
    expect(() => replayVtepMac(c)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_STATE' }));
  });

  it('a ReplayNode attaches pods, host and overlay under the daemon\'s names', () => {
    const n = new ReplayNode(defaultNodeConfig());
    expect(n.ports.map((p, i) => `${p.name}:${n.roles[i]}`)).toEqual(['pod-a:pod', 'pod-b:pod', 'flatnet0:host', 'vxlan:4789:overlay']);
    expect(n.sw.portList.map((p) => p.name).sort()).toEqual(['flatnet0', 'pod-a', 'pod-b', 'vxlan:4789']);
    expect(n.sw.peerList.map((p) => p.name)).toEqual(['node2', 'node3']);
  });
});
