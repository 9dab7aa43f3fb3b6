#!/usr/bin/env node
/**
 * The `flatnet` command line. Each subcommand lives in its own module; this file only wires
 * arguments to them and turns typed errors into a message and an exit code.
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FlatnetError } from '../errors.js';
import { UdpPort } from '../wire/consts.js';
import { runDecode } from './decode.js';
import { runControl, runShow, runShowControl } from './client.js';
import { runReplay } from './replay.js';
import { runTrace } from './trace.js';
import { runVtep } from './vtep.js';
import { registerCni } from './cni.js';
import { registerControlPlane } from './control-plane.js';
import { runLabDemo, runLabDown, runLabTest, runLabUp } from './lab.js';
import { registerLabRestart } from './lab-restart.js';
import { registerLabProbe } from './lab-probe.js';
import { registerUi } from '../ui/cli.js';
import { DEFAULT_LAB_OPTIONS, type LabOptions } from '../lab/topology.js';
import { loadManifest } from '../lab/manifest.js';
import type { LabTestOptions } from '../lab/runner.js';
import { SHOW_WHAT, type ShowWhat } from '../daemon/show.js';
import { PACKET_SYNTAX } from '../trace/packet.js';

function portList(v: string, prev: number[] | undefined): number[] {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`not a UDP port: ${v}`);
  return [...(prev ?? []), n];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`not a non-negative integer: ${v}`);
  return n;
}

function udpPort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`not a UDP port: ${v}`);
  return n;
}

function onOff(v: string): boolean {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new InvalidArgumentError(`on or off, not ${v}`);
}

/** "on", "off" or a comma-separated list of them (one per kernel node, cycled). */
function onOffList(v: string): boolean[] {
  return v.split(',').map((x) => onOff(x.trim()));
}

function labMode(v: string): 'l3' | 'l2' {
  if (v !== 'l3' && v !== 'l2') throw new InvalidArgumentError(`l3 or l2, not ${v}`);
  return v;
}

interface LabUpFlags { name: string; nodes: number; kernelNodes: number; pods: number; mode: 'l3' | 'l2'; port: number; vni: number; kernelUdpcsum: boolean[]; podOffloads: boolean; underlayOffloads: boolean; podsVia: 'cni' | 'config'; etcd: number; leaseTtl: number; manifest?: string }
interface LabTestFlags { name: string; pingCount: number; iperfTime: number; iperfBitrate: string; capture: boolean; keepCapture: boolean }

const labUpOptions = (c: Command): Command => c
  .option('--nodes <n>', 'nodes in all', positiveInt, DEFAULT_LAB_OPTIONS.nodes)
  .option('--kernel-nodes <k>', "of which run the kernel's vxlan driver, flannel-style (the last k)", nonNegativeInt, DEFAULT_LAB_OPTIONS.kernelNodes)
  .option('--pods <p>', 'pods per node', positiveInt, DEFAULT_LAB_OPTIONS.pods)
  .option('--mode <mode>', 'l3 (flannel: routed, one /24 per node) or l2 (one bridged segment)', labMode, DEFAULT_LAB_OPTIONS.mode)
  .option('--port <port>', "VXLAN UDP port of every node (8472: the kernel's default, no dstport on its devices)", udpPort, DEFAULT_LAB_OPTIONS.port)
  .option('--vni <vni>', 'VXLAN network identifier', nonNegativeInt, DEFAULT_LAB_OPTIONS.vni)
  .addOption(new Option('--kernel-udpcsum <on|off>', "kernel nodes' outer UDP checksum (a list such as on,off is cycled over them)")
    .argParser(onOffList).default([...DEFAULT_LAB_OPTIONS.kernelUdpCsum], 'on'))
  .addOption(new Option('--pod-offloads <on|off>', "pods' TX checksum offload and TSO/GSO (veth defaults: on; off = the per-packet path)")
    .argParser(onOff).default(DEFAULT_LAB_OPTIONS.podOffloads, 'on'))
  .addOption(new Option('--pods-via <how>', "flatnet nodes' pods (L3): cni = made by the CNI plugin as a kubelet would; config = veths wired by hand, listed in the node config")
    .choices(['cni', 'config']).default(DEFAULT_LAB_OPTIONS.podsVia))
  .addOption(new Option('--underlay-offloads <on|off>', "nodes' underlay TX checksum/segmentation offload (off: captures show final checksums; on: GSO trains stay whole, for throughput)")
    .argParser(onOff).default(DEFAULT_LAB_OPTIONS.underlayOffloads, 'off'))
  .option('--etcd <members>', 'etcd members (the nodes lease their subnets and learn each other only from etcd); 0: static peer lists in the configs', nonNegativeInt, 1)
  .option('--lease-ttl <s>', "the nodes' subnet lease TTL with --etcd (a dead node's routes go within about this long)", positiveInt, DEFAULT_LAB_OPTIONS.leaseTtlSeconds)
  .option('--manifest <file>', 'the pods from Kubernetes Namespaces and Pods (YAML/JSON; spec.nodeName n1, n2, ...) made by the CNI plugin and applied to etcd; nodes: as many as the manifest names, no kernel node unless asked');

