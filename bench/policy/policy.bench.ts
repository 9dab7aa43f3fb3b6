/**
 * NetworkPolicy and Services on the data path (issues 12 and 13): the replay of
 * pod-to-remote-udp64 (256 UDP flows from the local pods to pods on nodes 2 and 3) through the full pipeline,
 *   pod-ip           no tables (the baseline every ratio is against)
 *   policy-N         N NetworkPolicies isolating the sending pods for egress, every one with a
 *                    rule the traffic matches (N = 0, 100, 1,000, 10,000): established flows,
 *                    judged once and then found in the connection table
 *   policy-100-new   the same with 100 policies, every packet a new connection (UDP timeout 0):
 *                    a policy decision and a connection-table insert per packet
 *   service-N        the same frames sent to ClusterIPs (one Service per destination pod, among
 *                    N Services in all: N = 10, 1,000, 10,000), DNATed to that pod
 *   pod-ip-svc       pod-ip's frames (to the pod IPs) on a node with service-1000's Services
 *                    installed, as on any Kubernetes node (there is always the `kubernetes`
 *                    Service): the direct traffic a ClusterIP's is compared with in a cluster
 *   policy-1000-svc  policy-1000 on such a node (the policies and the Services in one connection
 *                    table, as the daemon keeps them): against pod-ip-svc, what the policies
 *                    add on a node of a cluster
 *   pod-ip-in        the same flows the other way: VXLAN from nodes 2 and 3 to the local pods,
 *                    no tables (the baseline of the -in cases)
 *   policy-1000-in   those, with 1,000 NetworkPolicies isolating the local pods for ingress,
 *                    each with a rule the traffic matches (the overlay's side of the pipeline)
 *   service-1000-in  those as the replies of service-1000's connections (opened by one pass of
 *                    service-1000's frames first): translated back, source = the ClusterIP
 * and, in the parent process, the time to compile 10,000 policies over 1,000 pods and a
 * catalog of 10,000 Services. Each case runs in its own process (so one case's code paths do
 * not shape the JIT for the next), the cases interleaved run by run.
 *
 * Wall time per frame and the process's CPU time per frame (steadier on a shared machine); the
 * rate against the baseline both as a ratio of medians and paired (the median of each run's
 * ratio against the baseline's run of the same pass over the cases).
 * Run: npm run build:ts && node --expose-gc dist/bench/policy/policy.bench.js [--runs 5] [--seconds 2] [--json out.json]
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConnTable } from '../../src/conntrack/table.js';
import { PcapReader, PcapRecord, PcapWriter } from '../../src/pcap/pcap.js';
import { PolicySet } from '../../src/policy/engine.js';
import { PolicyEnforcer } from '../../src/policy/enforcer.js';
import type { NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { defaultNodeConfig } from '../../src/replay/node.js';
import { FrameCapture } from '../../src/replay/replay-port.js';
import { ReplayNode, type ReplayResult } from '../../src/replay/replay.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';
import { ServiceNat } from '../../src/service/nat.js';
import { formatIpv4 } from '../../src/wire/addr.js';
import { vxlanFrame } from '../../src/wire/build.js';
import { fold16, sum16 } from '../../src/wire/checksum.js';
import { EncapTemplate } from '../../src/wire/encap.js';
import { machine } from '../harness.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const FIXTURE = fileURLToPath(new URL('../../../fixtures/replay/pod-to-remote-udp64.pcap', import.meta.url));
const CASES = ['pod-ip', 'policy-0', 'policy-100', 'policy-1000', 'policy-10000', 'policy-100-new', 'service-10', 'service-1000', 'service-10000', 'pod-ip-svc', 'policy-1000-svc', 'pod-ip-in', 'policy-1000-in', 'service-1000-in'] as const;
type Case = (typeof CASES)[number];

/** The fixture with UDP checksums zeroed (both variants alike) and, for services, destinations moved to ClusterIPs. */
function frames(toServices: boolean): { data: Buffer; dsts: number[] } {
  const data = Buffer.from(readFileSync(FIXTURE));
  const r = new PcapReader(data), rec = new PcapRecord();
  const dsts: number[] = [];
  while (r.next(rec)) {
    const ip = rec.off + 14;
    if (data[ip + 9] !== 17) continue;
    const dst = data.readUInt32BE(ip + 16);
    let k = dsts.indexOf(dst);
    if (k < 0) { dsts.push(dst); k = dsts.length - 1; }
    data.writeUInt16BE(0, ip + 20 + 6);
    if (toServices) {
      data.writeUInt32BE(vip(k), ip + 16);
      data.writeUInt16BE(0, ip + 10);
      data.writeUInt16BE(~fold16(sum16(data, ip, 20)) & 0xffff, ip + 10);
    }
  }
  return { data, dsts };
}
/**
 * inbound: the fixture's UDP flows the other way, as nodes 2 and 3 send them: the inner frame
 * from the remote pod (addresses and ports swapped, VTEP MACs of the peer and ours, TTL 63) in
 * VXLAN from the peer's underlay address, as a pcap file's bytes (replay's input).
 */
