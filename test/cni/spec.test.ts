// The plugin's reading of its input (no root, no daemon): every malformed variable, config and
// version gets the spec's code and a message naming what is wrong; results are spelled in the
// configuration's version; a chained prevResult is kept and extended.
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cni/main.js';
import { merge, parseResult, toVersion } from '../../src/cni/result.js';
import { parseConf, parseEnv, podIdentity, SUPPORTED_VERSIONS } from '../../src/cni/spec.js';
import { hostIfName, podMacOf } from '../../src/cni/veth.js';

const ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
const CONF = { cniVersion: '1.0.0', name: 'fn', type: 'flatnet' };

async function invoke(env: Record<string, string>, stdin: string): Promise<{ rc: number; out: Record<string, unknown> | null }> {
  let text = '';
  const rc = await run(env, () => stdin, (s) => { text += s; });
  return { rc, out: text === '' ? null : (JSON.parse(text) as Record<string, unknown>) };
}

describe('flatnet-cni input checks (before anything is touched)', () => {
  it.each<[string, Record<string, string>, string, number, RegExp]>([
    ['no CNI_COMMAND', { ...ENV, CNI_COMMAND: '' }, JSON.stringify(CONF), 4, /CNI_COMMAND is not set/],
    ['an unknown CNI_COMMAND', { ...ENV, CNI_COMMAND: 'ATTACH' }, JSON.stringify(CONF), 4, /CNI_COMMAND "ATTACH"/],
    ['ADD without CNI_NETNS', { ...ENV, CNI_NETNS: '' }, JSON.stringify(CONF), 4, /CNI_NETNS is not set/],
    ['a container ID with a slash', { ...ENV, CNI_CONTAINERID: '../etc' }, JSON.stringify(CONF), 4, /CNI_CONTAINERID/],
    ['an interface name of 16 characters', { ...ENV, CNI_IFNAME: 'eth0123456789abc' }, JSON.stringify(CONF), 4, /CNI_IFNAME/],
    ['a relative CNI_NETNS', { ...ENV, CNI_NETNS: 'netns/x' }, JSON.stringify(CONF), 4, /CNI_NETNS "netns\/x" is not an absolute path/],
    ['CNI_ARGS without "="', { ...ENV, CNI_ARGS: 'IgnoreUnknown' }, JSON.stringify(CONF), 4, /CNI_ARGS/],
    ['malformed JSON', ENV, '{"cniVersion": "1.0.0",', 6, /not JSON/],
    ['a JSON list', ENV, '[1]', 6, /not a JSON object/],
    ['no cniVersion', ENV, JSON.stringify({ name: 'fn', type: 'flatnet' }), 1, /cniVersion is missing/],
    ['cniVersion 0.2.0', ENV, JSON.stringify({ ...CONF, cniVersion: '0.2.0' }), 1, /cniVersion 0.2.0 is not supported/],
    ['CHECK at 0.3.1', { ...ENV, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...CONF, cniVersion: '0.3.1' }), 1, /CHECK needs cniVersion 0.4.0/],
    ['GC at 1.0.0', { ...ENV, CNI_COMMAND: 'GC' }, JSON.stringify(CONF), 1, /GC needs cniVersion 1.1.0/],
    ['another plugin type', ENV, JSON.stringify({ ...CONF, type: 'bridge' }), 7, /^type: /],
    ['no network name', ENV, JSON.stringify({ ...CONF, name: undefined }), 7, /^name: /],
    ['an MTU of 20', ENV, JSON.stringify({ ...CONF, mtu: 20 }), 7, /^mtu: 20 is not an MTU/],
    ['a relative socket', ENV, JSON.stringify({ ...CONF, socket: 'flatnet.sock' }), 7, /^socket: /],
    ['ipam without a type', ENV, JSON.stringify({ ...CONF, ipam: { subnet: '10.244.1.0/24' } }), 7, /^ipam.type: /],
    ['ipMasq', ENV, JSON.stringify({ ...CONF, ipMasq: true }), 2, /ipMasq/],
    ['two requested addresses', ENV, JSON.stringify({ ...CONF, runtimeConfig: { ips: ['10.244.1.9/24', '10.244.1.8/24'] } }), 2, /one IPv4 address/],
    ['a requested IPv6 address (CNI_ARGS)', { ...ENV, CNI_ARGS: 'IP=fd00::9' }, JSON.stringify(CONF), 2, /one IPv4 address/],
    ['a requested MAC', { ...ENV, CNI_ARGS: 'MAC=02:00:00:00:00:01' }, JSON.stringify(CONF), 2, /requested MAC/],
    ['GC without its list', { CNI_COMMAND: 'GC' }, JSON.stringify({ ...CONF, cniVersion: '1.1.0' }), 7, /valid-attachments/],
  ])('refuses %s', async (_what, env, stdin, code, msg) => {
    const { rc, out } = await invoke(env, stdin);
    expect(rc).not.toBe(0);
    expect(out).toMatchObject({ code });
    expect(String(out!['msg'])).toMatch(msg);
  });

  it('answers errors in the configuration\'s version, also for a bad variable', async () => {
    expect((await invoke({ ...ENV, CNI_COMMAND: '' }, JSON.stringify({ ...CONF, cniVersion: '0.4.0' }))).out).toMatchObject({ cniVersion: '0.4.0', code: 4 });
  });

  it('VERSION lists the supported versions, answering in the one asked for', async () => {
    expect(await invoke({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}')).toEqual({ rc: 0, out: { cniVersion: '0.4.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] } });
    expect((await invoke({ CNI_COMMAND: 'VERSION' }, '')).out).toMatchObject({ cniVersion: '1.1.0' });
  });
});

