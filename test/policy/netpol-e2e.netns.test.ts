/**
 * The Kubernetes NetworkPolicy e2e suite (test/support/netpol-cases.ts) in a real lab: one lab
 * built from fixtures/netpol/e2e.yaml (namespaces x, y, z; pods a, b, c spread over three flatnet
 * nodes, made by the CNI plugin, addresses from IPAM), and for every case:
 *   1. its policies applied to etcd with `flatnet apply`;
 *   2. waited for until every node has installed exactly them (the time from the write to the
 *      last node is measured: the bound the README states);
 *   3. the checks' ports and protocols probed for real between the case's pods (src/lab/probe.ts:
 *      TCP connects, UDP echoes between pod namespaces) and each grid compared with the case's
 *      truth table, loopback not judged (as the suite's ignoreLoopback); a mismatching grid is
 *      probed a second time with a longer timeout before it fails, as the suite's ValidateOrFail
 *      retries the whole matrix once; both grids are printed on a failure;
 *   4. the policies deleted, waited for on every node, and the same ports probed all-reachable.
 * The cases that change a policy in place or a pod's or namespace's labels (E2E_UPDATE_CASES) go
 * state by state: each state's write (the policies, or the pods and namespaces with their new
 * labels) waited for until every node has compiled it (the time measured), then probed.
 * SCTP checks need the kernel's sctp module; where it is missing (these machines: "Protocol not
 * supported") the case is reported as skipped with that reason.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { FlatnetError } from '../../src/errors.js';
import { inNs, inNsAsync } from '../../src/lab/exec.js';
import { labEtcdEndpoints, labEtcdSpecs } from '../../src/lab/etcd-lab.js';
import { flatnetMain } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { loadManifest } from '../../src/lab/manifest.js';
import { gridDiff, ProbeServers, probeMatrix, renderGrid, type Grid, type ProbePod, type ProbeProtocol } from '../../src/lab/probe.js';
import { allPods, flatnetNodes, type LabState } from '../../src/lab/topology.js';
import type { NetworkPolicy } from '../../src/policy/objects.js';
import type { PolicyRow } from '../../src/policy/view.js';
import { E2E_CASES, E2E_UPDATE_CASES, policiesOf, type Check, type E2eCase, type LabelChange } from '../support/netpol-cases.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();
const FIXTURE = join(REPO_ROOT, 'fixtures/netpol/e2e.yaml');
/** Seconds a probe waits for a blocked connection (a UDP probe sends three times, each waiting this long). */
const PROBE_TIMEOUT_S = 0.4;
const RETRY_TIMEOUT_S = 1.5;
/** A policy change not in force on every node after this long fails the case (the target is 1 s). */
const IN_FORCE_LIMIT_MS = 5000;

