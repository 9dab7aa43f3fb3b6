/**
 * The underlay check: capture every frame on the underlay bridge's ports while the lab test
 * runs (dumpcap, inside the underlay namespace), then dissect the capture with tshark, an
 * independent implementation, and check every frame:
 *
 *   - it is ARP between underlay addresses, or IPv4/UDP to the lab's VXLAN port between
 *     underlay addresses of the lab, dissected as VXLAN (`-d udp.port==P,vxlan` for ports other
 *     than 4789) with flags 0x08 (I only), the lab's VNI and every reserved bit zero;
 *   - the inner frame carries the lab's addresses: pod or VTEP IPs (and, in L3 mode, the VTEP
 *     MACs of the flannel triple; in L2 mode pod MACs);
 *   - tshark found nothing malformed and no expert item of severity Error (checksums of the
 *     outer and inner IPv4, UDP and TCP headers are verified: `-o *.check_checksum:TRUE`), and
 *     no ICMP checksum is bad (tshark always verifies it, but only warns);
 *   - the outer UDP checksum is zero or good, and is what the sender is configured for: zero
 *     from flatnet (`udpChecksum: false`) and from kernel nodes with `noudpcsum`, computed and
 *     good from kernel nodes with `udpcsum`. A flatnet node with offloads on sends its GSO
 *     trains through the UDP socket, where the kernel computes the checksum (Linux refuses
 *     UDP GSO on a socket with SO_NO_CHECK), so from it both zero and good are expected.
 *
 * Frames are captured as they enter the bridge; broadcasts also as they leave it (both copies
 * are checked; `frames` counts the entering ones).
 *
 * tshark judges headers only: it runs with a private profile that disables every protocol except
 * DISSECTED_PROTOCOLS (see there), so the payload above the inner TCP/UDP/ICMP header is `data`
 * and no dissector guesses at it (iperf3's random bytes used to be taken for Thrift now and then,
 * which raised expert errors about a protocol that was never there).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatnetError } from '../errors.js';
import { runAsync, sleep } from './exec.js';
import { allPods, UNDERLAY_MTU, type LabPlan } from './topology.js';

/** The tshark fields read per frame; `occurrence=a` lists outer then inner values. */
export const CAPTURE_FIELDS = [
  'frame.number', 'frame.interface_name', 'frame.len', 'frame.protocols', '_ws.malformed', '_ws.expert.severity', '_ws.expert.message',
  'eth.src', 'eth.dst', 'eth.type', 'ip.src', 'ip.dst', 'udp.dstport', 'udp.checksum', 'udp.checksum.status',
  'vxlan.flags', 'vxlan.gbp', 'vxlan.vni', 'vxlan.reserved8', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4', 'icmp.checksum.status',
] as const;
type Field = (typeof CAPTURE_FIELDS)[number];

/** One dissected frame: every field with all its occurrences (outer first). */
export type CapturedFrame = Readonly<Record<Field, readonly string[]>>;

/** Joins a field's occurrences: no field value (expert messages included) contains it. */
const AGG = '\u001f';

/** Wireshark's PI_ERROR (epan/proto.h). */
const EXPERT_ERROR = 0x0080_0000;

export interface SenderChecksums { zero: number; good: number; bad: number }

export interface CaptureReport {
  readonly ok: boolean;
  /** Frames entering the bridge, and all frames captured (broadcasts are also seen leaving it). */
  readonly frames: number;
  readonly copies: number;
  /** Entering VXLAN and ARP frames. */
  readonly vxlan: number;
  readonly arp: number;
  /** Distinct VNIs and UDP destination ports seen in VXLAN frames. */
  readonly vnis: readonly number[];
  readonly ports: readonly number[];
  /** Per sending node: outer UDP checksums that were zero, good, bad (entering copies). */
  readonly checksums: Readonly<Record<string, SenderChecksums>>;
  /** Frames whose inner IPv4 packet is TCP, ICMP (entering copies). */
  readonly innerTcp: number;
  /**
   * Entering VXLAN frames longer than the underlay MTU allows: GSO super-frames a veth underlay
   * with offloads on carries whole (the kernel's VXLAN, flatnet's tunnel TAP); their checksums
   * are partial until something segments them, so they are not judged (every other check is).
   */
  readonly superFrames: number;
  readonly innerIcmp: number;
  /** The first problems found ("frame 12 (u1): ..."), at most 20, and how many in all. */
  readonly problems: readonly string[];
  readonly problemCount: number;
}

