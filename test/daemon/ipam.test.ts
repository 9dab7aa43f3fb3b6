// The IPAM store: what a CNI runtime relies on. Never the network, gateway or broadcast address;
// a repeated ADD gets the same address; a full pool is a typed error that records nothing;
// release and GC free addresses; everything survives reopening the file (a daemon restart).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { IpamStore, ipamFile, renderIpam } from '../../src/daemon/ipam.js';
import { Cidr } from '../../src/fib/cidr.js';
import { parseIpv4 } from '../../src/wire/addr.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-ipam-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const none = (): boolean => false;
let file = '';
let n = 0;
beforeEach(() => { file = ipamFile(dir, `n${++n}`); });

describe('IpamStore', () => {
  it('hands out every host address of a /29 but the network, the gateway and the broadcast, then refuses', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/29'), parseIpv4('10.244.1.1'));
    expect(s.capacity).toBe(5);
    const got = [1, 2, 3, 4, 5].map((i) => s.allocate(`c${i}`, 'eth0', null, none).record.ip);
    expect(got).toEqual(['10.244.1.2', '10.244.1.3', '10.244.1.4', '10.244.1.5', '10.244.1.6']);
    expect(() => s.allocate('c6', 'eth0', null, none)).toThrow(expect.objectContaining({ code: 'ERR_IPAM_EXHAUSTED' }));
    expect(s.size).toBe(5);
    expect(s.free()).toBe(0);
    expect(s.get('c6', 'eth0')).toBeUndefined();
  });

  it('gives a repeated ADD (same container and interface) the same address, another interface another one', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    const a = s.allocate('c1', 'eth0', null, none);
    const again = s.allocate('c1', 'eth0', null, none);
    const other = s.allocate('c1', 'net1', null, none);
    expect([a.existing, again.existing, again.record.ip === a.record.ip, other.record.ip === a.record.ip]).toEqual([false, true, true, false]);
  });

  it('skips addresses other pods hold and does not reuse a released address at once (round robin)', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    const taken = (ip: number): boolean => ip === parseIpv4('10.244.1.2');
    expect(s.allocate('c1', 'eth0', null, taken).record.ip).toBe('10.244.1.3');
    expect(s.release('c1', 'eth0')?.ip).toBe('10.244.1.3');
    expect(s.release('c1', 'eth0')).toBeNull();
    expect(s.allocate('c2', 'eth0', null, taken).record.ip).toBe('10.244.1.4');
  });

  it('wraps around to released addresses when the end of the range is reached', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/29'), parseIpv4('10.244.1.1'));
    for (let i = 1; i <= 5; i++) s.allocate(`c${i}`, 'eth0', null, none);
    s.release('c2', 'eth0');
    expect(s.allocate('c9', 'eth0', null, none).record.ip).toBe('10.244.1.3');
  });

  it('keeps allocations, identities and the cursor across a reopen (a daemon restart), written atomically', () => {
    const k8s = { namespace: 'default', name: 'web', uid: 'u-1', infraContainerId: 'c1' };
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    s.allocate('c1', 'eth0', k8s, none);
    s.put({ ...s.get('c1', 'eth0')!, pod: { name: 'web', interface: 'fl0123', mac: '02:00:00:00:00:01' } });
    s.allocate('c2', 'eth0', null, none);
    s.release('c2', 'eth0');
    expect(existsSync(`${file}.tmp`)).toBe(false);
    const t = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    expect(t.list()).toEqual(s.list());
    expect(t.get('c1', 'eth0')).toMatchObject({ ip: '10.244.1.2', k8s, pod: { name: 'web', interface: 'fl0123' } });
    expect(t.allocate('c3', 'eth0', null, none).record.ip).toBe('10.244.1.4');
  });

  it('refuses a file of another pod CIDR or one that is not a store, naming the file', () => {
    IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1')).allocate('c1', 'eth0', null, none);
    expect(() => IpamStore.open(file, Cidr.parse('10.244.2.0/24'), parseIpv4('10.244.2.1'))).toThrow(expect.objectContaining({ code: 'ERR_IPAM_STATE' }));
    writeFileSync(file, '{"version": 7');
    expect(() => IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'))).toThrow(expect.objectContaining({ code: 'ERR_IPAM_STATE' }));
  });

  it('a failed write records nothing (ERR_IPAM_WRITE)', () => {
    const s = IpamStore.open(join(dir, 'not-a-dir', 'x.cni.json'), Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    writeFileSync(join(dir, 'not-a-dir'), 'a file where the directory should be');
    expect(() => s.allocate('c1', 'eth0', null, none)).toThrow(expect.objectContaining({ code: 'ERR_IPAM_WRITE' }));
    expect(s.size).toBe(0);
  });

  it('gives a requested address when it is free and a host of the pool, and refuses it otherwise', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    expect(s.allocate('c1', 'eth0', null, none, parseIpv4('10.244.1.10')).record.ip).toBe('10.244.1.10');
    expect(s.allocate('c1', 'eth0', null, none, parseIpv4('10.244.1.10')).existing).toBe(true);
    expect(() => s.allocate('c1', 'eth0', null, none, parseIpv4('10.244.1.11'))).toThrow(expect.objectContaining({ code: 'ERR_IPAM_ADDRESS_IN_USE' }));
    expect(() => s.allocate('c2', 'eth0', null, none, parseIpv4('10.244.1.10'))).toThrow(expect.objectContaining({ code: 'ERR_IPAM_ADDRESS_IN_USE' }));
    for (const bad of ['10.244.1.0', '10.244.1.1', '10.244.1.255', '10.244.2.5']) {
      expect(() => s.allocate('c3', 'eth0', null, none, parseIpv4(bad))).toThrow(expect.objectContaining({ code: 'ERR_IPAM_BAD_REQUEST' }));
    }
    expect(s.allocate('c4', 'eth0', null, none).record.ip).toBe('10.244.1.2');
  });

  it('GC releases every attachment not in the valid list', () => {
    const s = IpamStore.open(file, Cidr.parse('10.244.1.0/24'), parseIpv4('10.244.1.1'));
    for (const c of ['c1', 'c2', 'c3']) s.allocate(c, 'eth0', null, none);
    expect(s.gc([{ containerId: 'c2', ifname: 'eth0' }]).map((r) => r.containerId)).toEqual(['c1', 'c3']);
    expect(s.list().map((r) => r.containerId)).toEqual(['c2']);
    expect(JSON.parse(readFileSync(file, 'utf8')).records).toHaveLength(1);
  });

  it('renders one line per allocation under a pool summary', () => {
    const text = renderIpam({
      podCidr: '10.244.1.0/24', gateway: '10.244.1.1', capacity: 253, free: 252,
      allocations: [{ ip: '10.244.1.2', containerId: 'abcdef0123456789', ifname: 'eth0', ipam: 'flatnet', pod: 'web', interface: 'fl0123', namespace: 'default', k8sName: 'web', since: '2026-12-04T21:00:00.000Z', attached: true }],
    });
    expect(text).toBe('pool 10.244.1.0/24 gateway 10.244.1.1 usable 253 free 252 allocated 1\n'
      + '10.244.1.2 container abcdef012345 if eth0 k8s default/web pod web dev fl0123 ipam flatnet since 2026-12-04T21:00:00.000Z\n');
  });
});
