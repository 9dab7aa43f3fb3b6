// `flatnet trace` as a user runs it against a running lab: the built executable, one process per
// trace, the node's control socket. One L3 lab (2 flatnet nodes, 1 kernel node, 2 pods each).
// Each case checks the outcome, the stage that decided and the frames that would leave; a run
// of traces leaves the daemon's counters exactly as they were; a frame captured from a real
// ping and fed back with --pcap traces to where the ping really went; and a real `ping -t 1`
// gets the ICMP error the trace predicted.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, inNsAsync, sleep } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();
const MAIN = join(REPO_ROOT, 'dist/src/cli/main.js');

interface Run { code: number | null; stdout: string; stderr: string }
function flatnet(...args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface TraceJson {
  in: { port: string; role: string };
  packet: { hex: string; length: number };
  steps: { stage: string; looked: string; matched: { what: string; detail: string }[]; verdict: string }[];
  outcome: 'deliver' | 'tunnel' | 'flood' | 'reply' | 'drop';
  drop: { reason: string; help: string } | null;
  frames: { port: string; role: string; kind: string; to: string | null; hex: string; length: number }[];
  notes: string[];
}

describe.skipIf(skip !== null)(`flatnet trace against a running lab${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('t');
  let lab: LabState;
  let sock: string;
  let tmp: string;

  /** `flatnet trace --json ARGS` against n1's daemon; the trace must succeed (exit 0). */
  const trace = (...args: string[]): TraceJson => {
    const r = flatnet('trace', '-s', sock, '--json', ...args);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as TraceJson;
  };
  const lastStage = (t: TraceJson): string => t.steps[t.steps.length - 1]!.stage;
  const counters = (): Record<string, unknown> => {
    const r = flatnet('show', 'counters', '-s', sock, '--json');
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  beforeAll(async () => {
    ensureDist();
    tmp = mkdtempSync(join(tmpdir(), 'flatnet-trace-'));
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 2 });
    sock = lab.nodes[0]!.socket!;
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the table: each path and each drop a user can provoke from a pod, the host or the overlay, and what leaves', () => {
    // Like `ovs-appctl ofproto/trace`: the trace itself succeeding is exit 0, whatever the outcome.
    const before = counters();

    const same = trace('--in', 'n1p0', 'icmp', 'to', '10.244.1.11');
    expect(same.in).toEqual({ port: 'n1p0', role: 'pod' });
    expect(same.outcome).toBe('deliver');
    expect(same.steps.map((s) => s.stage)).toEqual(['ingress', 'policy-egress', 'service-nat', 'route', 'policy-ingress', 'egress', 'transmit']);
    expect(same.frames).toMatchObject([{ port: 'n1p1', role: 'pod', kind: 'forwarded', length: 98 }]);
    // Routed: TTL 64 -> 63, from the gateway MAC to the pod's.
    expect(same.frames[0]!.hex.slice(0, 24)).toBe('02000af4010b' + '0e000af40100');
    expect(same.frames[0]!.hex.slice(44, 46)).toBe('3f');

    for (const [dst, peer, ip] of [['10.244.2.10', 'n2', '198.51.100.2'], ['10.244.3.11', 'n3', '198.51.100.3']] as const) {
      const t = trace('--in', 'n1p0', 'tcp', 'to', `${dst}:80`);
      expect(t.outcome, dst).toBe('tunnel');
      expect(t.steps.find((s) => s.stage === 'route')!.verdict).toBe(`tunnel to ${peer} (${ip})`);
      expect(t.frames).toHaveLength(1);
      const f = t.frames[0]!;
      expect(f).toMatchObject({ port: 'vxlan:4789', role: 'overlay', to: `${ip}:4789`, length: 58 + 50 });
      // The outer IPv4 (at 14): 198.51.100.1 -> ip, UDP to 4789, VXLAN I flag and VNI 1.
      expect(f.hex.slice(52, 68)).toBe('c6336401' + Buffer.from(ip.split('.').map(Number)).toString('hex'));
      expect(f.hex.slice(72, 76)).toBe('12b5');
      expect(f.hex.slice(84, 100)).toBe('0800000000000100');
    }

    const fromPeer = trace('--in', 'overlay', 'udp', '10.244.2.10:5000', 'to', '10.244.1.10:53');
    expect(fromPeer.in.role).toBe('overlay');
    expect(fromPeer.outcome).toBe('deliver');
    expect(fromPeer.steps[0]!.matched[0]!.detail).toContain('n2 (198.51.100.2');
    expect(fromPeer.frames).toMatchObject([{ port: 'n1p0', kind: 'forwarded', length: 42 }]);

    const fromHost = trace('--in', 'host', 'icmp', 'to', '10.244.1.10');
    expect(fromHost.in.role).toBe('host');
    expect(fromHost.outcome).toBe('deliver');
    expect(fromHost.frames).toMatchObject([{ port: 'n1p0', kind: 'forwarded' }]);

    const arp = trace('--in', 'n1p0', 'arp', 'who-has', '10.244.1.1');
    expect(arp.outcome).toBe('reply');
    expect(arp.frames).toMatchObject([{ port: 'n1p0', kind: 'reply', length: 42 }]);
    // ARP reply (op 2) from the VTEP MAC: 10.244.1.1 is-at 0e:00:0a:f4:01:00.
    expect(arp.frames[0]!.hex.slice(40, 44)).toBe('0002');
    expect(arp.frames[0]!.hex.slice(44, 64)).toBe('0e000af40100' + '0af40101');

    const drops: [string[], string, string][] = [
      [['--in', 'n1p0', 'tcp', '10.244.1.99', 'to', '10.244.2.10:80'], 'spoof_src_ip', 'ingress'],
      [['--in', 'n1p0', 'udp', 'to', '10.244.9.10:80'], 'no_route', 'route'],
      [['--in', 'n1p0', 'udp', 'to', '10.244.2.10:80', 'ttl', '1'], 'ttl_exceeded', 'route'],
      [['--in', 'n1p0', 'udp', 'to', '10.244.2.10:80', 'len', '1460'], 'mtu_exceeded', 'egress'],
      [['--in', 'n1p0', 'udp', 'to', '10.244.2.10:80', 'bad-csum'], 'ipv4_bad_checksum', 'route'],
      [['--in', 'overlay', 'udp', '10.244.2.10:5000', 'to', '10.244.1.10:53', 'vni', '7'], 'vxlan_vni_unknown', 'ingress'],
    ];
    for (const [args, reason, stage] of drops) {
      const t = trace(...args);
      expect(t.outcome, args.join(' ')).toBe('drop');
      expect(t.drop?.reason, args.join(' ')).toBe(reason);
      expect(lastStage(t), args.join(' ')).toBe(stage);
    }
    // The two that answer: time exceeded from the gateway, fragmentation needed with the pod MTU.
    const ttl = trace('--in', 'n1p0', 'udp', 'to', '10.244.2.10:80', 'ttl', '1');
    expect(ttl.frames).toMatchObject([{ port: 'n1p0', kind: 'icmp-error' }]);
    expect(ttl.frames[0]!.hex.slice(52, 68)).toBe('0af40101' + '0af4010a');
    expect(ttl.frames[0]!.hex.slice(68, 72)).toBe('0b00');
    const big = trace('--in', 'n1p0', 'udp', 'to', '10.244.2.10:80', 'len', '1460');
    expect(big.frames).toMatchObject([{ port: 'n1p0', kind: 'icmp-error', length: 590 }]);
    expect(big.frames[0]!.hex.slice(68, 72)).toBe('0304');
    expect(parseInt(big.frames[0]!.hex.slice(80, 84), 16)).toBe(1450);
    expect(big.notes.some((n) => n.includes('rate limited'))).toBe(true);

    // --hex: the packet the description built, given back as bytes, traces the same.
    const again = trace('--in', 'n1p0', '--hex', same.packet.hex);
    expect(again.packet).toEqual(same.packet);
    expect(again.frames).toEqual(same.frames);

    // None of it touched the daemon: no counter moved, nothing was sent or learned.
    expect(counters()).toEqual(before);
  });

  it('human output: numbered stages, the outcome line, the leaving frame dissected', () => {
    const r = flatnet('trace', '-s', sock, '--in', 'n1p0', 'udp', 'to', '10.244.2.10:53', 'ttl', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^packet: 42 bytes in pod n1p0: 02:00:0a:f4:01:0a > 0e:00:0a:f4:01:00 ipv4 10\.244\.1\.10 > 10\.244\.2\.10/);
    expect(r.stdout).toMatch(/^ 1 ingress\s/m);
    expect(r.stdout).toMatch(/^ 4 route\s+destination 10\.244\.2\.10, ttl 1$/m);
    expect(r.stdout).toMatch(/^outcome: drop ttl_exceeded: TTL expired in transit/m);
    expect(r.stdout).toMatch(/^frame 1: icmp-error out pod n1p0 \(70 bytes\)$/m);
    expect(r.stdout).toMatch(/icmp\s+time-exceeded in-transit, csum good/);
  });

  it('bad requests fail typed, with the word or port at fault, exit 1', () => {
    const cases: [string[], RegExp][] = [
      [['--in', 'nope', 'tcp', 'to', '10.244.2.10:80'], /no port "nope" to trace from: --in takes host, overlay or a pod \(n1p0, n1p1\) \(ERR_TRACE_INPUT\)/],
      [['--in', 'n1p0', 'tcp', 'to', '10.244.2.10'], /word 3: expected IP:PORT after 'to'.*\(ERR_TRACE_PACKET\)/],
      [['--in', 'n1p0', 'udp', 'to', '10.244.2.10:53', 'ttl', '300'], /ttl.*\(ERR_TRACE_PACKET\)/],
      [['--in', 'overlay', '--hex', '0011'], /\(ERR_TRACE_INPUT\)/],
      [['--in', 'n1p0', '--hex', 'zz'], /\(ERR_TRACE_(INPUT|PACKET)\)/],
    ];
    for (const [args, msg] of cases) {
      const r = flatnet('trace', '-s', sock, ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const noDaemon = flatnet('trace', '-s', join(tmp, 'absent.sock'), '--in', 'n1p0', 'icmp', 'to', '10.244.1.11');
    expect(noDaemon.code).toBe(1);
    expect(noDaemon.stderr).toMatch(/absent\.sock/);
  });

  it('a frame captured from a real ping traces (--pcap) to where the ping went; a real ping -t 1 gets the predicted error', async () => {
    const pod = lab.nodes[0]!.pods[0]!;
    const pcap = join(tmp, 'ping.pcapng');
    const cap = inNsAsync(pod.ns, 'dumpcap', ['-q', '-i', 'eth0', '-f', 'icmp and dst host 10.244.2.10', '-c', '1', '-a', 'duration:20', '-w', pcap]);
    await sleep(1000); // dumpcap has no readiness signal; its filter is in place well within this
    inNs(pod.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.244.2.10']);
    expect((await cap).code).toBe(0);
    const t = trace('--in', 'n1p0', '--pcap', pcap, '--frame', '1');
    expect(t.outcome).toBe('tunnel');
    expect(t.frames).toMatchObject([{ to: '198.51.100.2:4789' }]);

    const predicted = trace('--in', 'n1p0', 'icmp', 'to', '10.244.2.10', 'ttl', '1');
    expect(predicted.drop?.reason).toBe('ttl_exceeded');
    const r = spawnSync('ip', ['netns', 'exec', pod.ns, 'ping', '-c', '1', '-t', '1', '-W', '2', '10.244.2.10'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/From 10\.244\.1\.1 icmp_seq=1 Time to live exceeded/);
  });
});