/** What the lab's capture must look like. */
export interface CaptureExpectation {
  readonly port: number;
  readonly vni: number;
  readonly mode: 'l3' | 'l2';
  /** The longest frame the underlay carries (its MTU + 14); longer ones are GSO super-frames. */
  readonly maxFrame: number;
  /**
   * The lab's underlay veths keep their offloads (`underlayOffloads`): every sender's checksums
   * may be partial where the capture sees them (the checksum offload case Wireshark warns
   * about), so TCP/UDP checksums are not judged; everything else is.
   */
  readonly checksumOffload?: boolean;
  /** Bridge port name -> the node behind it (its underlay IP and name). */
  readonly ports: Readonly<Record<string, { node: string; ip: string }>>;
  /**
   * Underlay IP -> node name and whether it sends a computed outer UDP checksum (`mixed`: zero
   * on single frames, computed on GSO trains).
   */
  readonly senders: Readonly<Record<string, { node: string; udpCsum: boolean | 'mixed' }>>;
  readonly innerIps: ReadonlySet<string>;
  readonly innerMacs: ReadonlySet<string>;
}

export function expectationOf(plan: LabPlan): CaptureExpectation {
  const ports: Record<string, { node: string; ip: string }> = {};
  const senders: Record<string, { node: string; udpCsum: boolean | 'mixed' }> = {};
  for (const n of plan.nodes) {
    ports[n.underlayPort] = { node: n.name, ip: n.underlayIp };
    const mixed = n.kind === 'flatnet' && plan.options.flatnetOffloads;
    senders[n.underlayIp] = { node: n.name, udpCsum: mixed ? 'mixed' : n.udpCsum };
  }
  const pods = allPods(plan);
  const innerIps = new Set([...pods.map((p) => p.ip), ...plan.nodes.map((n) => n.vtepIp)]);
  const innerMacs = new Set(plan.options.mode === 'l3' ? plan.nodes.map((n) => n.vtepMac) : pods.map((p) => p.mac));
  return { port: plan.options.port, vni: plan.options.vni, mode: plan.options.mode, maxFrame: UNDERLAY_MTU + 14, checksumOffload: plan.options.underlayOffloads, ports, senders, innerIps, innerMacs };
}

