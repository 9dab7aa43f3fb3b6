// Hostile input against a running flatnet node, through the lab: frames built with scapy and
// injected on the underlay (from an extra "attacker" namespace on the underlay bridge,
// 198.51.100.200, spoofing peer addresses where a case needs it) and from inside a pod.
//
//   underlay -> n1: no I flag, each of the 39 reserved bits, unknown VNI, unknown source VTEP,
//     inner source outside the sending peer's pod CIDR, inner source MAC ours or multicast,
//     inner destination MAC not ours, truncated VXLAN header / inner Ethernet / inner IPv4,
//     an outer IPv4 header claiming more bytes than it has (the kernel drops that one)
//   pod n1p0: IP spoofing, MAC spoofing, ARP spoofing (the gateway's and a neighbour's
//     address), VXLAN sent to a peer VTEP
//   L2 lab: a MAC-learning flood from a (spoofed) peer, past the FDB limit
//
// For each batch: every frame is counted under its reason and nothing else moved (exact
// counter deltas from `flatnet show counters`); nothing reached the target pod (a UDP listener
// there receives only the positive controls sent in the same batch); routes, FDB and peers are
// unchanged (or, for the flood, bounded by the limit); and the node still forwards pings.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import type { CountersSnapshot, FdbRow, PeerRow, PortRow } from '../../src/daemon/show.js';
import { ipNs, run, sleep } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { ping } from '../../src/lab/runner.js';
import type { LabNode, LabPod, LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, SCAPY_PYTHON, scapy, uniqueLabName } from '../support/lab.js';
import { listNetns, Netns } from '../support/netns.js';

const skip = labSkipReason(true);
const ATTACKER_IP = '198.51.100.200';
const ATTACKER_MAC = '02:00:c6:33:64:c8';
const LISTEN_PORT = 7777;

type Drops = Record<string, number>;

async function drops(node: LabNode): Promise<Drops> {
  const c = (await request(node.socket!, { cmd: 'show', what: 'counters' })) as CountersSnapshot;
  return Object.fromEntries(c.drops.map((d) => [d.reason, d.count]));
}

async function counters(node: LabNode): Promise<CountersSnapshot['counters']> {
  return ((await request(node.socket!, { cmd: 'show', what: 'counters' })) as CountersSnapshot).counters;
}

function delta(after: Drops, before: Drops): Drops {
  const d: Drops = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0);
  return d;
}

/** routes, fdb and peers (without their traffic counters): what hostile input must not change. */
async function tables(node: LabNode): Promise<unknown> {
  const show = (what: string): Promise<unknown> => request(node.socket!, { cmd: 'show', what });
  const peers = ((await show('peers')) as PeerRow[]).map(({ name, underlay, podCidr, vtepMac, vni, port }) => ({ name, underlay, podCidr, vtepMac, vni, port }));
  const fdb = ((await show('fdb')) as FdbRow[]).map(({ mac, dev, dst, state }) => ({ mac, dev, dst, state }));
  return { routes: await show('routes'), fdb, peers };
}