describe('flatnet-cni helpers', () => {
  it('reads the pod identity from CNI_ARGS', () => {
    const env = parseEnv({ ...ENV, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=u1;K8S_POD_INFRA_CONTAINER_ID=abc' });
    expect(podIdentity(env.args)).toEqual({ namespace: 'default', name: 'web', uid: 'u1', infraContainerId: 'abc' });
    expect(podIdentity(parseEnv(ENV).args)).toBeNull();
  });

  it('names the host end from (container, interface), 13 characters, and spells the IP in the MAC', () => {
    const a = hostIfName('abc', 'eth0');
    expect(a).toMatch(/^fl[0-9a-f]{11}$/);
    expect([hostIfName('abc', 'eth0') === a, hostIfName('abc', 'net1') === a, hostIfName('abd', 'eth0') === a]).toEqual([true, false, false]);
    expect(podMacOf('10.244.1.2')).toBe('02:00:0a:f4:01:02');
  });

  it('takes delegated IPAM and the GC list from the configuration', () => {
    const c = parseConf({ ...CONF, cniVersion: '1.1.0', ipam: { type: 'host-local', subnet: '10.244.1.0/24' }, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }, '{}', parseEnv(ENV));
    expect([c.ipam?.type, c.validAttachments, c.socket, c.mtu]).toEqual(['host-local', [{ containerId: 'a', ifname: 'eth0' }], '/run/flatnet/flatnet.sock', null]);
  });

  it('takes a requested address from CNI_ARGS IP= or runtimeConfig.ips, as host-local does', () => {
    expect(parseConf({ ...CONF }, '{}', parseEnv({ ...ENV, CNI_ARGS: 'IgnoreUnknown=1;IP=10.244.1.9' })).requestedIp).toBe('10.244.1.9');
    expect(parseConf({ ...CONF, runtimeConfig: { ips: ['10.244.1.8/24'] } }, '{}', parseEnv(ENV)).requestedIp).toBe('10.244.1.8');
    expect(parseConf({ ...CONF }, '{}', parseEnv(ENV)).requestedIp).toBeNull();
  });
});

describe('CNI results', () => {
  const ours = {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'flx', mac: '0a:00:00:00:00:01' }, { name: 'eth0', mac: '02:00:0a:f4:01:02', mtu: 1450, sandbox: '/run/netns/p' }],
    ips: [{ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }],
    dns: {},
  };
  it.each(SUPPORTED_VERSIONS)('spells a result in %s', (v) => {
    const r = toVersion(ours, v);
    expect(r['cniVersion']).toBe(v);
    const ip = (r['ips'] as Record<string, unknown>[])[0]!;
    expect('version' in ip).toBe(v === '0.3.1' || v === '0.4.0');
    expect('mtu' in (r['interfaces'] as Record<string, unknown>[])[1]!).toBe(v === '1.1.0');
    expect(parseResult(r).ips).toEqual(ours.ips);
  });

  it('appends to a previous plugin\'s result, renumbering interface indexes', () => {
    const prev = parseResult({ cniVersion: '0.4.0', interfaces: [{ name: 'x' }], ips: [{ version: '4', address: '10.9.0.2/24', interface: 0 }], routes: [], dns: { nameservers: ['10.9.0.1'] } });
    const m = merge(prev, ours);
    expect(m.ips).toEqual([{ address: '10.9.0.2/24', interface: 0 }, { ...ours.ips[0], interface: 2 }]);
    expect([m.interfaces.length, m.dns]).toEqual([3, { nameservers: ['10.9.0.1'] }]);
  });
});
