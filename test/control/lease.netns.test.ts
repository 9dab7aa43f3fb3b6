/**
 * Subnet leases and the lease watch against a real etcd 3.4 cluster (three members on
 * 127.0.0.1-3 inside a namespace of this test; the test process reaches them through their
 * unix sockets). Short TTLs keep it to seconds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd } from '../../src/control/etcd.js';
import { SubnetLease, type AcquireHow } from '../../src/control/lease.js';
import { networkDocument, networkKey, parseNetwork, subnetsPrefix } from '../../src/control/network.js';
import { NodeControl } from '../../src/control/node-control.js';
import type { RawRecord } from '../../src/control/records.js';
import { PrefixWatcher } from '../../src/control/watch.js';
import { Cidr } from '../../src/fib/cidr.js';
import { restartEtcdMember, startEtcdCluster, stopEtcdMember, type EtcdMember } from '../../src/lab/etcd.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();
const until = async (what: string, f: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe.skipIf(skip !== null)('subnet leases and the watch on a real etcd', () => {
  const nets = new Netns('e');
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-etcd-'));
  let members: EtcdMember[] = [];
  let client: Etcd3;
  const prefix = '/t';
  const small = parseNetwork({ network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.12.0' });
  const holder = (i: number) => ({ node: `h${i}`, underlayIp: parseIpv4(`198.51.100.${i}`), vtepMac: 0x0e000af40000 + i * 256, vni: 1, port: 4789, kind: 'flatnet' as const });
  const lease = (i: number, ttl = 2, p = prefix): SubnetLease => new SubnetLease(client, small, holder(i), { prefix: p, ttlSeconds: ttl, stateDir: join(dir, 'state') });

  beforeAll(async () => {
    const ns = nets.add('etcd');
    members = await startEtcdCluster([1, 2, 3].map((i) => ({ name: `m${i}`, ns, ip: `127.0.0.${i}`, dir: join(dir, `m${i}`) })));
    client = connectEtcd(members.map((m) => m.unixUrl));
    await client.put(networkKey(prefix)).value(JSON.stringify(networkDocument(small)));
  }, 60_000);
  afterAll(() => {
    client?.close();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives racing nodes distinct subnets, and refuses the one too many with ERR_CONTROL_NO_SUBNET', async () => {
    const p = '/race';
    const ls = Array.from({ length: 12 }, (_, i) => lease(i + 1, 5, p));
    const got = await Promise.all(ls.map((l) => l.acquire()));
    expect(new Set(got.map((c) => c.toString())).size).toBe(12);
    const keys = await client.getAll().prefix(subnetsPrefix(p)).keys();
    expect(keys).toHaveLength(12);
    await expect(lease(13, 5, p).acquire()).rejects.toMatchObject({ code: 'ERR_CONTROL_NO_SUBNET' });
    await Promise.all(ls.map((l) => l.close(true)));
    expect(await client.getAll().prefix(subnetsPrefix(p)).keys()).toHaveLength(0);
  });

  it('gives a restarted node its subnet back: from its live record, then from its state file once the lease is gone', async () => {
    const hows: AcquireHow[] = [];
    const mk = (): SubnetLease => new SubnetLease(client, small, holder(40), { prefix, ttlSeconds: 3, stateDir: join(dir, 'state'), onAcquired: (_s, how) => hows.push(how) });
    const a = mk();
    const first = await a.acquire();
    expect(readFileSync(a.stateFile, 'utf8')).toContain(`FLATNET_SUBNET=${first}`);
    await a.close(false); // a crash or restart: the record stays until its TTL ends
    const b = mk();
    expect((await b.acquire()).toString()).toBe(first.toString());
    await b.close(true); // the lease is gone and the key with it
    // No record any more: the state file's subnet, since nobody took it meanwhile.
    const c = mk();
    expect((await c.acquire()).toString()).toBe(first.toString());
    expect(hows).toEqual(['free', 'own_record', 'state_file']);
    await c.close(true);
  });

  it('watches joins, changed records and lease expiry; a killed member changes nothing; a compacted revision is re-listed', async () => {
    const p = '/w';
    await client.put(networkKey(p)).value(JSON.stringify(networkDocument(small)));
    let state: ReadonlyMap<string, RawRecord> = new Map();
    let calls = 0;
    const wclient = connectEtcd([members[0]!.unixUrl]); // one endpoint: it must resume on that member
    const w = new PrefixWatcher(wclient, subnetsPrefix(p), (kvs) => { state = new Map(kvs); calls++; });
    w.start();
    await until('the first list', () => w.status().state === 'watching');
    const l1 = lease(1, 2, p);
    const s1 = await l1.acquire();
    await until('a join', () => state.size === 1);
    // A changed record (a node came back with another VTEP MAC) is seen as a change of the value.
    const key = `${subnetsPrefix(p)}${s1.toString().replace('/', '-')}`;
    const before = state.get(key)!.value;
    await client.put(key).value(before.replace('"vtepMac":"0e', '"vtepMac":"2e')).ignoreLease();
    await until('the change', () => state.get(key)?.value.includes('"2e:') === true);
    // Lease expiry: stop renewing without revoking; etcd deletes the key after the TTL.
    const t0 = Date.now();
    await l1.close(false);
    await until('the expiry', () => state.size === 0, 10_000);
    expect(Date.now() - t0).toBeLessThan(2000 + 3000);

    // Kill the watcher's member: the watch is disconnected, writes go on through the others,
    // the history is compacted, the member comes back: the watch cannot resume and re-lists.
    await stopEtcdMember(members[0]!);
    await until('the disconnect', () => w.status().state !== 'watching', 10_000);
    const l2 = lease(2, 5, p);
    await l2.acquire();
    for (let i = 0; i < 5; i++) await client.put(`${p}/noise`).value(String(i));
    const rev = Number((await client.get(`${p}/noise`).exec()).header.revision);
    await client.kv.compact({ revision: String(rev) });
    const resyncsBefore = w.status().resyncs;
    members[0] = await restartEtcdMember(members[0]!);
    await until('the re-list after compaction', () => w.status().state === 'watching' && state.size === 1, 20_000);
    expect(w.status().resyncs).toBeGreaterThan(resyncsBefore);
    expect(w.status().lastError).not.toBeNull();
    expect(calls).toBeGreaterThan(0);
    await l2.close(true);
    await w.close();
    wclient.close();
  });

  it('NodeControl: a node keeps its lease with one member of three dead, and not with two; the peer set stays', async () => {
    const p = '/nc';
    await client.put(networkKey(p)).value(JSON.stringify(networkDocument(small)));
    const other = lease(7, 30, p);
    await other.acquire();
    const c = await NodeControl.join({ endpoints: members.map((m) => m.unixUrl), prefix: p, leaseTtlSeconds: 3 },
      { node: 'h8', underlayIp: parseIpv4('198.51.100.8'), vtepMac: 0x0e000af40800, kind: 'flatnet' }, join(dir, 'state'));
    let peers: string[] = [];
    c.watch((ps) => { peers = ps.map((x) => x.name); });
    await until('the peer', () => peers.join() === 'h7');
    // One member down (the leader or not): renewals go on.
    await stopEtcdMember(members[1]!);
    const r0 = c.status().lease!.renewals;
    // (A keepalive that was on its way to the dead member may fail once before the client moves on.)
    await until('renewals with two of three', () => c.status().lease!.renewals >= r0 + 2 && c.status().lease!.state === 'held', 10_000);
    // Two down: no quorum, renewals fail, the peer set is kept as it was.
    const f0 = c.status().lease!.renewalFailures;
    await stopEtcdMember(members[2]!);
    await until('failed renewals', () => c.status().lease!.renewalFailures > f0 && c.status().state === 'degraded', 15_000);
    expect(peers).toEqual(['h7']);
    // Quorum back: the lease is renewed (or re-claimed with the same subnet).
    members[1] = await restartEtcdMember(members[1]!);
    members[2] = await restartEtcdMember(members[2]!);
    await until('the lease held again', () => c.status().lease!.state === 'held' && c.status().watch?.state === 'watching', 30_000);
    expect(c.status().lease!.subnet).toBe(c.subnet.toString());
    expect(Cidr.parse(c.status().lease!.subnet!).len).toBe(24);
    await c.close(true);
    await other.close(true);
  });
});