function inbound(): Buffer {
  const { data } = frames(false);
  const r = new PcapReader(data), rec = new PcapRecord();
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-policy-bench-'));
  const file = join(dir, 'inbound.pcap');
  const w = new PcapWriter(file);
  const peers = new Map<number, EncapTemplate>();
  while (r.next(rec)) {
    const ip = rec.off + 14;
    if (data[ip + 9] !== 17) continue;
    const inner = Buffer.from(data.subarray(rec.off, rec.off + rec.capLen));
    const src = inner.readUInt32BE(14 + 12), dst = inner.readUInt32BE(14 + 16), node = (dst >>> 8) & 0xff;
    inner.writeUInt32BE(dst, 14 + 12);
    inner.writeUInt32BE(src, 14 + 16);
    const sport = inner.readUInt16BE(14 + 20), dport = inner.readUInt16BE(14 + 22);
    inner.writeUInt16BE(dport, 14 + 20);
    inner.writeUInt16BE(sport, 14 + 22);
    inner.writeUIntBE(0x0e000af40000 + node * 0x100, 6, 6); // the peer's VTEP MAC
    inner.writeUIntBE(0x0e000af40100, 0, 6); // ours
    inner[14 + 8] = 63;
    inner.writeUInt16BE(0, 14 + 10);
    inner.writeUInt16BE(~fold16(sum16(inner, 14, 20)) & 0xffff, 14 + 10);
    let t = peers.get(node);
    if (t === undefined) {
      t = new EncapTemplate({ srcMac: 0x0200c6336400 + node, dstMac: 0x0200c6336401, srcIp: (0xc6336400 + node) >>> 0, dstIp: 0xc6336401, vni: 1 });
      peers.set(node, t);
    }
    const f = vxlanFrame(t, inner);
    w.write(f, 0, f.length);
  }
  w.close();
  const out = readFileSync(file);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** ClusterIP of Service k: 10.96.0.0/12 counted from 10.96.0.10. */
const vip = (k: number): number => (0x0a60_000a + k) >>> 0;

/** install puts the case's tables on the node; its Service table, if any. */
function install(c: Case, node: ReplayNode, dsts: readonly number[]): ServiceNat | null {
  const clock = node.clock;
  if (c === 'policy-1000-in') {
    const pods: Pod[] = node.cfg.pods.map((p) => ({ metadata: { name: p.name, namespace: 'bench', labels: { app: 'dst' } }, status: { podIP: formatIpv4(p.ip) } }));
    const policies: NetworkPolicy[] = Array.from({ length: 1000 }, (_, i) => ({
      metadata: { name: `p${i}`, namespace: 'bench' },
      spec: { podSelector: { matchLabels: { app: 'dst' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ ipBlock: { cidr: `10.${100 + (i % 100)}.0.0/16` } }, { ipBlock: { cidr: '10.244.0.0/16' } }], ports: [{ protocol: 'UDP', port: 1024, endPort: 65535 }] }] },
    }));
    new PolicyEnforcer(new PolicySet({ namespaces: [{ metadata: { name: 'bench' } }], pods, policies }), new ConnTable({ capacity: 65_536 }), clock).install(node.sw);
  } else if (c.startsWith('policy-')) {
    const n = Number(c.split('-')[1]);
    const cfg = node.cfg;
    const pods: Pod[] = cfg.pods.map((p) => ({ metadata: { name: p.name, namespace: 'bench', labels: { app: 'src' } }, status: { podIP: formatIpv4(p.ip) } }));
    const policies: NetworkPolicy[] = Array.from({ length: n }, (_, i) => ({
      metadata: { name: `p${i}`, namespace: 'bench' },
      spec: { podSelector: { matchLabels: { app: 'src' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `10.${100 + (i % 100)}.0.0/16` } }, { ipBlock: { cidr: '10.244.0.0/16' } }], ports: [{ protocol: 'UDP', port: 5201 }] }] },
    }));
    const fresh = c === 'policy-100-new';
    const ct = new ConnTable({ capacity: 65_536, timeouts: fresh ? { udp: 0, udpStream: 0 } : {} });
    new PolicyEnforcer(new PolicySet({ namespaces: [{ metadata: { name: 'bench' } }], pods, policies }), ct, clock).install(node.sw);
    if (c === 'policy-1000-svc') return installServices(1000, node, dsts, ct);
  } else if (c.startsWith('service-') || c === 'pod-ip-svc') {
    return installServices(c === 'pod-ip-svc' ? 1000 : Number(c.split('-')[1]), node, dsts, new ConnTable({ capacity: 65_536 }));
  }
  return null;
}

