// The daemon's etcd producer, in-process with a stand-in control plane (the real one is tested
// against etcd in test/control and test/lab): peers from the lease watch are programmed, a whole
// set handed over again changes nothing, a peer that clashes with the file's is set aside and
// named, and a node without control.etcd says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { request } from '../../src/daemon/control.js';
import type { PeerSpec } from '../../src/daemon/desired.js';
import { VtepDaemon, type ControlPlane } from '../../src/daemon/vtep.js';
import { Cidr } from '../../src/fib/cidr.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { FakeHost } from '../support/fake-host.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-ctlpeers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const peer = (n: number, underlay = `198.51.100.${n}`): PeerSpec => ({ name: `n${n}`, underlayIp: parseIpv4(underlay), podCidr: Cidr.parse(`10.244.${n}.0/24`), vtepMac: parseMac(`0e:00:0a:f4:0${n}:00`) });

class StandIn implements ControlPlane {
  onPeers: ((p: readonly PeerSpec[]) => void) | null = null;
  closed = false;
  watch(onPeers: (p: readonly PeerSpec[]) => void): void { this.onPeers = onPeers; }
  status(): unknown { return { state: 'ok' }; }
  registerMetrics(): void {}
  async close(): Promise<void> { this.closed = true; }
}

const start = async (name: string, control?: ControlPlane, filePeers: unknown[] = []): Promise<{ d: VtepDaemon; sock: string }> => {
  const sock = join(dir, `${name}.sock`);
  const cfg = parseConfig({ node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', vtepMac: '0e:00:0a:f4:01:00', stateDir: dir, controlSocket: sock, peers: filePeers });
  const d = await VtepDaemon.start(cfg, { log: pino({ level: 'silent' }), host: new FakeHost(), control });
  return { d, sock };
};

describe('peers from the control plane', () => {
  it('are programmed, re-given without a change, removed; clashes with local peers are set aside and named', async () => {
    const c = new StandIn();
    const { d, sock } = await start('a', c, [{ name: 'static4', underlay: '198.51.100.44', podCidr: '10.244.4.0/24', vtepMac: '0e:00:0a:f4:44:00' }]);
    expect(c.onPeers).not.toBeNull();
    const names = (): string[] => d.sw.peerList.map((p) => p.name).sort();
    expect(d.setControlPeers([peer(2), peer(3)]).peersAdded).toEqual(['n2', 'n3']);
    expect(names()).toEqual(['n2', 'n3', 'static4']);
    // The same set again (a resync): nothing changes, nothing is counted.
    expect(d.setControlPeers([peer(3), peer(2)]).peersAdded).toEqual([]);
    const s1 = (await request(sock, { cmd: 'control-status' })) as { peerChanges: number; appliedPeers: number };
    expect([s1.peerChanges, s1.appliedPeers]).toEqual([1, 2]);
    // n5 claims the static peer's subnet: set aside, named, the static one stays.
    const clash: PeerSpec = { ...peer(5), podCidr: Cidr.parse('10.244.4.0/24') };
    d.setControlPeers([peer(2), peer(3), clash]);
    expect(names()).toEqual(['n2', 'n3', 'static4']);
    const s2 = (await request(sock, { cmd: 'control-status' })) as { refusedByLocal: Record<string, string> };
    expect(Object.keys(s2.refusedByLocal)).toEqual(['n5']);
    expect(s2.refusedByLocal['n5']).toMatch(/^podCidr: overlaps peer static4/);
    // A lease gone: its peer goes; the changed one (new VTEP MAC) is replaced.
    const moved: PeerSpec = { ...peer(2), vtepMac: parseMac('0e:00:0a:f4:22:00') };
    const ch = d.setControlPeers([moved]);
    expect([ch.peersRemoved, ch.peersChanged]).toEqual([['n3'], ['n2']]);
    expect(d.sw.peerList.find((p) => p.name === 'n2')!.mac).toBe(parseMac('0e:00:0a:f4:22:00'));
    await d.stop();
    expect(c.closed).toBe(true);
  });

  it('a node without control.etcd answers control-status with ERR_CONTROL_DISABLED', async () => {
    const { d, sock } = await start('b');
    await expect(request(sock, { cmd: 'control-status' })).rejects.toMatchObject({ code: 'ERR_CONTROL_DISABLED' });
    await d.stop();
  });
});