const labTestOptions = (c: Command): Command => c
  .option('--ping-count <n>', 'echo requests per pod pair', positiveInt, 3)
  .option('--iperf-time <s>', 'seconds per iperf3 run', positiveInt, 2)
  .option('--iperf-bitrate <rate>', 'iperf3 -b per run (keeps the capture small)', '100M')
  .option('--no-capture', 'skip the underlay capture and its tshark check')
  .option('--keep-capture', 'keep the capture file (DIR/underlay.pcapng) also when it passed', false);

function labUpInput(o: LabUpFlags, cmd: Command): Partial<LabOptions> {
  if (o.manifest !== undefined) {
    // The manifest says which nodes there are; --nodes may ask for more, --kernel-nodes adds kernel ones.
    const given = (opt: string): boolean => cmd.getOptionValueSource(opt) !== 'default';
    if (given('pods')) throw new FlatnetError('ERR_CLI_ARGUMENT', '--pods: a lab from a manifest has the pods the manifest lists');
    const manifest = loadManifest(o.manifest);
    const kernelNodes = given('kernelNodes') ? o.kernelNodes : 0;
    const nodes = given('nodes') ? o.nodes : manifest.nodes + kernelNodes;
    return { ...labUpInput({ ...o, manifest: undefined }, cmd), nodes, kernelNodes, manifest };
  }
  return { name: o.name, nodes: o.nodes, kernelNodes: o.kernelNodes, pods: o.pods, mode: o.mode, port: o.port, vni: o.vni, kernelUdpCsum: o.kernelUdpcsum, podOffloads: o.podOffloads, underlayOffloads: o.underlayOffloads, podsVia: o.podsVia, etcd: o.etcd, leaseTtlSeconds: o.leaseTtl };
}

function labTestInput(o: LabTestFlags): LabTestOptions {
  return { pingCount: o.pingCount, iperfSeconds: o.iperfTime, iperfBitrate: o.iperfBitrate, capture: o.capture, keepCapture: o.keepCapture };
}