/** installServices installs n Services (one per destination pod first, the rest elsewhere) tracking in `ct`. */
function installServices(n: number, node: ReplayNode, dsts: readonly number[], ct: ConnTable): ServiceNat {
  const clock = node.clock;
  const services: Service[] = [], slices: EndpointSlice[] = [];
  for (let k = 0; k < Math.max(n, dsts.length); k++) {
    services.push({ metadata: { name: `s${k}`, namespace: 'bench' }, spec: { clusterIP: formatIpv4(vip(k)), ports: [{ port: 5201, protocol: 'UDP' }] } });
    const backend = k < dsts.length ? formatIpv4(dsts[k]!) : `10.244.9.${k % 250}`;
    slices.push({ metadata: { name: `s${k}-1`, namespace: 'bench', labels: { 'kubernetes.io/service-name': `s${k}` } }, ports: [{ port: 5201, protocol: 'UDP' }], endpoints: [{ addresses: [backend] }] });
  }
  const cat = new ServiceCatalog({ services, slices, pods: [], node: 'node1' });
  const nat = new ServiceNat(cat, ct, { nodeIp: node.cfg.gateway, clock });
  node.sw.setServices(nat);
  return nat;
}

/** worker: one case, warmed on a first node, timed on a second (as replayCapture does). */
function worker(c: Case, seconds: number): void {
  const out = frames(c.startsWith('service-')), dsts = out.dsts;
  const data = c.endsWith('-in') ? inbound() : out.data;
  const cfg = defaultNodeConfig();
  // service-1000-in: the connections its frames answer, opened by the other way's frames.
  const open = (node: ReplayNode): void => {
    if (c === 'service-1000-in') node.run(node.load(out.data), { loops: 1, capture: null });
  };
  const warm = new ReplayNode(cfg);
  install(c, warm, dsts);
  open(warm);
  const input = warm.load(data);
  const probe = warm.run(input, { loops: 200, capture: null });
  const loops = Math.max(50, Math.ceil((seconds * 1e9) / (probe.nsPerFrame * input.frames)));
  warm.run(input, { loops, capture: new FrameCapture() });
  const node = new ReplayNode(cfg);
  const nat = install(c, node, dsts);
  open(node);
  const before = nat?.translated ?? 0;
  const input2 = node.load(data);
  // CPU time beside the wall time: on a shared machine the wall time also counts the moments
  // another process had the core; the process's CPU time does not (it counts its GC threads).
  const cpu0 = process.cpuUsage();
  const r: ReplayResult = node.run(input2, { loops });
  const cpu = process.cpuUsage(cpu0);
  const cpuNsPerFrame = ((cpu.user + cpu.system) * 1000) / r.framesIn;
  // The Service cases measure translated packets: every one of them (a connection that timed
  // out would let its packets through untranslated, and the case would measure something else).
  // pod-ip-svc and policy-1000-svc measure the direct traffic: none of it translated.
  const direct = c.endsWith('-svc');
  if (nat !== null && !direct && nat.translated - before < r.framesIn) throw new Error(`${c}: ${nat.translated - before} of ${r.framesIn} frames translated`);
  if (nat !== null && direct && nat.translated !== before) throw new Error(`${c}: ${nat.translated - before} frames translated`);
  process.stdout.write(JSON.stringify({ nsPerFrame: r.nsPerFrame, cpuNsPerFrame, heapBytesPerFrame: r.heapBytesPerFrame, framesOut: r.framesOut, framesIn: r.framesIn, drops: r.drops }));
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function compileTimes(): { policies: number; services: number } {
  const namespaces = Array.from({ length: 20 }, (_, n) => ({ metadata: { name: `ns${n}`, labels: { team: `t${n % 5}` } } }));
  const pods: Pod[] = Array.from({ length: 1000 }, (_, i) => ({ metadata: { name: `p${i}`, namespace: `ns${i % 20}`, labels: { app: `a${i % 50}`, tier: i % 3 ? 'web' : 'db' } }, status: { podIP: `10.244.${(i >> 8) + 1}.${i & 255}` } }));
  const policies: NetworkPolicy[] = Array.from({ length: 10_000 }, (_, k) => ({
    metadata: { name: `pol${k}`, namespace: `ns${k % 20}` },
    spec: { podSelector: { matchLabels: { app: `a${k % 50}` } }, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }, { namespaceSelector: { matchLabels: { team: `t${k % 5}` } } }], ports: [{ port: 80 + (k % 10) }] }] },
  }));
  const services: Service[] = Array.from({ length: 10_000 }, (_, k) => ({ metadata: { name: `s${k}`, namespace: 'bench' }, spec: { clusterIP: formatIpv4(vip(k)), ports: [{ name: 'http', port: 80 }] } }));
  const slices: EndpointSlice[] = services.map((s, k) => ({ metadata: { name: `${s.metadata.name}-1`, namespace: 'bench', labels: { 'kubernetes.io/service-name': s.metadata.name } }, ports: [{ name: 'http', port: 8080 }], endpoints: [1, 2, 3].map((e) => ({ addresses: [`10.244.${e}.${k % 250}`] })) }));
  const p: number[] = [], s: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t = performance.now();
    new PolicySet({ namespaces, pods, policies });
    p.push(performance.now() - t);
    t = performance.now();
    new ServiceCatalog({ services, slices, pods: [], node: 'n1' });
    s.push(performance.now() - t);
  }
  return { policies: median(p), services: median(s) };
}

