// The daemon's CNI side over its control socket, as the plugin drives it (in-process, test
// ports): alloc then attach binds the pod's IP/MAC on a switch port and records the pod's
// identity; 20 concurrent ADDs get 20 distinct addresses; DEL is idempotent; GC releases what is
// not valid; a restart re-attaches the recorded pods with the same addresses; `show ipam` lists them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/daemon/config.js';
import { request } from '../../src/daemon/control.js';
import type { IpamSnapshot } from '../../src/daemon/ipam.js';
import { render } from '../../src/daemon/show.js';
import { VtepDaemon } from '../../src/daemon/vtep.js';
import { FakeHost } from '../support/fake-host.js';

const root = mkdtempSync(join(tmpdir(), 'flatnet-cni-daemon-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const K8S = { namespace: 'default', name: 'web', uid: '0b5e', infraContainerId: 'c1' };

describe('the daemon as the CNI plugin sees it', () => {
  let d: VtepDaemon, host: FakeHost, dir: string, file: string, sock: string;
  const ask = (cmd: string, args: Record<string, unknown> = {}): Promise<unknown> => request(sock, { cmd, ...args });
  const start = async (h = new FakeHost(), podCidr = '10.244.1.0/24'): Promise<void> => {
    host = h;
    writeFileSync(file, JSON.stringify({
      node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr, vtepMac: '0e:00:0a:f4:01:00',
      stateDir: dir, controlSocket: sock, pods: [{ name: 'static', interface: 'vs', ip: '10.244.1.2', mac: '02:00:00:00:01:02' }],
    }));
    d = await VtepDaemon.start(loadConfig(file), { log: pino({ level: 'silent' }), configPath: file, host });
  };
  const add = async (containerId: string, ifname = 'eth0', k8s: typeof K8S | null = null): Promise<Record<string, unknown>> => {
    const lease = (await ask('cni-alloc', { containerId, ifname, k8s })) as { ip: string };
    const hostIf = `fl${containerId.slice(0, 8)}`;
    const mac = `02:00:0a:f4:01:${Number(lease.ip.split('.')[3]).toString(16).padStart(2, '0')}`;
    return { lease, attach: await ask('cni-attach', { containerId, ifname, name: k8s?.name ?? hostIf, interface: hostIf, ip: lease.ip, mac, ipam: 'flatnet', k8s }) };
  };
  const podPorts = (): string[] => d.sw.portList.filter((p) => p.role === 'pod').map((p) => p.name);

  beforeEach(async () => {
    dir = mkdtempSync(join(root, 'n-'));
    file = join(dir, 'n1.json');
    sock = join(dir, 'n1.sock');
    await start();
  });
  afterEach(async () => { await d.stop(); });

  it('allocates (never the gateway or the file\'s pod address), attaches with the pod identity, and lists it', async () => {
    const r = await add('c1', 'eth0', K8S);
    expect(r).toMatchObject({
      lease: { ip: '10.244.1.3', prefixLen: 24, gateway: '10.244.1.1', mtu: 1450, podCidr: '10.244.1.0/24', existing: false },
      attach: { name: 'web', interface: 'flc1', ip: '10.244.1.3', existing: false },
    });
    expect(podPorts()).toEqual(['static', 'web']);
    expect(d.desired.sections.pods.get('web')!.k8s).toEqual({ namespace: 'default', name: 'web', uid: '0b5e', containerId: 'c1', ifname: 'eth0' });
    const snap = (await ask('show', { what: 'ipam' })) as IpamSnapshot;
    expect(snap).toMatchObject({ podCidr: '10.244.1.0/24', capacity: 253, free: 251, allocations: [{ ip: '10.244.1.3', containerId: 'c1', ifname: 'eth0', pod: 'web', namespace: 'default', k8sName: 'web', attached: true }] });
    expect(render('ipam', snap)).toContain('10.244.1.3 container c1 if eth0 k8s default/web pod web dev flc1 ipam flatnet since');
    expect(await ask('status')).toMatchObject({ producers: { cni: { pods: 1 } } });
  });

  it('answers a repeated ADD with the same address and attachment, and gives 20 concurrent ADDs 20 addresses', async () => {
    const first = await add('c1');
    expect(await add('c1')).toMatchObject({ lease: { ip: (first.lease as { ip: string }).ip, existing: true }, attach: { existing: true } });
    const ids = Array.from({ length: 20 }, (_v, i) => `p${i}`);
    const leases = await Promise.all(ids.map((containerId) => ask('cni-alloc', { containerId, ifname: 'eth0', k8s: null }) as Promise<{ ip: string }>));
    expect(new Set(leases.map((l) => l.ip)).size).toBe(20);
    expect(leases.map((l) => l.ip)).not.toContain('10.244.1.2');
  });

  it('DEL detaches and releases, and again is not an error; an unknown container is not either', async () => {
    await add('c1', 'eth0', K8S);
    expect(await ask('cni-del', { containerId: 'c1', ifname: 'eth0' })).toEqual({ released: '10.244.1.3', detached: 'web' });
    expect(await ask('cni-del', { containerId: 'c1', ifname: 'eth0' })).toEqual({ released: null, detached: null });
    expect(await ask('cni-del', { containerId: 'never', ifname: 'eth0' })).toEqual({ released: null, detached: null });
    expect(podPorts()).toEqual(['static']);
    expect(((await ask('show', { what: 'ipam' })) as IpamSnapshot).allocations).toEqual([]);
    await expect(ask('cni-get', { containerId: 'c1', ifname: 'eth0' })).rejects.toMatchObject({ code: 'ERR_CNI_UNKNOWN_CONTAINER' });
  });

  it('refuses to attach an address someone else holds, and a veth that cannot be opened leaves nothing attached', async () => {
    await expect(ask('cni-attach', { containerId: 'x', ifname: 'eth0', name: 'x', interface: 'flx', ip: '10.244.1.2', mac: '02:00:00:00:09:09', ipam: 'delegated', k8s: null }))
      .rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'ip' });
    await ask('cni-alloc', { containerId: 'c9', ifname: 'eth0', k8s: null });
    host.failOn.add('flc9');
    await expect(ask('cni-attach', { containerId: 'c9', ifname: 'eth0', name: 'flc9', interface: 'flc9', ip: '10.244.1.3', mac: '02:00:00:00:09:03', ipam: 'flatnet', k8s: null }))
      .rejects.toMatchObject({ code: 'ENODEV' });
    expect(podPorts()).toEqual(['static']);
    expect(await ask('cni-get', { containerId: 'c9', ifname: 'eth0' })).toMatchObject({ attached: false, record: { ip: '10.244.1.3', pod: null } });
  });

  it('names a pod after its host interface when another attachment has the Kubernetes name', async () => {
    await add('c1', 'eth0', K8S);
    const other = await add('c2', 'eth0', { ...K8S, namespace: 'prod', infraContainerId: 'c2' });
    expect(other).toMatchObject({ attach: { name: 'flc2' } });
    expect(podPorts()).toEqual(['static', 'web', 'flc2']);
  });

  it('GC releases and detaches every attachment not in the valid list', async () => {
    await add('c1');
    await add('c2');
    await add('c3');
    const r = (await ask('cni-gc', { valid: [{ containerId: 'c2', ifname: 'eth0' }] })) as { released: { containerId: string }[] };
    expect(r.released.map((x) => x.containerId)).toEqual(['c1', 'c3']);
    expect(podPorts()).toEqual(['static', 'flc2']);
    expect(await ask('cni-status')).toEqual({ ready: true, free: 251, capacity: 253, attachments: 1 });
  });

  it('after a restart re-attaches recorded pods with the same addresses; a pod whose veth is gone keeps its address', async () => {
    await add('c1', 'eth0', K8S);
    await add('c2');
    await d.stop();
    const h = new FakeHost();
    h.missingLinks.add('flc2');
    await start(h);
    expect(podPorts()).toEqual(['static', 'web']);
    const snap = (await ask('show', { what: 'ipam' })) as IpamSnapshot;
    expect(snap.allocations.map((a) => [a.ip, a.pod, a.attached])).toEqual([['10.244.1.3', 'web', true], ['10.244.1.4', 'flc2', false]]);
    expect(await add('c1', 'eth0', K8S)).toMatchObject({ lease: { ip: '10.244.1.3', existing: true }, attach: { existing: true } });
  });

  it('STATUS is not ready when the pool is full; an ADD then fails with ERR_IPAM_EXHAUSTED and records nothing', async () => {
    await d.stop();
    dir = mkdtempSync(join(root, 'n-'));
    file = join(dir, 'n1.json');
    sock = join(dir, 'n1.sock');
    await start(new FakeHost(), '10.244.1.0/29');
    for (const c of ['c1', 'c2', 'c3', 'c4']) await ask('cni-alloc', { containerId: c, ifname: 'eth0', k8s: null });
    expect(await ask('cni-status')).toEqual({ ready: false, free: 0, capacity: 5, attachments: 4 });
    await expect(ask('cni-alloc', { containerId: 'c5', ifname: 'eth0', k8s: null })).rejects.toMatchObject({ code: 'ERR_IPAM_EXHAUSTED' });
    expect(((await ask('show', { what: 'ipam' })) as IpamSnapshot).allocations).toHaveLength(4);
  });
});
