// flatnet-cni driven by hand the way a runtime calls it (CNI_* environment, configuration on
// stdin, run inside the node's namespace), against a lab node's daemon: one flatnet node n1 and
// one kernel-VXLAN node n2, one lab pod each. Pods made through the plugin live in namespaces of
// this file. What a runtime relies on:
//   - ADD wires a working pod (same node, the kernel node's pod, the gateway), with the result,
//     the allocation and the pod identity recorded; a repeated ADD answers the same; CHECK
//     passes and then names what was changed; DEL is idempotent and leaves nothing
//   - every supported cniVersion gets its own result spelling
//   - every bad input gets its CNI code and leaves no veth, no allocation and no port
//   - GC, STATUS, delegated IPAM (host-local) and chaining with tuning, bandwidth and portmap
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { installCni } from '../../src/cni/install.js';
import { hostIfName } from '../../src/cni/veth.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import type { LabNode, LabState } from '../../src/lab/topology.js';
import { invoke, ipamOf, links, podPorts, ref, type CniCall } from '../support/cni.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';
import { Netns } from '../support/netns.js';

const skip = labSkipReason();

describe.skipIf(skip !== null)(`flatnet-cni by hand against a lab node${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('c');
  let lab: LabState, n1: LabNode;
  const pods = new Netns('c');
  let seq = 0;
  const hostLocalDir = mkdtempSync(join(tmpdir(), 'flatnet-cni-hl-'));

  beforeAll(async () => {
    ensureDist();
    // Hand-wired lab pods: every allocation and CNI port these tests see is one they made.
    lab = await labUp({ name, nodes: 2, kernelNodes: 1, pods: 1, podsVia: 'config' });
    n1 = lab.nodes[0]!;
  });
  afterAll(async () => {
    pods.destroy();
    await labDown(name);
    rmSync(hostLocalDir, { recursive: true, force: true });
    expect(labNamespaces(name)).toEqual([]);
  });

  const conf = (cniVersion = '1.0.0', extra: Record<string, unknown> = {}): Record<string, unknown> => ({ cniVersion, name: 'cnet', type: 'flatnet', socket: n1.socket, ...extra });
  /** A new pod namespace: its name and path. */
  const pod = (): { ns: string; path: string } => {
    const ns = pods.add(`p${++seq}`);
    return { ns, path: `/run/netns/${ns}` };
  };
  const call = (command: string, id: string, path?: string, more: Partial<CniCall> = {}): CniCall => ({ command, containerId: id, netns: path, ifname: 'eth0', ...more });
  const plugin = (c: CniCall, cf: unknown): ReturnType<typeof invoke> => invoke(n1.ns, c, cf);
  const ping = (ns: string, ip: string): boolean => {
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', '3', ip], { stdio: 'ignore', timeout: 10_000 });
      return true;
    } catch {
      return false;
    }
  };
  const allocations = async (): Promise<string[]> => (await ipamOf(n1.socket!)).allocations.map((a) => `${a.ip} ${a.containerId}`);

  it('ADD wires a pod that reaches its node, a pod there and the kernel node\'s pod; CHECK, repeated ADD, DEL', async () => {
    const p = pod();
    const args = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=0b5e;K8S_POD_INFRA_CONTAINER_ID=cid1';
    const r = plugin(call('ADD', 'cid1', p.path, { args }), conf('1.1.0'));
    expect(r.rc, r.stdout + r.stderr).toBe(0);
    const hostIf = hostIfName('cid1', 'eth0');
    expect(r.out).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: hostIf, mac: expect.stringMatching(/^0a:/) as unknown }, { name: 'eth0', mac: '02:00:0a:f4:01:02', mtu: 1450, sandbox: p.path }],
      ips: [{ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
      dns: {},
    });
    expect(links(n1.ns)).toContain(hostIf);
    expect(links(p.ns).sort()).toEqual(['eth0', 'lo']);
    expect([ping(p.ns, '10.244.1.1'), ping(p.ns, '10.244.1.10'), ping(p.ns, '10.244.2.10')]).toEqual([true, true, true]);
    expect((await ipamOf(n1.socket!)).allocations).toMatchObject([{ ip: '10.244.1.2', containerId: 'cid1', ifname: 'eth0', pod: 'web', interface: hostIf, namespace: 'default', k8sName: 'web', attached: true }]);
    expect(await podPorts(n1.socket!)).toEqual(['n1p0', 'web']);

    expect(plugin(call('ADD', 'cid1', p.path, { args }), conf('1.1.0')).out).toEqual(r.out);
    expect(await podPorts(n1.socket!)).toEqual(['n1p0', 'web']);

    expect(plugin(call('CHECK', 'cid1', p.path), conf('1.1.0', { prevResult: r.out }))).toMatchObject({ rc: 0, out: null });
    pods.ip(p.ns, 'link', 'set', 'eth0', 'mtu', '1400');
    const bad = plugin(call('CHECK', 'cid1', p.path), conf('1.1.0', { prevResult: r.out }));
    expect(bad).toMatchObject({ rc: 1, out: { code: 100, msg: expect.stringContaining('eth0 has MTU 1400, not 1450') as unknown } });
    expect(plugin(call('CHECK', 'nobody', p.path), conf('1.1.0', { prevResult: r.out })).out).toMatchObject({ code: 3 });

    expect(plugin(call('DEL', 'cid1', p.path), conf('1.1.0', { prevResult: r.out }))).toMatchObject({ rc: 0, stdout: '' });
    expect(links(n1.ns)).not.toContain(hostIf);
    expect(links(p.ns)).toEqual(['lo']);
    expect(await allocations()).toEqual([]);
    expect(await podPorts(n1.socket!)).toEqual(['n1p0']);
    expect(plugin(call('DEL', 'cid1', p.path), conf('1.1.0')).rc).toBe(0);
    expect(plugin(call('DEL', 'cid1'), conf('1.1.0')).rc).toBe(0);
    expect(plugin(call('DEL', 'never-added', '/run/netns/no-such-ns'), conf('1.1.0')).rc).toBe(0);
  });

  it.each([['0.3.1', true], ['0.4.0', true], ['1.0.0', false]])('answers an ADD at cniVersion %s in that version\'s spelling (IP version field: %s)', async (v, ipVersion) => {
    const p = pod();
    const r = plugin(call('ADD', `v${v}`, p.path), conf(v));
    expect(r.rc, r.stdout).toBe(0);
    const address = expect.stringMatching(/^10\.244\.1\.\d+\/24$/) as unknown;
    expect(r.out).toMatchObject({ cniVersion: v, ips: [ipVersion ? { version: '4', address } : { address }] });
    expect('mtu' in (r.out!['interfaces'] as Record<string, unknown>[])[1]!).toBe(false);
    expect('version' in (r.out!['ips'] as Record<string, unknown>[])[0]!).toBe(ipVersion);
    expect(plugin(call('DEL', `v${v}`, p.path), conf(v)).rc).toBe(0);
    expect(await allocations()).toEqual([]);
  });

  describe('bad input: the CNI code, and nothing left behind', () => {
    const snapshot = async (ns: string): Promise<unknown> => ({ node: links(n1.ns).sort(), pod: links(ns).sort(), ipam: await allocations(), ports: await podPorts(n1.socket!) });
    it.each<[string, (p: { ns: string; path: string }) => [CniCall, unknown], number, RegExp]>([
      ['malformed JSON on stdin', (p) => [call('ADD', 'bad1', p.path), '{"cniVersion": "1.0.0", "name": '], 6, /not JSON/],
      ['no CNI_NETNS', () => [call('ADD', 'bad2'), conf()], 4, /CNI_NETNS is not set/],
      ['an invalid CNI_CONTAINERID', (p) => [call('ADD', '-x', p.path), conf()], 4, /CNI_CONTAINERID/],
      ['an unknown cniVersion', (p) => [call('ADD', 'bad3', p.path), conf('2.0.0')], 1, /cniVersion 2.0.0 is not supported/],
      ['an unsupported field', (p) => [call('ADD', 'bad4', p.path), conf('1.0.0', { ipMasq: true })], 2, /ipMasq/],
      ['a netns that does not exist', () => [call('ADD', 'bad5', '/run/netns/cnone'), conf()], 4, /CNI_NETNS: the network namespace \/run\/netns\/cnone does not exist/],
      ['a daemon that is not running', (p) => [call('ADD', 'bad6', p.path), conf('1.0.0', { socket: join(lab.dir, 'nobody.sock') })], 11, /not answering on/],
    ])('refuses %s', async (_what, make, code, msg) => {
      const p = pod();
      const before = await snapshot(p.ns);
      const [c, cf] = make(p);
      const r = plugin(c, cf);
      expect(r.rc).toBe(1);
      expect(r.out).toMatchObject({ code });
      expect(String(r.out!['msg'])).toMatch(msg);
      expect(await snapshot(p.ns)).toEqual(before);
    });

    it('refuses an interface name already taken in the netns (code 4)', async () => {
      const p = pod();
      pods.ip(p.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
      const before = await snapshot(p.ns);
      const r = plugin(call('ADD', 'taken', p.path), conf());
      expect(r.out).toMatchObject({ code: 4, msg: `CNI_IFNAME: an interface eth0 already exists in ${p.path}` });
      expect(await snapshot(p.ns)).toEqual(before);
    });

    it('refuses an ADD when the pod CIDR is full (code 11), STATUS says 50, and GC frees it all', async () => {
      const p = pod();
      const free = (await ipamOf(n1.socket!)).free;
      for (let i = 0; i < free; i++) await request(n1.socket!, { cmd: 'cni-alloc', containerId: `fill${i}`, ifname: 'eth0', k8s: null });
      const before = await snapshot(p.ns);
      const r = plugin(call('ADD', 'onetoomany', p.path), conf());
      expect(r.out).toMatchObject({ code: 11, msg: expect.stringContaining('no free address left in pod CIDR 10.244.1.0/24') as unknown });
      expect(await snapshot(p.ns)).toEqual(before);
      expect(plugin({ command: 'STATUS' }, conf('1.1.0')).out).toMatchObject({ code: 50 });
      expect(plugin({ command: 'GC' }, conf('1.1.0', { 'cni.dev/valid-attachments': [] }))).toMatchObject({ rc: 0, out: null });
      expect(await allocations()).toEqual([]);
      expect(plugin({ command: 'STATUS' }, conf('1.1.0'))).toMatchObject({ rc: 0, out: null });
      expect(plugin({ command: 'STATUS' }, conf('1.1.0', { socket: join(lab.dir, 'nobody.sock') })).out).toMatchObject({ code: 51 });
    });
  });

  it('GC releases and unplugs every attachment but the valid ones', async () => {
    const a = pod(), b = pod();
    expect(plugin(call('ADD', 'gca', a.path), conf('1.1.0')).rc).toBe(0);
    expect(plugin(call('ADD', 'gcb', b.path), conf('1.1.0')).rc).toBe(0);
    expect(plugin({ command: 'GC' }, conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'gca', ifname: 'eth0' }] })).rc).toBe(0);
    expect((await allocations()).map((x) => x.split(' ')[1])).toEqual(['gca']);
    expect(links(n1.ns)).toContain(hostIfName('gca', 'eth0'));
    expect(links(n1.ns)).not.toContain(hostIfName('gcb', 'eth0'));
    expect(links(b.ns)).toEqual(['lo']);
    expect(ping(a.ns, '10.244.2.10')).toBe(true);
    expect(plugin(call('DEL', 'gca', a.path), conf('1.1.0')).rc).toBe(0);
  });

  it('delegates IPAM to host-local (through CNI_PATH) and releases there on DEL', async () => {
    const p = pod();
    const ipam = { type: 'host-local', ranges: [[{ subnet: '10.244.1.0/24', rangeStart: '10.244.1.200', rangeEnd: '10.244.1.210', gateway: '10.244.1.1' }]], dataDir: hostLocalDir };
    const r = plugin(call('ADD', 'hl1', p.path), conf('1.0.0', { ipam }));
    expect(r.rc, r.stdout).toBe(0);
    expect(r.out).toMatchObject({ ips: [{ address: '10.244.1.200/24', gateway: '10.244.1.1' }] });
    expect((await ipamOf(n1.socket!)).allocations).toMatchObject([{ ip: '10.244.1.200', containerId: 'hl1', ipam: 'delegated', attached: true }]);
    expect(readdirSync(join(hostLocalDir, 'cnet'))).toContain('10.244.1.200');
    expect(ping(p.ns, '10.244.2.10')).toBe(true);
    expect(plugin(call('DEL', 'hl1', p.path), conf('1.0.0', { ipam })).rc).toBe(0);
    expect(readdirSync(join(hostLocalDir, 'cnet'))).not.toContain('10.244.1.200');
    expect(await allocations()).toEqual([]);
  });

  it('answers the same through the fast launcher (the daemon runs the plugin), and through its fallback when that daemon is away', async () => {
    const fast = installCni({ binDir: join(hostLocalDir, 'fast'), confDir: null, socket: n1.socket!, name: 'cnet', force: false, fast: true }).plugin;
    const away = installCni({ binDir: join(hostLocalDir, 'away'), confDir: null, socket: join(lab.dir, 'nobody.sock'), name: 'cnet', force: false, fast: true }).plugin;
    for (const bin of [fast, away]) {
      const p = pod();
      const r = invoke(n1.ns, call('ADD', 'fast1', p.path, { args: 'K8S_POD_NAME=quick' }), conf('1.1.0'), [bin]);
      expect(r.rc, r.stdout + r.stderr).toBe(0);
      expect(r.out).toMatchObject({ cniVersion: '1.1.0', interfaces: [{ name: hostIfName('fast1', 'eth0') }, { name: 'eth0', mtu: 1450, sandbox: p.path }], ips: [{ gateway: '10.244.1.1', interface: 1 }] });
      expect(ping(p.ns, '10.244.2.10')).toBe(true);
      expect((await ipamOf(n1.socket!)).allocations).toMatchObject([{ containerId: 'fast1', pod: 'quick', attached: true }]);
      expect(invoke(n1.ns, call('ADD', 'fast2', '/run/netns/cnone'), conf('1.1.0'), [bin])).toMatchObject({ rc: 1, out: { cniVersion: '1.1.0', code: 4 } });
      expect(invoke(n1.ns, call('DEL', 'fast1', p.path), conf('1.1.0'), [bin])).toMatchObject({ rc: 0, stdout: '' });
      expect(await allocations()).toEqual([]);
      expect(links(n1.ns)).not.toContain(hostIfName('fast1', 'eth0'));
    }
  });

  it('chains with tuning, bandwidth and portmap (prevResult in and out), and the chain\'s DEL in reverse undoes all', async () => {
    const p = pod();
    const list = [
      { type: 'flatnet', socket: n1.socket },
      { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.rp_filter': '2' } },
      { type: 'bandwidth', ingressRate: 8_000_000, ingressBurst: 1_000_000, egressRate: 8_000_000, egressBurst: 1_000_000 },
      { type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } },
    ];
    const bin = (t: string): string[] | undefined => (t === 'flatnet' ? undefined : ref(t));
    let prev: Record<string, unknown> | null = null;
    for (const pl of list) {
      const r = invoke(n1.ns, call('ADD', 'chain1', p.path), { cniVersion: '1.0.0', name: 'cnet', ...pl, ...(prev === null ? {} : { prevResult: prev }) }, bin(pl.type));
      expect(r.rc, `${pl.type}: ${r.stdout} ${r.stderr}`).toBe(0);
      prev = r.out;
    }
    const hostIf = hostIfName('chain1', 'eth0');
    // bandwidth adds its ifb device to the interfaces; ours stay first.
    expect(prev).toMatchObject({ ips: [{ address: expect.stringMatching(/^10\.244\.1\.\d+\/24$/) as unknown, interface: 1 }] });
    expect((prev!['interfaces'] as unknown[]).slice(0, 2)).toMatchObject([{ name: hostIf }, { name: 'eth0', sandbox: p.path }]);
    expect(pods.exec(p.ns, 'sysctl', ['-n', 'net.ipv4.conf.eth0.rp_filter']).trim()).toBe('2');
    expect(execFileSync('ip', ['netns', 'exec', n1.ns, 'tc', 'qdisc', 'show', 'dev', hostIf], { encoding: 'utf8' })).toMatch(/tbf/);
    const podIp = ((prev!['ips'] as { address: string }[])[0]!.address).split('/')[0]!;
    expect(execFileSync('ip', ['netns', 'exec', n1.ns, 'iptables', '-t', 'nat', '-S'], { encoding: 'utf8' })).toContain(`--dport 8080 -j DNAT --to-destination ${podIp}:80`);
    expect(ping(p.ns, '10.244.2.10')).toBe(true);
    for (const pl of [...list].reverse()) {
      const r = invoke(n1.ns, call('DEL', 'chain1', p.path), { cniVersion: '1.0.0', name: 'cnet', ...pl, prevResult: prev }, bin(pl.type));
      expect(r.rc, `${pl.type}: ${r.stdout} ${r.stderr}`).toBe(0);
    }
    expect(execFileSync('ip', ['netns', 'exec', n1.ns, 'iptables', '-t', 'nat', '-S'], { encoding: 'utf8' })).not.toMatch(/--dport 8080/);
    expect(links(n1.ns).filter((l) => l === hostIf || l.startsWith('bwp'))).toEqual([]);
    expect(await allocations()).toEqual([]);
  });
});