function main(): void {
  const one = arg('--case', '');
  const seconds = Number(arg('--seconds', '2'));
  if (one !== '') { worker(one as Case, seconds); return; }
  const runs = Number(arg('--runs', '5'));
  const self = fileURLToPath(import.meta.url);
  const results = new Map<Case, { ns: number[]; cpu: number[]; heap: number[]; drops: number }>(CASES.map((c) => [c, { ns: [], cpu: [], heap: [], drops: 0 }]));
  for (let r = 0; r < runs; r++) {
    for (const c of CASES) {
      const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=64', self, '--case', c, '--seconds', String(seconds)], { encoding: 'utf8', maxBuffer: 1 << 20 })) as { nsPerFrame: number; cpuNsPerFrame: number; heapBytesPerFrame: number; drops: Record<string, number> };
      const x = results.get(c)!;
      x.ns.push(out.nsPerFrame);
      x.cpu.push(out.cpuNsPerFrame);
      x.heap.push(out.heapBytesPerFrame);
      x.drops = Math.max(x.drops, Object.values(out.drops).reduce((a, b) => a + b, 0));
    }
    process.stderr.write(`run ${r + 1}/${runs} done\n`);
  }
  // The -in cases against pod-ip-in, the others against pod-ip.
  const baseOf = (c: Case): { ns: number; cpu: number; runs: number[] } => {
    const b = results.get(c.endsWith('-in') ? 'pod-ip-in' : 'pod-ip')!;
    return { ns: median(b.ns), cpu: median(b.cpu), runs: b.ns };
  };
  // Paired: each run's case against the baseline of the same run (one pass over the cases, about
  // a minute), so that the machine's drift over the invocation (other tenants) mostly cancels out.
  const pairedTo = (c: Case, base: readonly number[]): number => median(results.get(c)!.ns.map((v, r) => base[r]! / v));
  const paired = (c: Case): number => pairedTo(c, baseOf(c).runs);
  const lines = [
    `policy and service bench: ${machine()}, ${runs} runs per case, >= ${seconds} s each, cases interleaved`,
    '',
    '| case | ns/frame (median) | Mpps | rate vs pod-ip (pod-ip-in for -in) | paired rate (median of the runs\' own) | ns/frame, all runs | CPU ns/frame (median) | CPU ratio | heap B/frame (max) | drops |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|',
    ...CASES.map((c) => {
      const x = results.get(c)!, m = median(x.ns), mc = median(x.cpu), base = baseOf(c);
      return `| ${c} | ${m.toFixed(1)} | ${(1000 / m).toFixed(2)} | ${(base.ns / m).toFixed(3)} | ${paired(c).toFixed(3)} | ${x.ns.map((v) => v.toFixed(0)).join(', ')} | ${mc.toFixed(1)} | ${(base.cpu / mc).toFixed(3)} | ${Math.max(...x.heap).toFixed(3)} | ${x.drops} |`;
    }),
  ];
  // Through a ClusterIP, and with 1,000 policies, against the direct traffic on a node with
  // the Services installed.
  const svcBase = results.get('pod-ip-svc')!;
  lines.push('', '| case | rate vs pod-ip-svc (the direct traffic, Services installed) | paired |', '|---|---:|---:|',
    ...(['service-10', 'service-1000', 'service-10000', 'policy-1000-svc'] as const).map((c) => {
      const x = results.get(c)!;
      return `| ${c} | ${(median(svcBase.ns) / median(x.ns)).toFixed(3)} | ${pairedTo(c, svcBase.ns).toFixed(3)} |`;
    }));
  const t = compileTimes();
  lines.push('', `compile: 10,000 NetworkPolicies over 1,000 pods ${t.policies.toFixed(0)} ms; 10,000 Services with 3 endpoints each ${t.services.toFixed(0)} ms (median of 5)`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const json = arg('--json', '');
  if (json !== '') writeFileSync(json, JSON.stringify({ machine: machine(), runs, seconds, cases: Object.fromEntries(results), compileMs: t }, null, 2));
}

main();