describe.skipIf(skip !== null)(`the NetworkPolicy e2e suite in a lab from fixtures/netpol/e2e.yaml, probed for real${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('p');
  let lab: LabState;
  let byName = new Map<string, ProbePod>();
  let servers: ProbeServers | null = null;
  let sctpMissing: string | null = null;
  const inForceMs: number[] = [], removedMs: number[] = [], applyMs: number[] = [];
  /** Label changes (pods', namespaces') and policy updates in place: ms from `flatnet apply` returning to every node compiled with them. */
  const labelMs: number[] = [], updateMs: number[] = [];
  const retried: string[] = [];

  const store = (...args: string[]): string => inNs(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), ...args, '--etcd', labEtcdEndpoints(lab).join(',')]);
  const storeAsync = async (...args: string[]): Promise<void> => {
    const r = await inNsAsync(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), ...args, '--etcd', labEtcdEndpoints(lab).join(',')]);
    if (r.code !== 0) throw new Error(`flatnet ${args.join(' ')}: ${r.stderr}`);
  };

  /** Every flatnet node's installed policies, as sorted "namespace/name" lists. */
  const installed = async (): Promise<string[][]> => Promise.all(flatnetNodes(lab).map(async (n) =>
    ((await request(n.socket!, { cmd: 'show', what: 'policy' }, 2000)) as PolicyRow[]).map((r) => `${r.namespace}/${r.name}`).sort()));

  /** Polls `read` every 10 ms until `done` holds of what it read; returns the ms since `t0` (fails after IN_FORCE_LIMIT_MS). */
  const until = async <T>(read: () => Promise<T>, done: (got: T) => boolean, t0: number, what: string): Promise<number> => {
    for (;;) {
      const got = await read();
      if (done(got)) return performance.now() - t0;
      if (performance.now() - t0 > IN_FORCE_LIMIT_MS) throw new Error(`${what} within ${IN_FORCE_LIMIT_MS} ms: ${JSON.stringify(got)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  /** Polls until every node has exactly `want` installed; returns the ms since `t0`. */
  const untilInstalled = async (want: string[], t0: number): Promise<number> => {
    const w = JSON.stringify([...want].sort());
    return until(installed, (got) => got.every((g) => JSON.stringify(g) === w), t0, `policies ${w} not installed on every node`);
  };

  /** Every flatnet node's compile count (status: cluster.compiles). */
  const compiles = async (): Promise<number[]> => Promise.all(flatnetNodes(lab).map(async (n) =>
    ((await request(n.socket!, { cmd: 'status' }, 2000)) as { cluster: { compiles: number } }).cluster.compiles));

  /** Polls until every node has compiled its tables again since `before`; returns the ms since `t0`. */
  const untilCompiled = async (before: number[], t0: number): Promise<number> =>
    until(compiles, (got) => got.every((n, i) => n > before[i]!), t0, `not compiled again on every node since ${JSON.stringify(before)}`);

  /** apply writes `objects` to the store with one `flatnet apply` (their file, `file`, in the lab's state directory). */
  const apply = (objects: readonly object[], file: string): void => {
    const f = join(lab.stateDir, file);
    writeFileSync(f, objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    store('apply', '-f', f);
  };
  const policyObjects = (policies: readonly NetworkPolicy[]): object[] => policies.map((p) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...p }));

  /**
   * relabel writes the pods and namespaces `changes` names back to the store (as the store has
   * them) with the changes' labels added, or taken off again (`undo`), in one `flatnet apply`.
   */
  const relabel = (changes: readonly LabelChange[], undo: boolean): void => {
    const objs = changes.map((ch) => {
      const [ns, pod] = ch.kind === 'Pod' ? ch.name.split('/') : [ch.name, undefined];
      const o = JSON.parse(ch.kind === 'Pod' ? store('get', 'pod', pod!, '-n', ns!, '-o', 'json') : store('get', 'namespace', ns!, '-o', 'json')) as { metadata: { labels?: Record<string, string> } };
      const labels = { ...o.metadata.labels };
      for (const [k, v] of Object.entries(ch.add)) if (undo) delete labels[k]; else labels[k] = v;
      return { ...o, metadata: { ...o.metadata, labels } };
    });
    apply(objs, 'labels.json');
  };

  /** The truth table of a check as a grid; loopback is not judged, so it is what the lab does (reachable). */
  const expectedGrid = (c: Pick<E2eCase, 'name' | 'pods'>, chk: Check, allOpen: boolean): Grid => ({
    proto: chk.proto.toLowerCase() as ProbeProtocol, port: chk.port, pods: [...c.pods],
    reach: Object.fromEntries(c.pods.map((f) => [f, Object.fromEntries(c.pods.map((t) => [t, allOpen || f === t || chk.expect.get(f, t)]))])),
  });

  /** Probes one check's grid (a second time, slower, when it differs) and returns what differs, with both grids. */
  const probeCheck = async (c: Pick<E2eCase, 'name' | 'pods'>, chk: Check, allOpen: boolean): Promise<string | null> => {
    const pods = c.pods.map((p) => byName.get(p)!);
    const want = expectedGrid(c, chk, allOpen);
    const proto = chk.proto.toLowerCase() as ProbeProtocol;
    let got = await probeMatrix(pods, chk.port, proto, PROBE_TIMEOUT_S);
    if (gridDiff(got, want).length > 0) {
      retried.push(`${c.name} ${chk.proto}/${chk.port}${allOpen ? ' (reopened)' : ''}: ${gridDiff(got, want).join('; ')}`);
      got = await probeMatrix(pods, chk.port, proto, RETRY_TIMEOUT_S);
    }
    const diff = gridDiff(got, want);
    if (diff.length === 0) return null;
    return `${allOpen ? 'after deleting the policies, ' : ''}${chk.proto}/${chk.port}:\nexpected\n${renderGrid(want)}\nprobed (twice)\n${renderGrid(got, want)}\n${diff.join('\n')}`;
  };

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, nodes: 3, kernelNodes: 0, etcd: 1, leaseTtlSeconds: 5, manifest: loadManifest(FIXTURE) });
    byName = new Map(allPods(lab).map((p) => [p.name, { name: p.name, netns: p.ns, ip: p.ip }]));
    // Every node has every Pod with its address before the first policy.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const st = await Promise.all(flatnetNodes(lab).map(async (n) => (await request(n.socket!, { cmd: 'status' })) as { cluster: { objects: { Pod: number } } }));
      const pods = (JSON.parse(store('get', 'pods', '-A', '-o', 'json')) as { items: { status?: { podIP?: string } }[] }).items;
      if (st.every((s) => s.cluster.objects.Pod === 9) && pods.filter((p) => p.status?.podIP !== undefined).length === 9) break;
      if (Date.now() > deadline) throw new Error('the nodes did not see the manifest pods with their addresses');
      await new Promise((r) => setTimeout(r, 100));
    }
    servers = await ProbeServers.start([...byName.values()], [80, 81]);
    try {
      await probeMatrix([byName.get('x/a')!, byName.get('x/b')!], 80, 'sctp', 0.2);
    } catch (e) {
      if (!(e instanceof FlatnetError && e.code === 'ERR_PROBE_UNSUPPORTED')) throw e;
      sctpMissing = e.message;
    }
  }, 180_000);

  afterAll(async () => {
    servers?.stop();
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
    if (inForceMs.length > 0) {
      const q = (xs: number[], f: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))]!;
      const all = inForceMs.map((x, i) => x + applyMs[i]!);
      console.log([
        `policy changes in force on every node (${inForceMs.length} applies, 3 nodes), ms after \`flatnet apply\` returned: median ${q(inForceMs, 0.5).toFixed(0)}, p90 ${q(inForceMs, 0.9).toFixed(0)}, max ${Math.max(...inForceMs).toFixed(0)}`,
        `  from the start of \`flatnet apply\` (a new process, its etcd connection and the write included): median ${q(all, 0.5).toFixed(0)}, max ${Math.max(...all).toFixed(0)}`,
        `  deletions, after \`flatnet delete\` returned: median ${q(removedMs, 0.5).toFixed(0)}, max ${Math.max(...removedMs).toFixed(0)}`,
        ...(labelMs.length > 0 ? [`label changes (pods, namespaces; ${labelMs.length}) compiled on every node, ms after \`flatnet apply\` returned: median ${q(labelMs, 0.5).toFixed(0)}, max ${Math.max(...labelMs).toFixed(0)}`] : []),
        ...(updateMs.length > 0 ? [`policies updated in place (${updateMs.length}) compiled on every node: median ${q(updateMs, 0.5).toFixed(0)}, max ${Math.max(...updateMs).toFixed(0)}`] : []),
        `grids probed a second time: ${retried.length}${retried.map((r) => `\n  ${r}`).join('')}`,
      ].join('\n'));
    }
  });

  it.for(E2E_CASES.map((c) => [c.name, c] as const))('%s', async ([, c], ctx) => {
    const checks = c.checks.filter((k) => k.proto !== 'SCTP' || sctpMissing === null);
    if (checks.length === 0) ctx.skip(`SCTP: ${sctpMissing}`);
    // ipBlock cases: their CIDRs from the addresses IPAM gave the pods.
    const policies = policiesOf(c, (p) => byName.get(p)!.ip);
    const names = policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    const t0 = performance.now();
    apply(policyObjects(policies), 'case.json');
    applyMs.push(performance.now() - t0);
    inForceMs.push(await untilInstalled(names, performance.now()));
    const wrong = (await Promise.all(checks.map((chk) => probeCheck(c, chk, false)))).filter((x) => x !== null);

    await Promise.all(policies.map((p) => storeAsync('delete', 'networkpolicy', p.metadata.name, '-n', p.metadata.namespace!)));
    removedMs.push(await untilInstalled([], performance.now()));
    const reopened = (await Promise.all(checks.map((chk) => probeCheck(c, chk, true)))).filter((x) => x !== null);
    expect([...wrong, ...reopened].join('\n\n')).toBe('');
  });

  // The suite's cases that change a policy in place, a pod's labels or a namespace's labels
  // between two checks: each state written to the store (the policies when they changed, else
  // the new labels: one write per state), waited for until every node has compiled it, probed;
  // then the policies deleted, the labels taken off, and everything probed reachable again.
  it.for(E2E_UPDATE_CASES.map((c) => [c.name, c] as const))('%s', async ([, c]) => {
    const wrong: string[] = [];
    let prev = '';
    let labelled: readonly LabelChange[] = [];
    for (const [i, step] of c.steps.entries()) {
      const policies = JSON.stringify(step.policies), added = step.labels.slice(labelled.length);
      expect(policies !== prev && added.length > 0, 'a state changes its policies or its labels, not both').toBe(false);
      const before = await compiles();
      if (policies !== prev) {
        apply(policyObjects(step.policies), 'case.json');
        const t = performance.now();
        const ms = await untilCompiled(before, t);
        if (i > 0) updateMs.push(ms);
        await untilInstalled(step.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`), performance.now());
      } else {
        relabel(added, false);
        labelMs.push(await untilCompiled(before, performance.now()));
      }
      prev = policies;
      labelled = step.labels;
      for (const chk of step.checks) {
        const w = await probeCheck(c, chk, false);
        if (w !== null) wrong.push(`state ${i + 1}: ${w}`);
      }
    }
    const last = c.steps.at(-1)!;
    await Promise.all(last.policies.map((p) => storeAsync('delete', 'networkpolicy', p.metadata.name, '-n', p.metadata.namespace!)));
    await untilInstalled([], performance.now());
    if (labelled.length > 0) {
      const before = await compiles();
      relabel(labelled, true);
      await untilCompiled(before, performance.now());
    }
    for (const chk of last.checks) {
      const w = await probeCheck(c, chk, true);
      if (w !== null) wrong.push(w);
    }
    expect(wrong.join('\n\n')).toBe('');
  });

  it('`flatnet lab probe` prints a grid per port and protocol between the manifest\'s pods, and --expect exits 1 on a mismatch', async () => {
    // The suite's "any port traffic to a server on a specific protocol": TCP into x/a open, UDP closed.
    const c = E2E_CASES.find((k) => k.name === 'should enforce ingress policy allowing any port traffic to a server on a specific protocol')!;
    apply(policyObjects(policiesOf(c, (p) => byName.get(p)!.ip)), 'cli.json');
    await untilInstalled(['x/allow-ingress-by-proto'], performance.now());
    const names = [...byName.keys()].sort();
    const grid = (proto: ProbeProtocol, open: (from: string, to: string) => boolean): string => renderGrid({ proto, port: 80, pods: names, reach: Object.fromEntries(names.map((fr) => [fr, Object.fromEntries(names.map((to) => [to, open(fr, to)]))])) });
    const tcp = grid('tcp', () => true), udp = grid('udp', (fr, to) => to !== 'x/a' || fr === 'x/a');
    const want = join(lab.stateDir, 'expected.grid');
    const probe = (): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [flatnetMain(), 'lab', 'probe', '--name', name, '--port', '80', '--protocol', 'tcp,udp,sctp', '--timeout', '0.8', '--expect', want], { encoding: 'utf8' });
    writeFileSync(want, `${tcp}\n\n${udp}\n`);
    const ok = probe();
    expect([ok.status, ok.stderr]).toEqual([0, '']);
    const out = String(ok.stdout);
    const body = (g: string): string => g.split('\n').slice(1).join('\n');
    expect(out).toContain(`TCP/80 (. reachable, X blocked, ! differs from the expected grid)\n${body(tcp)}\nmatches the expected grid\n\nUDP/80 (. reachable, X blocked, ! differs from the expected grid)\n${body(udp)}\nmatches the expected grid\n\n`);
    if (sctpMissing !== null) expect(out).toContain(`SCTP/80: skipped (${sctpMissing})\n(no expected grid for SCTP/80 in ${want})`);
    // Expect y/a to reach x/a over UDP: that cell is marked and listed, and the exit status is 1.
    writeFileSync(want, `${tcp}\n\n${grid('udp', (fr, to) => to !== 'x/a' || fr === 'x/a' || fr === 'y/a')}\n`);
    const bad = probe();
    expect(bad.status).toBe(1);
    expect(String(bad.stdout).split('\n').filter((l) => l.startsWith('y/a')).at(-1)).toBe('y/a  !    .    .    .    .    .    .    .    .');
    expect(String(bad.stdout)).toContain('1 cell(s) differ from the expected grid:\n  y/a -> x/a: expected ., got X');
  });
});