export function buildProgram(write: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('flatnet')
    .description('userspace VXLAN data plane for Kubernetes-style pod networks')
    .version('0.1.0')
    .showHelpAfterError();

  program
    .command('decode')
    .description('print one line per frame of a pcap/pcapng file (VXLAN aware), or JSON with --json')
    .argument('<file>', 'pcap or pcapng capture')
    .option('--json', 'one JSON object per frame with every decoded field', false)
    .option('--vxlan-port <port>', 'UDP port decoded as VXLAN (repeatable; default 4789 and 8472)', portList)
    .option('--lenient', 'RFC 7348 receive: ignore reserved VXLAN bits instead of dropping', false)
    .option('--gbp', 'accept the VXLAN Group Policy extension bits', false)
    .option('-c, --count <n>', 'stop after n frames', positiveInt)
    .action((file: string, o: { json: boolean; vxlanPort?: number[]; lenient: boolean; gbp: boolean; count?: number }) => {
      process.exitCode = runDecode(file, {
        json: o.json,
        vxlanPorts: o.vxlanPort ?? [UdpPort.VXLAN, UdpPort.VXLAN_LINUX],
        lenient: o.lenient,
        gbp: o.gbp,
        limit: o.count ?? Number.POSITIVE_INFINITY,
      }, write);
    });

  program
    .command('replay')
    .description('push every frame of a capture through the pipeline in-process and measure it (pps, ns/frame, drops, heap bytes)')
    .argument('<file>', 'pcap or pcapng capture')
    .option('-o, --out <file>', 'write what the switch emitted during the first pass (classic pcap)')
    .option('-c, --config <file>', "the node's configuration (JSON, as for `flatnet vtep`); default: the built-in lab node 1")
    .option('-l, --loop <n>', 'replay the capture n times (it is loaded into memory once)', positiveInt, 1)
    .option('--json', 'one JSON object instead of the table', false)
    .option('--no-progress', 'no progress line on stderr')
    .option('--warmup <frames>', 'frames replayed through a throwaway node before the timed run', nonNegativeInt, 262_144)
    .option('--underlay-mac <mac>', "outer source MAC of encapsulated frames (this node's underlay NIC)")
    .option('--next-hop-mac <mac>', 'outer destination MAC of encapsulated frames (the underlay next hop)')
    .option('--daemon-clock', "read the time once per batch as the daemon does (it allocates on Node 20) instead of replay's coarse clock", false)
    .action((file: string, o: { out?: string; config?: string; loop: number; json: boolean; progress: boolean; warmup: number; underlayMac?: string; nextHopMac?: string; daemonClock: boolean }) => {
      process.exitCode = runReplay(file, {
        out: o.out, config: o.config, loop: o.loop, json: o.json, progress: o.progress, warmup: o.warmup,
        underlayMac: o.underlayMac, nextHopMac: o.nextHopMac, daemonClock: o.daemonClock,
      }, write);
    });

  program
    .command('vtep')
    .description("run this node's VTEP in the current network namespace until SIGTERM/SIGINT (SIGHUP reloads the config)")
    .requiredOption('-c, --config <file>', 'node configuration (JSON; see the README)')
    .option('--keep', 'on exit, leave the TAP device and its routes for a restart', false)
    .action(async (o: { config: string; keep: boolean }) => {
      await runVtep(o.config, { keep: o.keep });
    });

  const sockOpts = (c: Command): Command => c
    .option('-s, --socket <path>', 'control socket of the daemon')
    .option('-c, --config <file>', "the daemon's configuration (to find its socket)");

  sockOpts(program
    .command('show')
    .description('print routes, fdb, ports, counters, peers or the control plane (etcd) of the running daemon')
    .argument('<what>', [...SHOW_WHAT, 'control'].join('|'))
    .option('--json', 'JSON instead of a table', false))
    .action(async (what: string, o: { socket?: string; config?: string; json: boolean }) => {
      if (what === 'control') return await runShowControl(o, write);
      if (!(SHOW_WHAT as readonly string[]).includes(what)) throw new InvalidArgumentError(`show what? one of ${SHOW_WHAT.join(', ')}`);
      await runShow(what as ShowWhat, o, write);
    });

  const pod = program.command('pod').description("attach or detach a pod's veth on the running daemon");
  sockOpts(pod
    .command('attach')
    .argument('<name>', 'pod name')
    .requiredOption('--interface <ifname>', "the veth's host end")
    .requiredOption('--ip <address>', "the pod's IPv4 address")
    .requiredOption('--mac <mac>', "the pod's MAC address"))
    .action(async (name: string, o: { interface: string; ip: string; mac: string; socket?: string; config?: string }) => {
      await runControl('pod-attach', { pod: { name, interface: o.interface, ip: o.ip, mac: o.mac } }, o, write);
    });
  sockOpts(pod.command('detach').argument('<name>', 'pod name'))
    .action(async (name: string, o: { socket?: string; config?: string }) => {
      await runControl('pod-detach', { name }, o, write);
    });

  const peer = program.command('peer').description('add or remove a remote VTEP on the running daemon');
  sockOpts(peer
    .command('add')
    .argument('<name>', 'peer node name')
    .requiredOption('--underlay <address>', "the peer's underlay IPv4 address")
    .requiredOption('--pod-cidr <cidr>', "the peer's pod CIDR")
    .requiredOption('--vtep-mac <mac>', "the peer's VTEP MAC"))
    .action(async (name: string, o: { underlay: string; podCidr: string; vtepMac: string; socket?: string; config?: string }) => {
      await runControl('peer-add', { peer: { name, underlay: o.underlay, podCidr: o.podCidr, vtepMac: o.vtepMac } }, o, write);
    });
  sockOpts(peer.command('del').argument('<name>', 'peer node name'))
    .action(async (name: string, o: { socket?: string; config?: string }) => {
      await runControl('peer-del', { name }, o, write);
    });

  sockOpts(program
    .command('trace')
    .description('what the running daemon would do with one packet, stage by stage (like ovs-appctl ofproto/trace)')
    .argument('[packet...]', `the packet: ${PACKET_SYNTAX}`)
    .requiredOption('--in <port>', 'where the packet enters: a pod name, host or overlay')
    .option('--json', 'the trace result as JSON', false)
    .option('--hex <hex>', 'the packet as a hex frame (Ethernet header first) instead of a description')
    .option('--pcap <file>', 'the packet as a frame of a pcap or pcapng capture')
    .option('--frame <n>', 'which frame of --pcap, from 1 as Wireshark numbers them (default 1)', positiveInt)
    .option('--vnet <hdr>', 'the virtio-net header the packet arrives with on a pod or host port with offloads, e.g. needs-csum,gso=tcpv4,gso-size=1448,hdr-len=66,csum-start=34,csum-offset=16')
    // Descriptions contain `->`, which would otherwise be taken for an option.
    .allowUnknownOption())
    .action(async (words: string[], o: { in: string; json: boolean; hex?: string; pcap?: string; frame?: number; vnet?: string; socket?: string; config?: string }) => {
      await runTrace(words, o, write);
    });

  sockOpts(program
    .command('reload')
    .description("re-read the running daemon's config file, as SIGHUP does, and print what changed"))
    .action(async (o: { socket?: string; config?: string }) => {
      await runControl('reload', {}, o, write);
    });

  registerCni(program, write);

  const lab = program.command('lab').description('a lab of network namespaces: flatnet and kernel-vxlan nodes with pods (root)');
  const nameOpt = (c: Command): Command => c.option('--name <name>', 'lab name (namespaces fl-NAME-*, state in /run/flatnet/lab-NAME)', DEFAULT_LAB_OPTIONS.name);
  labUpOptions(nameOpt(lab.command('up').description('build the lab and start its flatnet daemons')))
    .action(async (o: LabUpFlags, cmd: Command) => {
      await runLabUp(labUpInput(o, cmd), write);
    });
  labTestOptions(nameOpt(lab.command('test').description('ping every pod pair, iperf3 per kind of node pair, tshark-check the underlay; a PASS/FAIL table')))
    .action(async (o: LabTestFlags) => {
      if (!(await runLabTest(o.name, labTestInput(o), write))) process.exitCode = 1;
    });
  registerLabRestart(lab, nameOpt, write);
  registerLabProbe(lab, nameOpt, write);
  nameOpt(lab.command('down').description('remove everything the lab made (idempotent; also after a crashed up)'))
    .action(async (o: { name: string }) => {
      await runLabDown(o.name);
    });
  labTestOptions(labUpOptions(nameOpt(lab.command('demo').description('up, test and down (down also runs after a failure): `npm run lab`'))))
    .action(async (o: LabUpFlags & LabTestFlags, cmd: Command) => {
      if (!(await runLabDemo(labUpInput(o, cmd), labTestInput(o), write))) process.exitCode = 1;
    });

  registerControlPlane(program, write);
  registerUi(program, write);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `flatnet decode x.pcap | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof FlatnetError) {
      process.stderr.write(`flatnet: ${e.message} (${e.code})\n`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('E')) {
      process.stderr.write(`flatnet: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

// Run when executed (directly or through the /usr/local/bin symlink), not when imported by tests.
const self = fileURLToPath(import.meta.url);
const invoked = process.argv[1] === undefined ? '' : realpathSync(process.argv[1]);
if (invoked === self) await main(process.argv);
