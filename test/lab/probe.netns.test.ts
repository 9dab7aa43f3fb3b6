/**
 * The prober against the kernel, without flatnet: three pod namespaces routed by a node
 * namespace, one TCP port and one UDP port blocked by iptables in the node (a stand-in for a
 * policy), and the grids say exactly that.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProbeServers, probeMatrix, renderGrid, type ProbePod } from '../../src/lab/probe.js';
import { Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();

describe.skipIf(skip !== null)(`lab probe: real TCP and UDP probes between pod namespaces${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const ns = new Netns('pr');
  const pods: ProbePod[] = [];
  let servers: ProbeServers | null = null;
  beforeAll(async () => {
    const node = ns.add('node');
    ['a', 'b', 'c'].forEach((name, i) => {
      const pod = ns.add(name), gw = `10.244.1.${4 * i + 1}`, addr = `10.244.1.${4 * i + 2}`;
      ns.veth(node, `v${i}`, pod, 'eth0');
      ns.addr(node, `v${i}`, `${gw}/30`);
      ns.addr(pod, 'eth0', `${addr}/30`);
      ns.ip(pod, 'route', 'add', 'default', 'via', gw);
      pods.push({ name: `x/${name}`, netns: pod, ip: addr });
    });
    ns.exec(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // c may not open TCP 80 on a; nobody gets UDP 81 from b.
    ns.exec(node, 'iptables', ['-A', 'FORWARD', '-s', '10.244.1.10', '-d', '10.244.1.2', '-p', 'tcp', '--dport', '80', '-j', 'DROP']);
    ns.exec(node, 'iptables', ['-A', 'FORWARD', '-s', '10.244.1.6', '-p', 'udp', '--sport', '81', '-j', 'DROP']);
    servers = await ProbeServers.start(pods, [80, 81]);
  }, 60_000);
  afterAll(() => { servers?.stop(); ns.destroy(); });

  it('TCP 80: every pod reaches every pod but c -> a', async () => {
    const grid = await probeMatrix(pods, 80, 'tcp');
    expect(renderGrid(grid).split('\n').slice(2)).toEqual(['x/a  .    .    .', 'x/b  .    .    .', 'x/c  X    .    .']);
  });

  it('UDP 81: replies from b are lost (b reaches only itself, nobody else reaches b)', async () => {
    const grid = await probeMatrix(pods, 81, 'udp');
    expect(renderGrid(grid).split('\n').slice(2)).toEqual(['x/a  .    X    .', 'x/b  .    .    .', 'x/c  .    X    .']);
  });

  it('SCTP: probes run where the kernel has SCTP, and say plainly where it has not', async () => {
    const r = await probeMatrix(pods, 80, 'sctp').then(() => 'ran', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
    expect(['ran', 'ERR_PROBE_UNSUPPORTED: sctp: protocol not supported by this kernel']).toContain(r);
  });
});