/** A UDP listener in a pod: every datagram as "SOURCE PAYLOAD", one per line. */
class Listener {
  readonly lines: string[] = [];
  private constructor(private readonly proc: ChildProcess) {}
  static async start(pod: LabPod): Promise<Listener> {
    const script = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', ${LISTEN_PORT}))
print('ready', flush=True)
while True:
    d, a = s.recvfrom(65535)
    print(a[0], d.decode('latin1'), flush=True)
`;
    const p = spawn('ip', ['netns', 'exec', pod.ns, SCAPY_PYTHON, '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const l = new Listener(p);
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === 'ready') resolve();
          else l.lines.push(line);
        }
      });
      p.on('exit', (code) => reject(new Error(`listener in ${pod.name} exited (${code})`)));
    });
    return l;
  }
  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Polls until `done()` or `timeoutMs`, then waits `quietMs` more for stragglers. */
async function settle(done: () => Promise<boolean>, timeoutMs = 5000, quietMs = 300): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(await done())) await sleep(50);
  await sleep(quietMs);
}

/** An attacker namespace on the lab's underlay bridge. */
function addAttacker(netns: Netns, lab: LabState): string {
  const x = netns.add('x');
  netns.noIpv6(x);
  netns.veth(lab.underlayNs, 'ux', x, 'eth0');
  ipNs(lab.underlayNs, 'link', 'set', 'ux', 'master', lab.underlayBridge, 'up');
  netns.ip(x, 'link', 'set', 'eth0', 'address', ATTACKER_MAC);
  netns.addr(x, 'eth0', `${ATTACKER_IP}/24`);
  return x;
}

describe.skipIf(skip !== null)(`hostile input, L3${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('h3');
  const netns = new Netns('hx');
  let lab: LabState;
  let attacker = '';
  let n1: LabNode, n2: LabNode, n3: LabNode;
  const listeners: Listener[] = [];

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 2 });
    [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    attacker = addAttacker(netns, lab);
    // Warm up: every neighbour entry resolved, so that no ARP is in flight during the checks.
    for (const [a, b] of [[n2.pods[0]!, n1.pods[0]!], [n1.pods[0]!, n2.pods[0]!], [n1.pods[1]!, n1.pods[0]!], [n3.pods[0]!, n1.pods[0]!]] as const) {
      expect((await ping(a, b.ip, 1)).received).toBe(1);
    }
  });
  afterAll(async () => {
    for (const l of listeners) l.stop();
    netns.destroy();
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('underlay: each hostile frame is dropped under its reason, nothing is delivered, tables stay, pings still pass', async () => {
    const target = n1.pods[0]!;
    const listener = await Listener.start(target);
    listeners.push(listener);
    const before = await drops(n1);
    const tablesBefore = await tables(n1);
    const n3Before = await counters(n2);
    const N = 3;
    scapy(attacker, `
N = ${N}
def outer(src='${n2.underlayIp}', sport=40000):
    return Ether(src='${ATTACKER_MAC}', dst='${n1.underlayMac}')/IP(src=src, dst='${n1.underlayIp}')/UDP(sport=sport, dport=${lab.options.port}, chksum=0)
def vx(flags=0x08000000, word2=(1 << 8)):
    return struct.pack('!II', flags, word2)
def inner(tag, smac='${n2.vtepMac}', dmac='${n1.vtepMac}', src='${n2.pods[0]!.ip}'):
    return bytes(Ether(src=smac, dst=dmac)/IP(src=src, dst='${target.ip}')/UDP(sport=4000, dport=${LISTEN_PORT})/Raw(tag.encode()))
frames = []
add = lambda payload, n=N, **kw: frames.extend(outer(**kw)/Raw(payload) for _ in range(n))
add(vx() + inner('CONTROL'))                                         # positive control: delivered
add(vx(flags=0) + inner('HOSTILE no I flag'))
for bit in range(32):                                                 # 31 flag/reserved bits + ...
    if bit != 27: add(vx(flags=0x08000000 | (1 << bit)) + inner('HOSTILE reserved %d' % bit), n=1)
for bit in range(8):                                                  # ... 8 bits after the VNI
    add(vx(word2=(1 << 8) | (1 << bit)) + inner('HOSTILE reserved low %d' % bit), n=1)
add(vx(word2=(2 << 8)) + inner('HOSTILE unknown VNI'))
add(vx() + inner('HOSTILE unknown VTEP'), src='${ATTACKER_IP}')
add(vx() + inner('HOSTILE inner src', src='${n3.pods[0]!.ip}'))
add(vx() + inner('HOSTILE smac ours', smac='${n1.vtepMac}'))
add(vx() + inner('HOSTILE smac multicast', smac='01:00:5e:00:00:01'))
add(vx() + inner('HOSTILE dmac', dmac='${n2.vtepMac}'))
add(vx()[:4])                                                         # VXLAN header cut short
add(vx() + inner('HOSTILE')[:10])                                     # inner Ethernet cut short
add(vx() + inner('HOSTILE')[:14 + 12])                                # inner IPv4 header cut short
add(vx() + inner('HOSTILE ip len')[:14 + 20 + 8])                     # inner IPv4 total length beyond the frame
sendp(frames, iface='eth0', verbose=False)
# An outer IPv4 header claiming 1000 bytes on a short frame: the kernel drops it before flatnet.
bad = Ether(src='${ATTACKER_MAC}', dst='${n1.underlayMac}')/IP(src='${n2.underlayIp}', dst='${n1.underlayIp}', len=1000)/UDP(sport=40000, dport=${lab.options.port}, chksum=0)/Raw(vx() + inner('HOSTILE outer len'))
sendp([bad] * N, iface='eth0', verbose=False)
`);
    const expected = {
      vxlan_no_i_flag: N,
      vxlan_reserved_set: 39,
      vxlan_vni_unknown: N,
      vtep_unknown: N,
      inner_src_not_in_peer_cidr: N,
      inner_src_mac_ours: N,
      inner_src_mac_invalid: N,
      inner_dst_mac_not_ours: N,
      vxlan_truncated: N,
      inner_eth_truncated: N,
      ipv4_truncated: 2 * N,
    };
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    await settle(async () => listener.lines.length >= N && Object.values(delta(await drops(n1), before)).reduce((a, b) => a + b, 0) >= total);
    expect(delta(await drops(n1), before)).toEqual(expected);
    expect(listener.lines).toEqual(Array.from({ length: N }, () => `${n2.pods[0]!.ip} CONTROL`));
    expect(await tables(n1)).toEqual(tablesBefore);
    expect((await counters(n2)).dropped).toBe(n3Before.dropped); // nothing leaked on to n2
    for (const from of [n2.pods[0]!, n3.pods[0]!, n1.pods[1]!]) expect((await ping(from, target.ip, 2)).received, `${from.name} -> ${target.name}`).toBe(2);
  });

  it('pod: IP, MAC and ARP spoofing and VXLAN to a VTEP are dropped at the pod port; the victims\' ARP entries stay', async () => {
    const [p0, p1] = n1.pods as [LabPod, LabPod];
    const remote = n2.pods[0]!;
    const listener = await Listener.start(remote);
    listeners.push(listener);
    const gwEntry = (): string => run('ip', ['-n', p1.ns, 'neigh', 'show', n1.gateway]).trim();
    expect((await ping(p1, n1.gateway, 1)).received).toBe(1); // p1 learns the gateway's MAC
    expect(gwEntry()).toContain(`lladdr ${n1.vtepMac}`);
    const before = await drops(n1);
    const tablesBefore = await tables(n1);
    const remoteBefore = await drops(n2);
    const N = 3;
    scapy(p0.ns, `
N = ${N}
gw = '${n1.vtepMac}'
udp = lambda tag: UDP(sport=4000, dport=${LISTEN_PORT})/Raw(tag.encode())
frames = []
frames += [Ether(src='${p0.mac}', dst=gw)/IP(src='${p0.ip}', dst='${remote.ip}')/udp('CONTROL')] * N
frames += [Ether(src='${p0.mac}', dst=gw)/IP(src='${p1.ip}', dst='${remote.ip}')/udp('HOSTILE ip spoof')] * N
frames += [Ether(src='${p1.mac}', dst=gw)/IP(src='${p0.ip}', dst='${remote.ip}')/udp('HOSTILE mac spoof')] * N
frames += [Ether(src='${p0.mac}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=2, hwsrc='${p0.mac}', psrc='${n1.gateway}', hwdst='ff:ff:ff:ff:ff:ff', pdst='${n1.gateway}')] * N
frames += [Ether(src='${p0.mac}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='${p0.mac}', psrc='${p1.ip}', pdst='${n1.gateway}')] * N
frames += [Ether(src='${p0.mac}', dst=gw)/IP(src='${p0.ip}', dst='${n2.underlayIp}')/UDP(sport=4000, dport=${lab.options.port})/Raw(struct.pack('!II', 0x08000000, 1 << 8))] * N
sendp(frames, iface='eth0', verbose=False)
`);
    const expected = { spoof_src_ip: N, spoof_src_mac: N, arp_spoof: 2 * N, pod_sent_vxlan: N };
    await settle(async () => listener.lines.length >= N && Object.values(delta(await drops(n1), before)).reduce((a, b) => a + b, 0) >= 5 * N);
    expect(delta(await drops(n1), before)).toEqual(expected);
    expect(listener.lines).toEqual(Array.from({ length: N }, () => `${p0.ip} CONTROL`));
    expect(delta(await drops(n2), remoteBefore)).toEqual({});
    expect(await tables(n1)).toEqual(tablesBefore);
    expect(gwEntry()).toContain(`lladdr ${n1.vtepMac}`);
    for (const to of [remote, p1, n3.pods[0]!]) expect((await ping(p0, to.ip, 2)).received, `${p0.name} -> ${to.name}`).toBe(2);
  });
});

