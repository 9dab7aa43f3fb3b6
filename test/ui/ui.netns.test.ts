/// <reference lib="dom" />
// (DOM types: the page.evaluate callbacks below run in the browser.)
// `flatnet ui --lab NAME` on a real lab (2 flatnet nodes, 1 kernel node, 2 pods each, etcd),
// looked at through Debian's chromium driven headless by playwright-core: what a person checks.
// Every node and pod is drawn; clicking a pod shows its IP, MAC, veth and MTU; the tunnel's rate
// and the pod's counters move while a ping runs; the encapsulation of n1p0 -> n2p0 shows VNI 1,
// the peer's underlay address and 50 bytes of overhead, and the real trace's frag-needed for a
// 1500-byte DF packet; the packet path of a spoofed source ends in the anti-spoof drop; a
// NetworkPolicy and a Service applied to the store show up with the pods they select and their
// endpoints; a node whose daemon is stopped is shown down within a few seconds; the server
// survives the lab being torn down. Screenshots go to test/artifacts/ui/ (git-ignored).
//
// Chromium talks only to the server on 127.0.0.1: background networking, component updates and
// DNS are off, and every request to another origin is aborted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { labEtcdEndpoints, labEtcdSpecs, labPodNamespace } from '../../src/lab/etcd-lab.js';
import { inNs } from '../../src/lab/exec.js';
import { flatnetMain } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'test/artifacts/ui');

function skipReason(): string | null {
  const lab = labSkipReason();
  if (lab !== null) return lab;
  if (!existsSync(CHROMIUM) && process.env['FLATNET_REQUIRE_ORACLES'] !== '1') return `no ${CHROMIUM} (install Debian's chromium with .ci/setup)`;
  return null;
}
const skip = skipReason();

/** The page's scripts (src/ui/web, their own tsconfig): rebuilt when a source is newer, as ensureDist does for dist/. */
function ensureWeb(): void {
  const out = join(REPO_ROOT, 'dist/ui-web/web/app.js');
  const src = join(REPO_ROOT, 'src/ui/web');
  const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs), statSync(join(REPO_ROOT, 'src/ui/model.ts')).mtimeMs);
  if (!existsSync(out) || statSync(out).mtimeMs < newest) execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', join(src, 'tsconfig.json')], { stdio: 'ignore' });
}