/** evaluateCapture checks dissected frames against the expectation (pure; see the module comment). */
export function evaluateCapture(frames: readonly CapturedFrame[], x: CaptureExpectation): CaptureReport {
  const problems: string[] = [];
  let problemCount = 0;
  let entering = 0, vxlan = 0, arp = 0, innerTcp = 0, innerIcmp = 0, superFrames = 0;
  const vnis = new Set<number>(), ports = new Set<number>();
  const checksums: Record<string, SenderChecksums> = {};
  for (const s of Object.values(x.senders)) checksums[s.node] = { zero: 0, good: 0, bad: 0 };

  for (const f of frames) {
    const where = `frame ${f['frame.number'][0] ?? '?'} (${f['frame.interface_name'][0] ?? '?'})`;
    const bad = (why: string): void => {
      problemCount++;
      if (problems.length < 20) problems.push(`${where}: ${why}`);
    };
    const port = x.ports[f['frame.interface_name'][0] ?? ''];
    if (f['_ws.malformed'].length > 0) bad('malformed');
    // A GSO super-frame (longer than the underlay carries), or any frame on an underlay with
    // checksum offload: checksums may be partial, not judged.
    const superFrame = Number(f['frame.len'][0] ?? 0) > x.maxFrame;
    const partialOk = superFrame || (x.checksumOffload ?? false);
    const sev = f['_ws.expert.severity'];
    for (let i = 0; i < sev.length; i++) {
      const msg = f['_ws.expert.message'][i] ?? '?';
      if (Number(sev[i]) >= EXPERT_ERROR && !(partialOk && msg.startsWith('Bad checksum'))) bad(`expert error: ${msg}`);
    }
    const protocols = f['frame.protocols'][0] ?? '';
    const etype = f['eth.type'][0] ?? '';
    if (etype === '0x0806') {
      const src = f['arp.src.proto_ipv4'][0] ?? '', dst = f['arp.dst.proto_ipv4'][0] ?? '';
      if (x.senders[src] === undefined || x.senders[dst] === undefined) bad(`ARP between ${src} and ${dst}, not lab underlay addresses`);
      if (port !== undefined && port.ip === src) { entering++; arp++; }
      continue;
    }
    if (etype !== '0x0800' || !protocols.startsWith('eth:ethertype:ip:udp')) {
      bad(`not ARP nor IPv4/UDP (${protocols})`);
      continue;
    }
    const [osrc = '', idst] = [f['ip.src'][0], f['ip.dst'][0]];
    const odst = idst ?? '';
    const sender = x.senders[osrc];
    if (sender === undefined || x.senders[odst] === undefined) bad(`outer ${osrc} -> ${odst}: not lab underlay addresses`);
    const enteringCopy = port !== undefined && port.ip === osrc;
    if (enteringCopy) entering++;
    const dport = Number(f['udp.dstport'][0]);
    if (!protocols.startsWith('eth:ethertype:ip:udp:vxlan:eth')) {
      bad(`UDP to port ${dport} not dissected as VXLAN with an inner frame (${protocols})`);
      continue;
    }
    if (enteringCopy) vxlan++;
    ports.add(dport);
    if (dport !== x.port) bad(`VXLAN to UDP port ${dport}, the lab uses ${x.port}`);
    const vni = Number(f['vxlan.vni'][0]);
    vnis.add(vni);
    if (vni !== x.vni) bad(`VNI ${vni}, the lab uses ${x.vni}`);
    const flags = Number(f['vxlan.flags'][0]);
    if (flags !== 0x0800) bad(`VXLAN flags 0x${flags.toString(16).padStart(4, '0')}, expected 0x0800 (I only)`);
    // Without the G flag, tshark still shows bytes 2-3 as the Group Policy ID: reserved (RFC 7348 §5).
    const r16 = Number(f['vxlan.gbp'][0] ?? 0), r8 = Number(f['vxlan.reserved8'][0] ?? 0);
    if (r16 !== 0 || r8 !== 0) bad(`VXLAN reserved bits set (bytes 2-3: 0x${r16.toString(16).padStart(4, '0')}, byte 7: 0x${r8.toString(16).padStart(2, '0')})`);
    // Outer UDP checksum: zero, or verified good; and what the sender is configured to send.
    // A super-frame's (and, with checksum offload, any frame's) may be partial: not judged.
    const csum = Number(f['udp.checksum'][0]);
    const status = f['udp.checksum.status'][0];
    if (superFrame && enteringCopy) superFrames++;
    if (!partialOk) {
      const kind = csum === 0 ? 'zero' : status === '1' ? 'good' : 'bad';
      if (kind === 'bad') bad(`outer UDP checksum 0x${csum.toString(16)} does not verify (status ${status ?? '?'})`);
      if (sender !== undefined) {
        if (enteringCopy) checksums[sender.node]![kind]++;
        if (kind !== 'bad' && sender.udpCsum !== 'mixed' && (kind === 'good') !== sender.udpCsum) {
          bad(`outer UDP checksum ${kind} from ${sender.node}, which is set to send ${sender.udpCsum ? 'a computed one' : 'zero'}`);
        }
      }
    }
    // The inner frame: lab MACs, and lab addresses in IPv4 or ARP.
    const isrc = f['eth.src'][1] ?? '', idstMac = f['eth.dst'][1] ?? '';
    if (!x.innerMacs.has(isrc)) bad(`inner source MAC ${isrc} is not a ${x.mode === 'l3' ? 'VTEP' : 'pod'} MAC of the lab`);
    if (!x.innerMacs.has(idstMac) && !(x.mode === 'l2' && idstMac === 'ff:ff:ff:ff:ff:ff')) bad(`inner destination MAC ${idstMac} is not a ${x.mode === 'l3' ? 'VTEP' : 'pod'} MAC of the lab`);
    const itype = f['eth.type'][1] ?? '';
    if (itype === '0x0806') {
      if (x.mode === 'l3') bad('ARP inside VXLAN in L3 mode (flannel answers ARP locally)');
      for (const a of [f['arp.src.proto_ipv4'][0] ?? '', f['arp.dst.proto_ipv4'][0] ?? '']) {
        if (!x.innerIps.has(a)) bad(`inner ARP for ${a}, not a pod or VTEP address of the lab`);
      }
    } else if (itype === '0x0800') {
      for (const a of [f['ip.src'][1] ?? '', f['ip.dst'][1] ?? '']) {
        if (!x.innerIps.has(a)) bad(`inner IPv4 address ${a} is not a pod or VTEP address of the lab`);
      }
      // Proto_checksum_enum_e: 0 is bad (the quoted headers in ICMP errors are 2, unverified).
      if (f['icmp.checksum.status'].includes('0')) bad('inner ICMP checksum does not verify');
      if (enteringCopy && protocols.includes(':ip:tcp')) innerTcp++;
      if (enteringCopy && protocols.includes(':ip:icmp')) innerIcmp++;
    } else {
      bad(`inner EtherType ${itype} (${protocols})`);
    }
  }
  return {
    ok: problemCount === 0 && frames.length > 0,
    frames: entering,
    copies: frames.length,
    vxlan,
    arp,
    vnis: [...vnis].sort((a, b) => a - b),
    ports: [...ports].sort((a, b) => a - b),
    checksums,
    innerTcp,
    innerIcmp,
    superFrames,
    problems: frames.length === 0 ? ['the capture is empty'] : problems,
    problemCount: frames.length === 0 ? 1 : problemCount,
  };
}

