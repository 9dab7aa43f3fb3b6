// The daemon in-process: a real switch over test ports (FakeHost: no TAP, no sockets, no root),
// driven through its control socket as `flatnet pod|peer|reload` drive it. What a user relies
// on: a repeated attach is a no-op, a conflicting one a typed error; a reload applies the
// file's changes, keeps runtime pods and leaves unchanged ones alone; a bad reload changes
// nothing and is logged.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/daemon/config.js';
import { loadConfig } from '../../src/daemon/config.js';
import { request } from '../../src/daemon/control.js';
import { VtepDaemon } from '../../src/daemon/vtep.js';
import { FakeHost } from '../support/fake-host.js';
import { ip, mac, udp } from '../support/pod-frames.js';

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'flatnet-vtep-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VTEP_MAC = '0e:00:0a:f4:01:00';
const PODS = [
  { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' },
  { name: 'b', interface: 'vb', ip: '10.244.1.11', mac: '02:00:00:00:01:0b' },
];
const PEERS = [
  { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' },
  { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' },
];

describe('VtepDaemon (in-process, test ports)', () => {
  let d: VtepDaemon, host: FakeHost, file: string, sock: string, logs: Record<string, unknown>[];
  const config = (edit: (c: ConfigInput & Record<string, unknown>) => void = () => {}): ConfigInput => {
    const c = {
      node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', vtepMac: VTEP_MAC,
      stateDir: dir, controlSocket: sock, peers: structuredClone(PEERS), pods: structuredClone(PODS),
    } as ConfigInput & Record<string, unknown>;
    edit(c);
    return c;
  };
  const write = (c: ConfigInput | string): void => writeFileSync(file, typeof c === 'string' ? c : JSON.stringify(c));
  const ask = (cmd: string, args: Record<string, unknown> = {}): Promise<unknown> => request(sock, { cmd, ...args });
  const podNames = (): string[] => d.sw.portList.filter((p) => p.role === 'pod').map((p) => p.name);
  const peerNames = (): string[] => d.sw.peerList.map((p) => p.name);
  /** Pod a sends one UDP datagram to a pod of n2: it must leave encapsulated on the overlay. */
  const forwardsToN2 = (): boolean => {
    host.port('va').at(-1)!.inject(udp({ srcMac: mac(PODS[0]!.mac), dstMac: mac(VTEP_MAC), src: ip('10.244.1.10'), dst: ip('10.244.2.20') }));
    d.sw.pump();
    return host.overlayPort!.take().length === 1;
  };

  beforeEach(async () => {
    const n = Math.random().toString(36).slice(2, 8);
    file = join(dir, `n1-${n}.json`);
    sock = join(dir, `n1-${n}.sock`);
    logs = [];
    const log = pino({ level: 'info' }, { write: (s: string) => { logs.push(JSON.parse(s) as Record<string, unknown>); } });
    host = new FakeHost();
    write(config());
    d = await VtepDaemon.start(loadConfig(file), { log, configPath: file, host });
  });
  afterEach(async () => { await d.stop(); });

  it('starts with the file\'s pods and peers and reports them', async () => {
    expect(podNames()).toEqual(['a', 'b']);
    expect(peerNames()).toEqual(['n2', 'n3']);
    expect(await ask('status')).toMatchObject({ node: 'n1', pods: 2, peers: 2, podMtu: 1450, config: file, producers: { file: { pods: 2, peers: 2 }, control: { pods: 0, peers: 0 } } });
    // What the soak test samples: the daemon's memory, and its event-loop delay once a 5 s window has passed.
    const st = (await ask('status')) as { rssBytes: number; eventLoopDelay: unknown };
    expect(st.rssBytes).toBeGreaterThan(1e6);
    expect(st.eventLoopDelay).toBeNull();
    expect(forwardsToN2()).toBe(true);
  });

  it('fails to start, leaving nothing open, when a pod\'s veth is missing or the socket is taken', async () => {
    const other = new FakeHost();
    other.failOn.add('vb');
    const log = pino({ level: 'silent' });
    await expect(VtepDaemon.start(loadConfig(file), { log, host: other })).rejects.toMatchObject({ code: 'ENODEV' });
    expect([other.hostClosed, other.overlayPort!.closed, other.port('va')[0]!.closed]).toEqual([{ keep: false }, true, true]);
    const third = new FakeHost();
    await expect(VtepDaemon.start(loadConfig(file), { log, host: third })).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' });
    expect([third.hostClosed, third.overlayPort!.closed, third.opened.every((p) => p.closed)]).toEqual([{ keep: false }, true, true]);
    expect(await ask('status')).toMatchObject({ pods: 2 }); // the running one is not disturbed
  });

  it('takes a repeated pod attach with the same parameters as a no-op, and refuses a conflicting one', async () => {
    const c = { name: 'c', interface: 'vc', ip: '10.244.1.12', mac: '02:00:00:00:01:0c' };
    expect(await ask('pod-attach', { pod: c })).toEqual({ attached: 'c', existing: false, ...c });
    const port = d.sw.portList.find((p) => p.name === 'c')!;
    expect(await ask('pod-attach', { pod: c })).toEqual({ attached: 'c', existing: true, ...c });
    expect(d.sw.portList.find((p) => p.name === 'c')).toBe(port); // the same attachment, not a new one
    expect(host.port('vc')).toHaveLength(1);
    // A pod from the file, attached again as a CNI ADD retry would: also a no-op.
    expect(await ask('pod-attach', { pod: PODS[0] })).toMatchObject({ attached: 'a', existing: true });

    await expect(ask('pod-attach', { pod: { ...c, name: 'd', interface: 'vd', mac: '02:00:00:00:01:0d' } })).rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'pod.ip' });
    await expect(ask('pod-attach', { pod: { ...c, ip: '10.244.1.13' } })).rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'pod.ip' });
    await expect(ask('pod-attach', { pod: { ...c, name: 'e', interface: 'va', ip: '10.244.1.14', mac: '02:00:00:00:01:0e' } })).rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'pod.interface' });
    await expect(ask('pod-attach', { pod: { ...c, name: 'f', interface: 'vf', ip: '10.244.1.15', mac: PODS[1]!.mac } })).rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'pod.mac' });
    await expect(ask('pod-attach', { pod: { ...c, ip: '10.244.1' } })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', field: 'pod.ip' });
    await expect(ask('pod-attach', { pod: { ...c, name: 'g', ip: '10.244.9.9' } })).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID_ADDRESS', field: 'pod.ip' });
    expect(podNames()).toEqual(['a', 'b', 'c']);
  });

  it.each<[string, Record<string, string>, string, string]>([
    ['the limited broadcast underlay address', { underlay: '255.255.255.255' }, 'ERR_CONFIG_INVALID_ADDRESS', 'peer.underlay'],
    ['a multicast underlay address', { underlay: '224.0.0.1' }, 'ERR_CONFIG_INVALID_ADDRESS', 'peer.underlay'],
    ['a loopback underlay address', { underlay: '127.0.0.2' }, 'ERR_CONFIG_INVALID_ADDRESS', 'peer.underlay'],
    ['the unspecified underlay address', { underlay: '0.0.0.0' }, 'ERR_CONFIG_INVALID_ADDRESS', 'peer.underlay'],
    ['our own underlay address', { underlay: '198.51.100.1' }, 'ERR_CONFIG_DUPLICATE', 'peer.underlay'],
    ['our own VTEP MAC', { vtepMac: VTEP_MAC }, 'ERR_CONFIG_DUPLICATE', 'peer.vtepMac'],
  ])('refuses `peer add` with %s, naming the field, and adds nothing', async (_what, edit, code, field) => {
    const p = { name: 'n9', underlay: '198.51.100.9', podCidr: '10.244.9.0/24', vtepMac: '0e:00:0a:f4:09:00', ...edit };
    await expect(ask('peer-add', { peer: p })).rejects.toMatchObject({ code, field });
    expect(peerNames()).toEqual(['n2', 'n3']);
  });

  it('refuses a file peer with the VTEP MAC this node generated (known only at start) and a peer add with it', async () => {
    await d.stop();
    const generated = '0e:00:0a:f4:01:77';
    writeFileSync(join(dir, 'n7.vtep-mac'), generated + '\n');
    const c = config((x) => { x.node = 'n7'; delete (x as Record<string, unknown>)['vtepMac']; x.peers = [{ ...PEERS[0]!, vtepMac: generated }]; });
    write(c);
    await expect(VtepDaemon.start(loadConfig(file), { log: pino({ level: 'silent' }), host: new FakeHost() })).rejects.toMatchObject({ code: 'ERR_CONFIG_DUPLICATE', field: 'peers[0].vtepMac' });
    write(config((x) => { x.node = 'n7'; delete (x as Record<string, unknown>)['vtepMac']; }));
    d = await VtepDaemon.start(loadConfig(file), { log: pino({ level: 'silent' }), host: new FakeHost() });
    await expect(ask('peer-add', { peer: { name: 'n9', underlay: '198.51.100.9', podCidr: '10.244.9.0/24', vtepMac: generated } })).rejects.toMatchObject({ code: 'ERR_CONFIG_DUPLICATE', field: 'peer.vtepMac' });
  });

  it('detaches a pod; an unknown one is ERR_NOT_FOUND', async () => {
    expect(await ask('pod-detach', { name: 'b' })).toEqual({ detached: 'b' });
    expect(podNames()).toEqual(['a']);
    expect(host.port('vb')[0]!.closed).toBe(true);
    await expect(ask('pod-detach', { name: 'b' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('leaves everything as it was when a new pod\'s veth cannot be opened', async () => {
    host.failOn.add('vz');
    await expect(ask('pod-attach', { pod: { name: 'z', interface: 'vz', ip: '10.244.1.40', mac: '02:00:00:00:01:28' } })).rejects.toMatchObject({ code: 'ENODEV' });
    expect(podNames()).toEqual(['a', 'b']);
    expect(d.desired.sections.pods.has('z')).toBe(false);
    host.failOn.clear();
    await ask('pod-attach', { pod: { name: 'z', interface: 'vz', ip: '10.244.1.40', mac: '02:00:00:00:01:28' } });
    expect(podNames()).toEqual(['a', 'b', 'z']);
  });

  it('reloads the file: applies its changes, keeps runtime pods and peers, leaves unchanged pods untouched', async () => {
    await ask('pod-attach', { pod: { name: 'rt', interface: 'vrt', ip: '10.244.1.30', mac: '02:00:00:00:01:1e' } });
    await ask('peer-add', { peer: { name: 'n4', underlay: '198.51.100.4', podCidr: '10.244.4.0/24', vtepMac: '0e:00:0a:f4:04:00' } });
    const portA = d.sw.portList.find((p) => p.name === 'a')!;
    const n2 = d.sw.peerList.find((p) => p.name === 'n2')!;
    expect(forwardsToN2()).toBe(true);
    // The file: pod b gone, pod c new, peer n3 gone, peer n5 new, the log level up.
    write(config((c) => {
      c.pods = [PODS[0]!, { name: 'c', interface: 'vc', ip: '10.244.1.12', mac: '02:00:00:00:01:0c' }];
      c.peers = [PEERS[0]!, { name: 'n5', underlay: '198.51.100.5', podCidr: '10.244.5.0/24', vtepMac: '0e:00:0a:f4:05:00' }];
      c.log = { level: 'debug' };
    }));
    expect(await ask('reload')).toEqual({
      config: file, nodeChanged: ['log.level'],
      changes: { podsAttached: ['c'], podsDetached: ['b'], podsReplaced: [], peersAdded: ['n5'], peersRemoved: ['n3'], peersChanged: [] },
    });
    expect(podNames().sort()).toEqual(['a', 'c', 'rt']);
    expect(peerNames()).toEqual(['n2', 'n5', 'n4']);
    expect(d.sw.portList.find((p) => p.name === 'a')).toBe(portA); // not detached, port not reopened
    expect(host.port('va')).toHaveLength(1);
    expect(d.sw.peerList.find((p) => p.name === 'n2')!.txPackets).toBe(n2.txPackets); // counters carried over
    expect(forwardsToN2()).toBe(true);
    expect(logs.at(-1)).toMatchObject({ msg: 'config reloaded: pods +c -b; peers +n5 -n3; log.level', level: 30 });
    expect(await ask('status')).toMatchObject({ reloads: { applied: 1, refused: 0, last: { ok: true, changes: 'pods +c -b; peers +n5 -n3' } } });

    // The same file again: nothing to do.
    expect(await ask('reload')).toMatchObject({ changes: { podsAttached: [], podsDetached: [], peersAdded: [], peersRemoved: [] }, nodeChanged: [] });
    expect(logs.at(-1)).toMatchObject({ msg: 'config reloaded: no changes' });
  });

  /** The file of the refusal cases, before their edit: pod a and peer n2 only. */
  const reduced = (): ConfigInput & Record<string, unknown> => config((c) => { c.pods = [PODS[0]!]; c.peers = [PEERS[0]!]; }) as ConfigInput & Record<string, unknown>;
  it.each<[string, ((c: ConfigInput & Record<string, unknown>) => void) | string, string, string]>([
    ['a file that is not JSON', '{"node": ', 'ERR_CONFIG_JSON', ''],
    ['an invalid value', (c) => { c.pods = [{ ...PODS[0]!, ip: '10.244.7.7' }]; }, 'ERR_CONFIG_INVALID_ADDRESS', 'pods[0].ip'],
    ['a shape error', (c) => { c.port = 0; }, 'ERR_CONFIG_INVALID', 'port'],
    ['another VNI', (c) => { c.vni = 2; }, 'ERR_RELOAD_NEEDS_RESTART', 'vni'],
    ['another node name', (c) => { c.node = 'n9'; }, 'ERR_RELOAD_NEEDS_RESTART', 'node'],
    ['another underlay address', (c) => { c.underlay = { interface: 'eth0', address: '198.51.100.9', mtu: 1500 }; }, 'ERR_RELOAD_NEEDS_RESTART', 'underlay.address'],
    ['another pod CIDR', (c) => { c.podCidr = '10.244.9.0/24'; c.pods = []; }, 'ERR_RELOAD_NEEDS_RESTART', 'podCidr'],
    ['another host interface', (c) => { c.host = { interface: 'flatnet1' }; }, 'ERR_RELOAD_NEEDS_RESTART', 'host.interface'],
    ['a pod on the IP of a runtime pod', (c) => { c.pods = [PODS[0]!, { name: 'x', interface: 'vx', ip: '10.244.1.30', mac: '02:00:00:00:01:2a' }]; }, 'ERR_STATE_CONFLICT', 'pods[1].ip'],
  ])('refuses a reload with %s, logs why and keeps its state', async (_what, edit, code, field) => {
    await ask('pod-attach', { pod: { name: 'rt', interface: 'vrt', ip: '10.244.1.30', mac: '02:00:00:00:01:1e' } });
    if (typeof edit === 'string') write(edit);
    else {
      const c = reduced();
      edit(c);
      write(c);
    }
    await expect(ask('reload')).rejects.toMatchObject({ code, ...(field === '' ? {} : { field }) });
    expect(podNames()).toEqual(['a', 'b', 'rt']);
    expect(peerNames()).toEqual(['n2', 'n3']);
    expect(forwardsToN2()).toBe(true);
    expect(logs.at(-1)).toMatchObject({ msg: 'config reload refused; keeping the current state', code, level: 50 });
    expect(await ask('status')).toMatchObject({ reloads: { applied: 0, refused: 1, last: { ok: false, code, field: field === '' ? null : field } } });
    if (code === 'ERR_RELOAD_NEEDS_RESTART') expect(String((logs.at(-1)!['err'] as { message: string }).message)).toContain('needs a restart');
  });
});