describe.skipIf(skip !== null)(`flatnet ui in a browser, on a running lab${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('u');
  let lab: LabState;
  let server: ChildProcess | null = null;
  let url = '';
  let browser: Browser | null = null;
  let page: Page;
  const shot = async (file: string): Promise<void> => { await page.screenshot({ path: join(ARTIFACTS, file), fullPage: true }); };
  const tab = async (view: string): Promise<void> => { await page.click(`#tabs button[data-view="${view}"]`); };
  const store = (...args: string[]): string => inNs(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), ...args, '--etcd', labEtcdEndpoints(lab).join(',')]);

  beforeAll(async () => {
    ensureDist();
    ensureWeb();
    mkdirSync(ARTIFACTS, { recursive: true });
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 2, etcd: 1 });
    // The command as a user runs it; port 0: the system picks a free one, and the first line says which.
    server = spawn(process.execPath, [flatnetMain(), 'ui', '--lab', name, '--listen', '127.0.0.1:0', '--poll-ms', '500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m !== null) resolve(m[1]!);
      });
      server!.once('exit', (code) => reject(new Error(`flatnet ui exited (${String(code)}): ${out}`)));
      setTimeout(() => reject(new Error(`flatnet ui said nothing in 15 s: ${out}`)), 15_000);
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-default-apps', '--disable-sync',
        '--disable-extensions', '--disable-domain-reliability', '--disable-client-side-phishing-detection', '--metrics-recording-only', '--no-first-run', '--no-default-browser-check',
        '--no-proxy-server', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
    });
    const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
    const origin = new URL(url).origin;
    await context.route('**/*', (route) => (new URL(route.request().url()).origin === origin ? route.continue() : route.abort()));
    page = await context.newPage();
    await page.goto(url);
    await page.waitForSelector('svg#topology');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (server !== null && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('draws every node and every pod of the lab; clicking a pod shows its IP, MAC, veth and MTU', async () => {
    for (const n of lab.nodes) {
      await page.waitForSelector(`g.node[data-node="${n.name}"][data-up="true"]`, { timeout: 5000 });
      for (const p of n.pods) expect(await page.isVisible(`g.pod[data-pod="${p.name}"]`), p.name).toBe(true);
    }
    expect(await page.locator('g.node.kernel').getAttribute('data-node')).toBe('n3');
    const pod = lab.nodes[0]!.pods[0]!;
    await page.click(`g.pod[data-pod="${pod.name}"]`);
    await page.waitForSelector(`#pod-details[data-pod="${pod.name}"]`);
    expect(await page.textContent('#pod-ip')).toBe(pod.ip);
    expect(await page.textContent('#pod-mac')).toBe(pod.mac);
    expect(await page.textContent('#pod-veth')).toBe(pod.hostIf);
    expect(await page.textContent('#pod-mtu')).toBe(String(lab.podMtu));
    // A kernel node's pod is shown from the lab's plan.
    await page.click('g.pod[data-pod="n3p0"]');
    expect(await page.textContent('#pod-ip')).toBe('10.244.3.10');
  });

  it('the tunnel rate and the pod counters move while a ping runs', async () => {
    const card = (): Promise<string | null> => page.textContent('g.pod[data-pod="n1p0"]');
    const before = await card();
    const ping = spawn('ip', ['netns', 'exec', lab.nodes[0]!.pods[0]!.ns, 'ping', '-q', '-c', '300', '-i', '0.05', lab.nodes[1]!.pods[0]!.ip], { stdio: 'ignore' });
    try {
      await page.waitForFunction(() => Number(document.querySelector('g.tunnel[data-tunnel="n1-n2"]')?.getAttribute('data-pps') ?? 0) > 5, undefined, { timeout: 8000 });
      expect(await page.getAttribute('g.tunnel[data-tunnel="n1-n2"]', 'class')).toContain('active');
      expect(await page.textContent('g.tunnel[data-tunnel="n1-n2"] .tunnel-label')).toMatch(/^VXLAN vni 1 · \d+(\.\d+)? k?pps · [\d.]+ [kM]?b\/s$/);
      expect(await card()).not.toBe(before);
      await shot('cluster.png');
    } finally {
      ping.kill();
    }
  });

  it('the pipeline view: the stages in order with their counters, and the ports', async () => {
    await tab('pipeline');
    await page.waitForSelector('.stage[data-stage="transmit"]');
    const stages = await page.locator('.stage').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['stage']));
    expect(stages).toEqual(['ingress', 'service-nat', 'policy-egress', 'route', 'policy-ingress', 'egress', 'transmit']);
    expect(Number((await page.textContent('[data-counter="encapsulated"]'))!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(await page.isVisible('#ports tr[data-port="n1p0"]')).toBe(true);
    await shot('pipeline.png');
  });

  it('the encapsulation of n1p0 -> n2p0: VNI, the peer underlay address, 50 bytes, and frag-needed for 1500 DF from the real trace', async () => {
    await tab('encap');
    await page.selectOption('#encap-from', 'n1p0');
    await page.selectOption('#encap-to', 'n2p0');
    await page.waitForSelector('#encap-vni');
    expect(await page.textContent('#encap-vni')).toBe('1');
    expect(await page.textContent('#encap-peer')).toBe('198.51.100.2');
    expect(await page.textContent('#encap-overhead')).toContain('50 bytes');
    expect(await page.locator('.header-card.overhead').count()).toBe(4);
    expect(await page.textContent('.header-card.vxlan')).toContain('bytes 42–49');
    expect(await page.textContent('#encap-mtu .mtu-eq')).toBe('underlay MTU 1500 − 50 (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14) = pod MTU 1450');
    const probe = await page.textContent('#encap-probe');
    expect(probe).toContain('drop mtu_exceeded');
    expect(probe).toContain('next-hop MTU 1450');
    await shot('encap.png');
    // Bad input from the API, as the daemon judges it (the trace grammar) or the server does (no such node).
    const bad = await fetch(`${url}api/encap?from=n1p0&flow=${encodeURIComponent('udp to garbage')}`);
    expect([bad.status, ((await bad.json()) as { error: { code: string } }).error.code]).toEqual([400, 'ERR_TRACE_PACKET']);
    const none = await fetch(`${url}api/nodes/n7/pipeline`);
    expect([none.status, ((await none.json()) as { error: { message: string } }).error.message]).toEqual([404, 'no node named "n7"']);
  });

  it('the packet path: n1p0 -> n2p0 crosses both VTEPs and is delivered; a spoofed source is dropped by the anti-spoof check', async () => {
    await tab('path');
    await page.selectOption('#path-from', 'n1p0');
    await page.selectOption('#path-to', 'n2p0');
    await page.waitForSelector('#path-outcome');
    await page.waitForFunction(() => document.querySelector('#path-outcome')?.textContent === 'outcome: deliver');
    const labels = await page.locator('#hops li').evaluateAll((els) => els.map((e) => `${(e as HTMLElement).dataset['kind']}:${(e as HTMLElement).dataset['label']}`));
    expect(labels[0]).toBe('pod:n1p0');
    expect(labels).toContain('vtep:VTEP n1');
    expect(labels).toContain('vtep:VTEP n2');
    expect(labels[labels.length - 1]).toBe('pod:n2p0');
    await shot('path.png');
    await page.fill('#path-src', '10.244.9.9');
    await page.click('#path-go');
    await page.waitForFunction(() => document.querySelector('#path-outcome')?.textContent?.includes('spoof_src_ip') === true, undefined, { timeout: 5000 });
    expect(await page.textContent('#path-outcome')).toBe("dropped at n1 ingress: spoof_src_ip — pod packet whose source IP is not the pod's");
    expect(await page.locator('#hops li.failed').getAttribute('data-label')).toBe('ingress');
    expect(await page.textContent('g.node.dropsite')).toContain('ingress: spoof_src_ip');
    await shot('path-spoof.png');
  });

  it('policies and Services from the store: which pods a policy selects, a Service with its ClusterIP and endpoints', async () => {
    const ns = labPodNamespace(name);
    const t0 = Date.now();
    const published = (): number => (JSON.parse(store('get', 'pods', '-n', ns, '-o', 'json')) as { items: { status?: { podIP?: string } }[] }).items.filter((p) => p.status?.podIP !== undefined).length;
    while (published() < 4 && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
    const app: Record<string, string> = { n1p0: 'client', n1p1: 'other', n2p0: 'other', n2p1: 'web' };
    const docs: unknown[] = [
      ...lab.nodes.filter((n) => n.kind === 'flatnet').flatMap((n) => n.pods).map((p) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: ns, labels: { app: app[p.name]! } }, spec: { containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 80 }] }] } })),
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web-from-clients', namespace: ns }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'http' }] }] } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } },
    ];
    const f = join(lab.stateDir, 'ui-objects.json');
    writeFileSync(f, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    store('apply', '-f', f);
    const n2 = lab.nodes[1]!;
    while (Date.now() - t0 < 20_000 && ((await request(n2.socket!, { cmd: 'show', what: 'services' })) as unknown[]).length === 0) await new Promise((r) => setTimeout(r, 100));
    await tab('policies');
    const row = page.locator(`section[data-node="n2"] tr[data-policy="${ns}/web-from-clients"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain(`${ns}/n2p1`);
    const svc = page.locator(`section[data-node="n1"] tr[data-service="${ns}/web:http"]`);
    await svc.waitFor({ timeout: 10_000 });
    const text = await svc.textContent();
    expect(text).toContain('10.96.0.10:80');
    expect(text).toContain('10.244.2.11:80 (n2): 0');
    await shot('policies.png');
  });

  it('a node whose daemon is stopped is shown down within a few seconds', async () => {
    await tab('cluster');
    await page.waitForSelector('g.node[data-node="n2"][data-up="true"]');
    const t0 = Date.now();
    process.kill(lab.daemons['n2']!.pid, 'SIGTERM');
    await page.waitForSelector('g.node[data-node="n2"][data-up="false"]', { timeout: 5000 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await page.textContent('g.node[data-node="n2"] .state')).toBe('● DOWN');
    await shot('node-down.png');
  });

  it('survives the lab being torn down under it', async () => {
    await labDown(name);
    await page.waitForSelector('#lab-gone', { timeout: 5000 });
    expect(server!.exitCode).toBe(null);
    const r = await fetch(`${url}api/cluster`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { labPresent: boolean }).labPresent).toBe(false);
  });
});