/** tsharkArgs: the dissection of the capture (the lab's port decoded as VXLAN, checksums verified). */
export function tsharkArgs(pcap: string, port: number): string[] {
  const args = ['-n', '-r', pcap, '-d', 'udp.port==8472,vxlan'];
  if (port !== 4789 && port !== 8472) args.push('-d', `udp.port==${port},vxlan`);
  args.push(
    '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
    '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', `aggregator=${AGG}`, '-E', 'quote=n',
  );
  for (const f of CAPTURE_FIELDS) args.push('-e', f);
  return args;
}

/** parseTsharkFields turns `-T fields` output (tsharkArgs) into frames. */
export function parseTsharkFields(text: string): CapturedFrame[] {
  const out: CapturedFrame[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const cols = line.split('\t');
    const f: Record<string, readonly string[]> = {};
    CAPTURE_FIELDS.forEach((name, i) => {
      const v = cols[i] ?? '';
      f[name] = v === '' ? [] : v.split(AGG);
    });
    out.push(f as CapturedFrame);
  }
  return out;
}

/**
 * The protocols the check lets tshark dissect; tshark's profile disables all others.
 *
 * The check judges the encapsulation and the headers we (or the kernel nodes) write: outer
 * Ethernet, ARP, IPv4, UDP, VXLAN (on 4789 by registration, other ports by `-d`), and the inner
 * Ethernet, ARP, IPv4 (fragment reassembly included), ICMP (echo, and the IPv4 + TCP/UDP headers
 * quoted in its errors), TCP and UDP, with their checksums verified. `frame`, `ethertype` (the
 * EtherType dispatch) and `data` (what every payload becomes) are plumbing. The `_ws.*`
 * pseudo-protocols (malformed, expert, short frame) stay on: they carry the verdicts.
 *
 * Why an allowlist rather than `--disable-heuristic thrift` and a few more: above the inner
 * TCP/UDP there is only iperf3's random bytes or ping's pattern, yet by default 83 heuristic
 * dissectors on TCP and 95 on UDP (tshark 4.0), and the ~900 registered on TCP/UDP ports (a
 * connection's ephemeral port can be one of them), get a go at it, and each release adds more.
 * When one claims random bytes it calls them malformed or raises expert errors (Thrift: "Type
 * value not expected", "varint value too large"; about 1 lab run in 8). Nothing we send has an
 * application protocol, so none of them can find a real defect. epan skips the heuristic and
 * port dissectors of a disabled protocol, and no protocol here has a heuristic on a table of
 * another one here (profileFor refuses to run if a tshark does), so nothing is left to guess.
 * Anything outside the list, IPv6 or a VLAN tag for instance, still shows in `eth.type` and
 * fails the check as before; it is just not dissected further.
 */
export const DISSECTED_PROTOCOLS: readonly string[] = ['frame', 'eth', 'ethertype', 'arp', 'ip', 'icmp', 'udp', 'tcp', 'vxlan', 'data'];

/** tshark's profile for the check: the contents of `disabled_protos` in its configuration directory. */
export interface TsharkProfile {
  readonly disabledProtos: string;
}

/**
 * profileFor builds the profile from this tshark's own lists (`tshark -G protocols`: name, short
 * name, filter name per line; `tshark -G heuristic-decodes`: table, protocol, enabled), so that
 * it names every protocol this version has and no unknown one. Throws ERR_LAB_TSHARK when a
 * protocol of DISSECTED_PROTOCOLS is missing or one of them would guess (a heuristic of its own
 * on a table of another one).
 */
