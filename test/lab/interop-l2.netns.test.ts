// L2 mode through the lab: two flatnet nodes (`mode: "l2"`, one learning bridge per VNI with
// the all-zeros flood list) and a kernel node whose learning `vxlan0` is enslaved to a Linux
// bridge with its pods, one all-zeros FDB entry per peer. All pods share 10.244.0.0/16.
// Every pod pings every other pod, iperf3 runs both ways per kind of node pair, the underlay
// capture passes the tshark check, and both sides learned the other's pod MACs behind the
// right VTEP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import type { FdbRow } from '../../src/daemon/show.js';
import { run } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { labTest, renderReport, type LabReport } from '../../src/lab/runner.js';
import { allPods, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();

describe.skipIf(skip !== null)(`L2 interop with a kernel vxlan + bridge node${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('i2');
  let lab: LabState;
  let rep: LabReport;

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, mode: 'l2', nodes: 3, kernelNodes: 1, pods: 2 });
    rep = await labTest(lab, { pingCount: 2, iperfSeconds: 1, iperfBitrate: '50M' });
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('the kernel node bridges a learning vxlan0 with its pods and floods to every peer', () => {
    const k = lab.nodes[2]!;
    const [link] = JSON.parse(run('ip', ['-n', k.ns, '-d', '-j', 'link', 'show', 'vxlan0'])) as [{ master: string; linkinfo: { info_data: Record<string, unknown> } }];
    expect(link.master).toBe('cni0');
    expect(link.linkinfo.info_data).toMatchObject({ id: 1, port: 4789, learning: true });
    const fdb = JSON.parse(run('bridge', ['-n', k.ns, '-j', 'fdb', 'show', 'dev', 'vxlan0'])) as { mac: string; dst?: string }[];
    expect(fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort()).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  it('every pod reaches every other pod in the one segment', () => {
    const pings = rep.rows.filter((r) => r.check === 'ping');
    expect(pings).toHaveLength(allPods(lab).length * (allPods(lab).length - 1));
    expect(pings.filter((r) => !r.ok), renderReport(rep)).toEqual([]);
  });

  it('TCP (iperf3) both ways between flatnet nodes, flatnet and the kernel node, and on one node', () => {
    const runs = rep.rows.filter((r) => r.check === 'iperf3');
    expect(runs.map((r) => r.detail.split(':')[0])).toEqual([
      'flatnet -> flatnet', 'flatnet -> flatnet', 'flatnet -> kernel(udpcsum)', 'kernel(udpcsum) -> flatnet', 'flatnet (same node)',
    ]);
    expect(runs.filter((r) => !r.ok), renderReport(rep)).toEqual([]);
  });

  it('the underlay capture passes: VXLAN of this lab only, pod MACs inside, checksums as configured', () => {
    const c = rep.capture!;
    expect(c.problems, renderReport(rep)).toEqual([]);
    expect([c.ok, c.ports, c.vnis]).toEqual([true, [4789], [1]]);
    expect(c.innerTcp).toBeGreaterThan(1000);
    // flatnet: zero on single frames, the kernel's computed one on GSO trains (offloads on).
    expect(c.checksums['n1']!.zero).toBeGreaterThan(0);
    expect(c.checksums['n1']!.bad).toBe(0);
    expect(c.checksums['n3']!.zero + c.checksums['n3']!.bad).toBe(0);
    expect(rep.ok).toBe(true);
  });

  it('each side learned the other side\'s pod MACs behind the right VTEP', async () => {
    const [n1, , k] = lab.nodes as [LabState['nodes'][0], LabState['nodes'][0], LabState['nodes'][0]];
    const kfdb = JSON.parse(run('bridge', ['-n', k.ns, '-j', 'fdb', 'show', 'dev', 'vxlan0'])) as { mac: string; dst?: string }[];
    for (const p of n1.pods) expect(kfdb).toContainEqual(expect.objectContaining({ mac: p.mac, dst: n1.underlayIp }));
    const ffdb = (await request(n1.socket!, { cmd: 'show', what: 'fdb' })) as FdbRow[];
    for (const p of k.pods) expect(ffdb).toContainEqual(expect.objectContaining({ mac: p.mac, dst: k.underlayIp, state: 'learned' }));
    for (const p of n1.pods) expect(ffdb).toContainEqual(expect.objectContaining({ mac: p.mac, dst: null, state: 'permanent' }));
  });
});