describe.skipIf(skip !== null)(`hostile input, L2: a MAC-learning flood over the FDB limit${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('h2');
  const netns = new Netns('hy');
  const LIMIT = 16;
  let lab: LabState;
  let attacker = '';

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, mode: 'l2', nodes: 3, kernelNodes: 1, pods: 1, fdbLimit: LIMIT });
    attacker = addAttacker(netns, lab);
  });
  afterAll(async () => {
    netns.destroy();
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('learning stops at the limit, each refusal is counted, nothing reaches the pods, known MACs keep forwarding', async () => {
    const [n1, n2, k] = lab.nodes as [LabNode, LabNode, LabNode];
    const p = n1.pods[0]!;
    // Learn the remote pods first (the flood must not evict them).
    for (const to of [n2.pods[0]!, k.pods[0]!]) expect((await ping(p, to.ip, 1)).received).toBe(1);
    const fdbBefore = (await request(n1.socket!, { cmd: 'show', what: 'fdb' })) as FdbRow[];
    const learnedBefore = fdbBefore.filter((e) => e.state !== 'flood');
    expect(learnedBefore.map((e) => e.mac)).toEqual(expect.arrayContaining([p.mac, n2.pods[0]!.mac, k.pods[0]!.mac]));
    const room = LIMIT - learnedBefore.length;
    expect(room).toBeGreaterThan(0);
    const ports = async (): Promise<number[]> => ((await request(n1.socket!, { cmd: 'show', what: 'ports' })) as PortRow[]).filter((x) => x.role !== 'overlay').map((x) => x.txPackets);
    const txBefore = await ports();
    const before = await drops(n1);
    const M = 200;
    // From the kernel node's address (a known peer), frames from M new source MACs to a MAC
    // that lives behind that same peer: learned while there is room, never delivered locally.
    scapy(attacker, `
frames = [Ether(src='${ATTACKER_MAC}', dst='${n1.underlayMac}')/IP(src='${k.underlayIp}', dst='${n1.underlayIp}')/UDP(sport=40000, dport=${lab.options.port}, chksum=0)/
          Raw(struct.pack('!II', 0x08000000, 1 << 8) + bytes(Ether(src='02:ee:00:00:%02x:%02x' % (i >> 8, i & 0xff), dst='${k.pods[0]!.mac}')/IP(src='10.244.3.200', dst='${k.pods[0]!.ip}')/UDP(sport=1, dport=2)))
          for i in range(${M})]
sendp(frames, iface='eth0', verbose=False)
`);
    await settle(async () => Object.values(delta(await drops(n1), before)).reduce((a, b) => a + b, 0) >= M);
    // Each of the M frames is counted once: learned while there was room (then not delivered:
    // its destination is behind the same peer), refused once the table was full. Background
    // traffic may take a slot between reading `room` and the flood, so the split can move by
    // what else was learned; the sum and the bound cannot.
    const d = delta(await drops(n1), before);
    expect(Object.keys(d).sort()).toEqual(['fdb_full', 'overlay_loop']);
    expect(d.fdb_full! + d.overlay_loop!).toBe(M);
    expect(d.fdb_full).toBeGreaterThanOrEqual(M - room);
    expect(d.overlay_loop).toBeLessThanOrEqual(room);
    const c = await counters(n1);
    expect(c.fdb_entries).toBe(LIMIT);
    expect(c.fdb_refused_full).toBe(d.fdb_full);
    expect(await ports()).toEqual(txBefore);
    const fdbAfter = (await request(n1.socket!, { cmd: 'show', what: 'fdb' })) as FdbRow[];
    for (const e of learnedBefore) expect(fdbAfter).toContainEqual(expect.objectContaining({ mac: e.mac, dst: e.dst }));
    for (const to of [n2.pods[0]!, k.pods[0]!]) expect((await ping(p, to.ip, 2)).received, `${p.name} -> ${to.name}`).toBe(2);
  });
});