export function profileFor(protocols: string, heuristics: string): TsharkProfile {
  const keep = new Set(DISSECTED_PROTOCOLS);
  const names = protocols.split('\n').map((l) => l.split('\t')[2] ?? '').filter((n) => n !== '');
  const missing = DISSECTED_PROTOCOLS.filter((p) => !names.includes(p));
  if (missing.length > 0) throw new FlatnetError('ERR_LAB_TSHARK', `tshark -G protocols lists no ${missing.join(', ')}`);
  const guessing = heuristics.split('\n').map((l) => l.split('\t')).filter(([table = '', proto = '']) => keep.has(table.split('.')[0]!) && keep.has(proto));
  if (guessing.length > 0) {
    throw new FlatnetError('ERR_LAB_TSHARK', `tshark has heuristic dissectors among the dissected protocols: ${guessing.map(([t, p]) => `${p} on ${t}`).join(', ')}`);
  }
  const disabled = names.filter((n) => !keep.has(n) && !n.startsWith('_ws.'));
  return { disabledProtos: `${disabled.join('\n')}\n` };
}

/** tsharkProfile asks the installed tshark for its protocols and heuristics and builds the profile (profileFor). */
export async function tsharkProfile(): Promise<TsharkProfile> {
  const out: string[] = [];
  for (const what of ['protocols', 'heuristic-decodes']) {
    const r = await runAsync('tshark', ['-G', what], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new FlatnetError('ERR_LAB_TSHARK', `tshark -G ${what} failed (${r.code}): ${r.stderr.trim()}`);
    out.push(r.stdout);
  }
  return profileFor(out[0]!, out[1]!);
}

/**
 * dissect runs tshark over the capture with a private configuration directory holding the
 * check's profile (tsharkProfile), which also keeps a developer's own preferences out.
 */
export async function dissect(pcap: string, port: number): Promise<CapturedFrame[]> {
  const profile = await tsharkProfile();
  const conf = mkdtempSync(join(tmpdir(), 'flatnet-lab-tshark-'));
  try {
    writeFileSync(join(conf, 'disabled_protos'), profile.disabledProtos);
    const r = await runAsyncEnv('tshark', tsharkArgs(pcap, port), { WIRESHARK_CONFIG_DIR: conf });
    if (r.code !== 0) throw new FlatnetError('ERR_LAB_TSHARK', `tshark -r ${pcap} failed (${r.code}): ${r.stderr.trim()}`);
    return parseTsharkFields(r.stdout);
  } finally {
    rmSync(conf, { recursive: true, force: true });
  }
}

function runAsyncEnv(cmd: string, args: string[], env: Record<string, string>): ReturnType<typeof runAsync> {
  return runAsync('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), cmd, ...args], { timeoutMs: 300_000 });
}

/** Why the underlay check cannot run here (tshark or dumpcap missing), or null. */
export async function tsharkMissing(): Promise<string | null> {
  for (const tool of ['tshark', 'dumpcap']) {
    const r = await runAsync(tool, ['--version'], { timeoutMs: 20_000 });
    if (r.code !== 0) return `${tool} is not installed (Debian: apt-get install tshark; .ci/setup does it)`;
  }
  return null;
}

/** A running underlay capture; stop() ends it and resolves when the file is complete. */
export interface Capture {
  readonly file: string;
  stop(): Promise<void>;
}

/**
 * startCapture starts dumpcap on every node's port of the underlay bridge (pcapng, whole frames)
 * and resolves once it is capturing. A port's filter leaves out the unicast frames leaving the
 * bridge towards its node: those were captured on the port they entered by (libpcap's
 * `inbound` would say it directly, but lost most frames on veths here). In an etcd lab it also
 * leaves out the nodes' etcd client traffic (TCP 2379 and ARP for the members), which is not VXLAN.
 */
export async function startCapture(plan: LabPlan, file: string): Promise<Capture> {
  const args = ['netns', 'exec', plan.underlayNs, 'dumpcap', '-q', '-B', '32'];
  // An etcd lab's control-plane traffic (the nodes' etcd clients, TCP 2379, and ARP for the
  // members at 198.51.100.241-245) is not the data plane's.
  const etcd = plan.options.etcd > 0 ? ' and not tcp port 2379 and not (arp and net 198.51.100.240/28)' : '';
  for (const n of plan.nodes) args.push('-i', n.underlayPort, '-f', `not ether dst ${n.underlayMac}${etcd}`);
  args.push('-w', file);
  const p: ChildProcess = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new FlatnetError('ERR_LAB_CAPTURE', `dumpcap did not start within 10 s: ${err.trim()}`)); }, 10_000);
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      // dumpcap names the file once every interface is open.
      if (err.includes('File: ')) { clearTimeout(timer); resolve(); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new FlatnetError('ERR_LAB_CAPTURE', `dumpcap exited (${code}): ${err.trim()}`)); });
  });
  return {
    file,
    async stop(): Promise<void> {
      await sleep(200); // let the last replies cross the bridge
      p.kill('SIGINT');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
