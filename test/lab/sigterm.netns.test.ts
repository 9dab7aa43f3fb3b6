// The daemon's lifecycle in a lab (two flatnet nodes and a kernel node, one pod each):
//   - SIGTERM: a clean exit within 5 s; the TAP `flatnet0`, its address and the cluster route
//     go with it (and the control socket); the node's pods are cut off while it is down; a
//     restart with the same config forwards again with the same VTEP MAC;
//   - `--keep`: the TAP, its address and route stay after SIGTERM, and a restart takes them over;
//   - no `vtepMac` in the config: the daemon generates one, persists it in its stateDir, and
//     comes back with it after a restart, so peers programmed with it need no change.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { ipNs, run } from '../../src/lab/exec.js';
import { spawnDaemon, stopDaemon, vtepMacFile, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { ping } from '../../src/lab/runner.js';
import { writeState, type LabNode, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();

describe.skipIf(skip !== null)(`daemon SIGTERM, --keep and restart${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('st');
  let lab: LabState;
  let n1: LabNode, n2: LabNode, k: LabNode;

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 1 });
    [n1, n2, k] = lab.nodes as [LabNode, LabNode, LabNode];
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  const status = async (n: LabNode): Promise<{ vtepMac: string }> => (await request(n.socket!, { cmd: 'status' })) as { vtepMac: string };
  const tapExists = (n: LabNode): boolean => {
    try {
      ipNs(n.ns, 'link', 'show', 'flatnet0');
      return true;
    } catch {
      return false;
    }
  };
  const clusterRoute = (n: LabNode): string => ipNs(n.ns, 'route', 'show', '10.244.0.0/16').trim();
  const start = async (n: LabNode, keep = false): Promise<void> => {
    lab.daemons[n.name] = spawnDaemon(n, { keep });
    writeState(lab); // so that labDown finds the new pid
    await waitReady(n, lab.daemons[n.name]!.pid);
  };
  const term = async (n: LabNode): Promise<void> => {
    const logBefore = readFileSync(n.log, 'utf8').length;
    const r = await stopDaemon(n, lab.daemons[n.name]!.pid, 'SIGTERM', 10_000);
    expect(r.exited, `${n.name} did not exit after SIGTERM`).toBe(true);
    expect(r.ms).toBeLessThan(5000);
    const log = readFileSync(n.log, 'utf8').slice(logBefore);
    expect(log).toContain('"msg":"vtep down"');
    expect(log).not.toContain('cleanup did not finish');
  };
  const reaches = async (from: LabNode, to: LabNode): Promise<boolean> => (await ping(from.pods[0]!, to.pods[0]!.ip, 2)).received === 2;

  it('SIGTERM: exits within 5 s and removes the TAP, its route and the control socket; restart resumes with the same VTEP MAC', async () => {
    const mac = (await status(n1)).vtepMac;
    expect(mac).toBe(n1.vtepMac);
    expect(tapExists(n1)).toBe(true);
    expect(clusterRoute(n1)).toContain('dev flatnet0');
    expect(await reaches(n2, n1)).toBe(true);

    await term(n1);
    expect(tapExists(n1)).toBe(false);
    expect(clusterRoute(n1)).toBe('');
    expect(existsSync(n1.socket!)).toBe(false);
    expect(await reaches(n2, n1)).toBe(false); // fail closed: nobody forwards for n1's pods

    await start(n1);
    expect((await status(n1)).vtepMac).toBe(mac);
    expect(await reaches(n2, n1)).toBe(true);
    expect(await reaches(k, n1)).toBe(true);
    expect(await reaches(n1, k)).toBe(true);
  });

  it('--keep: the TAP, its address and route survive SIGTERM, and a restart takes them over', async () => {
    await term(n1);
    await start(n1, true);
    expect(await reaches(n2, n1)).toBe(true);
    await term(n1);
    expect(tapExists(n1)).toBe(true);
    const addrs = JSON.parse(ipNs(n1.ns, '-j', 'addr', 'show', 'dev', 'flatnet0')) as { addr_info: { local: string; prefixlen: number }[] }[];
    expect(addrs[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.244.1.0/32']);
    expect(clusterRoute(n1)).toContain('dev flatnet0');
    expect(await reaches(n2, n1)).toBe(false);

    await start(n1);
    expect((await status(n1)).vtepMac).toBe(n1.vtepMac);
    expect(await reaches(n2, n1)).toBe(true);
    expect(await reaches(k, n1)).toBe(true);
  });

  it('no vtepMac in the config: generated once, kept in stateDir, the same after a restart (peers need no change)', async () => {
    await term(n2);
    const cfg = JSON.parse(readFileSync(n2.config!, 'utf8')) as Record<string, unknown>;
    delete cfg['vtepMac'];
    writeFileSync(n2.config!, JSON.stringify(cfg, null, 2));
    const file = vtepMacFile(lab, n2);
    rmSync(file, { force: true });

    await start(n2);
    const generated = (await status(n2)).vtepMac;
    expect(generated).not.toBe(n2.vtepMac);
    expect(parseInt(generated.slice(0, 2), 16) & 0x03).toBe(0x02); // locally administered unicast
    expect(readFileSync(file, 'utf8').trim()).toBe(generated);

    // Tell the peers once, as a control plane would: n1 over its control socket, the kernel
    // node's flannel triple (neighbour and FDB entry) with iproute2.
    await request(n1.socket!, { cmd: 'peer-add', peer: { name: 'n2', underlay: n2.underlayIp, podCidr: n2.podCidr, vtepMac: generated } });
    ipNs(k.ns, 'neigh', 'replace', n2.vtepIp, 'lladdr', generated, 'dev', k.vxlanDev!, 'nud', 'permanent');
    run('bridge', ['-n', k.ns, 'fdb', 'del', n2.vtepMac, 'dev', k.vxlanDev!]);
    run('bridge', ['-n', k.ns, 'fdb', 'add', generated, 'dev', k.vxlanDev!, 'dst', n2.underlayIp, 'self', 'permanent']);
    // The VTEP MAC is also the pods' gateway MAC in L3 mode: n2's pod had the old one in its ARP
    // cache. The daemon's gratuitous ARP at start updated it, so no flush is needed.
    expect(ipNs(n2.pods[0]!.ns, 'neigh', 'show', n2.gateway)).toContain(generated);
    expect(await reaches(n1, n2)).toBe(true);
    expect(await reaches(k, n2)).toBe(true);

    await term(n2);
    await start(n2);
    expect((await status(n2)).vtepMac).toBe(generated);
    expect(readFileSync(file, 'utf8').trim()).toBe(generated);
    expect(await reaches(n1, n2)).toBe(true);
    expect(await reaches(k, n2)).toBe(true);
    expect(await reaches(n2, k)).toBe(true);
  });
});
