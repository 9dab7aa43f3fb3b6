// The command registry (no socket involved): dispatch by name, arguments checked against each
// command's schema with the failing path as the field, handler errors passed through with their
// code; and the daemon's command table over a fake DaemonApi.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { COMMANDS, controlRegistry, type DaemonApi } from '../../src/daemon/commands.js';
import { CommandRegistry, command } from '../../src/daemon/registry.js';
import { ConfigError, FlatnetError } from '../../src/errors.js';

describe('CommandRegistry', () => {
  const registry = new CommandRegistry<{ base: number }>([
    command({ name: 'add', summary: 'adds', mutates: false, args: z.object({ n: z.number().int(), opts: z.object({ twice: z.boolean() }).strict().optional() }).strict(), run: (a, ctx: { base: number }) => ctx.base + a.n * (a.opts?.twice === true ? 2 : 1) }),
    command({ name: 'later', summary: 'async', mutates: false, args: z.object({}).strict(), run: async () => { await Promise.resolve(); return 'done'; } }),
    command({ name: 'conflict', summary: 'throws a typed error', mutates: true, args: z.object({}).strict(), run: () => { throw new ConfigError('ERR_STATE_CONFLICT', 'pod.ip', 'in use'); } }),
  ]);

  it('dispatches by name with the parsed arguments and the context', async () => {
    expect(await registry.dispatch('add', { n: 2 }, { base: 40 })).toBe(42);
    expect(await registry.dispatch('add', { n: 2, opts: { twice: true } }, { base: 0 })).toBe(4);
    expect(await registry.dispatch('later', {}, { base: 0 })).toBe('done');
    expect(registry.names).toEqual(['add', 'later', 'conflict']);
  });

  it('refuses an unknown command with its own code, listing the known ones', async () => {
    await expect(registry.dispatch('trace', {}, { base: 0 })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNKNOWN_COMMAND', message: expect.stringContaining('add, later, conflict') });
  });

  it.each<[string, unknown, string]>([
    ['a missing argument', {}, 'n'],
    ['a wrong type', { n: 'two' }, 'n'],
    ['a nested wrong type', { n: 1, opts: { twice: 'yes' } }, 'opts.twice'],
    ['an unknown nested key', { n: 1, opts: { twice: true, thrice: true } }, 'opts'],
    ['an unknown key', { n: 1, m: 2 }, ''],
  ])('refuses %s with ERR_CONTROL_BAD_REQUEST naming the path', async (_what, args, field) => {
    await expect(registry.dispatch('add', args, { base: 0 })).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', field });
  });

  it("passes a handler's error through with its code and field", async () => {
    await expect(registry.dispatch('conflict', {}, { base: 0 })).rejects.toMatchObject({ code: 'ERR_STATE_CONFLICT', field: 'pod.ip' });
  });

  it('refuses two commands of one name', () => {
    const c = command({ name: 'x', summary: '', mutates: false, args: z.object({}), run: () => 1 });
    expect(() => new CommandRegistry([c, c])).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_DUPLICATE_COMMAND' }));
  });
});

describe('the control commands', () => {
  const calls: unknown[][] = [];
  const api: DaemonApi = {
    status: () => { calls.push(['status']); return { node: 'n1' }; },
    show: (what) => { calls.push(['show', what]); return []; },
    attachPod: (p) => { calls.push(['attachPod', p]); return { attached: p.name, existing: false, name: p.name, interface: p.interface, ip: p.ip, mac: p.mac }; },
    detachPod: (name) => { calls.push(['detachPod', name]); throw new FlatnetError('ERR_NOT_FOUND', `no pod ${name}`); },
    addPeer: (p) => { calls.push(['addPeer', p]); return { added: p.name, existing: false, name: p.name, underlay: p.underlay, podCidr: p.podCidr, vtepMac: p.vtepMac }; },
    delPeer: (name) => { calls.push(['delPeer', name]); return { removed: name }; },
    reload: () => { calls.push(['reload']); return { config: 'f.json', changes: { podsAttached: [], podsDetached: [], podsReplaced: [], peersAdded: [], peersRemoved: [], peersChanged: [] }, nodeChanged: [] }; },
    cni: {
      alloc: (a) => { calls.push(['cni.alloc', a]); return { ip: '10.244.1.3', prefixLen: 24, gateway: '10.244.1.1', podCidr: '10.244.1.0/24', clusterCidr: '10.244.0.0/16', mtu: 1450, existing: false }; },
      attach: (a) => { calls.push(['cni.attach', a]); return { name: a.name, interface: a.interface, ip: a.ip, mac: a.mac, existing: false }; },
      del: (a) => { calls.push(['cni.del', a]); return { released: null, detached: null }; },
      get: (a) => { calls.push(['cni.get', a]); throw new FlatnetError('ERR_CNI_UNKNOWN_CONTAINER', 'none'); },
      gc: (v) => { calls.push(['cni.gc', v]); return { released: [] }; },
      status: () => { calls.push(['cni.status']); return { ready: true, free: 1, capacity: 1, attachments: 0 }; },
      exec: async (env, stdin) => { calls.push(['cni.exec', env, stdin]); return await Promise.resolve({ rc: 0, stdout: '' }); },
      snapshot: () => ({ podCidr: '10.244.1.0/24', gateway: '10.244.1.1', capacity: 253, free: 253, allocations: [] }),
    },
    controlStatus: () => { calls.push(['controlStatus']); return { state: 'ok' }; },
    trace: (input, packet) => { calls.push(['trace', input, packet]); return { in: { port: input, role: 'pod' }, packet: { hex: '', length: 0, vnet: null }, steps: [], outcome: 'drop', drop: null, frames: [], droppedCopies: [], notes: [] }; },
  };
  const registry = controlRegistry();
  const pod = { name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' };
  const peer = { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' };

  it('are the wire names clients use, each mapped to one DaemonApi call', async () => {
    expect(registry.names).toEqual(['status', 'show', 'pod-attach', 'pod-detach', 'peer-add', 'peer-del', 'reload', 'cni-alloc', 'cni-attach', 'cni-del', 'cni-get', 'cni-gc', 'cni-exec', 'cni-status', 'trace', 'control-status']);
    expect(COMMANDS.filter((c) => !c.mutates).map((c) => c.name)).toEqual(['status', 'show', 'cni-get', 'cni-status', 'trace', 'control-status']);
    calls.length = 0;
    await registry.dispatch('status', {}, api);
    await registry.dispatch('show', { what: 'fdb' }, api);
    await registry.dispatch('pod-attach', { pod }, api);
    await registry.dispatch('peer-add', { peer }, api);
    await registry.dispatch('peer-del', { name: 'n2' }, api);
    await registry.dispatch('reload', {}, api);
    await registry.dispatch('trace', { in: 'pod-a', packet: { flow: 'udp 10.244.1.10:1 -> 10.244.2.10:2' } }, api);
    await registry.dispatch('cni-alloc', { containerId: 'c1', ifname: 'eth0', k8s: null }, api);
    await registry.dispatch('cni-status', {}, api);
    expect(calls.slice(-2)).toEqual([['cni.alloc', { containerId: 'c1', ifname: 'eth0', k8s: null }], ['cni.status']]);
    calls.length -= 2;
    expect(calls).toEqual([['status'], ['show', 'fdb'], ['attachPod', pod], ['addPeer', peer], ['delPeer', 'n2'], ['reload'], ['trace', 'pod-a', { flow: 'udp 10.244.1.10:1 -> 10.244.2.10:2' }]]);
    await registry.dispatch('control-status', {}, api);
    expect(calls.slice(-1)).toEqual([['controlStatus']]);
  });

  it.each<[string, string, Record<string, unknown>, string]>([
    ['show of an unknown table', 'show', { what: 'neighbours' }, 'what'],
    ['a pod without a MAC', 'pod-attach', { pod: { name: 'a', interface: 'va', ip: '10.244.1.10' } }, 'pod.mac'],
    ['a pod with a bad IP', 'pod-attach', { pod: { ...pod, ip: '10.244.1' } }, 'pod.ip'],
    ['a pod with a long interface name', 'pod-attach', { pod: { ...pod, interface: 'a-very-long-ifname' } }, 'pod.interface'],
    ['a peer with a bad VTEP MAC', 'peer-add', { peer: { ...peer, vtepMac: 'zz' } }, 'peer.vtepMac'],
    ['a detach without a name', 'pod-detach', {}, 'name'],
    ['a detach with an empty name', 'peer-del', { name: '' }, 'name'],
    ['status with arguments', 'status', { verbose: true }, ''],
    ['a trace without a packet', 'trace', { in: 'pod-a' }, 'packet'],
    ['a trace with both a flow and hex', 'trace', { in: 'pod-a', packet: { flow: 'x', hex: '00' } }, 'packet'],
    ['a trace without --in', 'trace', { packet: { hex: '00' } }, 'in'],
    ['a CNI container ID with a slash', 'cni-alloc', { containerId: 'a/b', ifname: 'eth0', k8s: null }, 'containerId'],
    ['a CNI interface name of 16 characters', 'cni-del', { containerId: 'c1', ifname: 'eth0123456789abc' }, 'ifname'],
    ['a CNI attach with an unknown IPAM kind', 'cni-attach', { containerId: 'c1', ifname: 'eth0', name: 'a', interface: 'fl1', ip: '10.244.1.3', mac: '02:00:00:00:00:01', ipam: 'dhcp', k8s: null }, 'ipam'],
    ['a CNI GC without its list', 'cni-gc', {}, 'valid'],
  ])('refuses %s: ERR_CONTROL_BAD_REQUEST on %s', async (_what, cmd, args, field) => {
    await expect(registry.dispatch(cmd, args, api)).rejects.toMatchObject({ code: 'ERR_CONTROL_BAD_REQUEST', field });
  });

  it("keeps the daemon's error code (an unknown pod stays ERR_NOT_FOUND)", async () => {
    await expect(registry.dispatch('pod-detach', { name: 'zz' }, api)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });
});
