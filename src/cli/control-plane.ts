/**
 * The control plane's commands (src/control/):
 *   flatnet cluster init [--network CIDR] [--subnet-len N] [--subnet-min IP] [--subnet-max IP] [--vni N] [--port N] [--mode l3|l2] [--force]
 *   flatnet cluster leases [--json]
 *   flatnet kernel-agent --node NAME --underlay IP [--dev flannel.1] [--state-dir DIR] [--lease-ttl S] [--no-services]
 *   flatnet show control  (in main.ts's `show`: the daemon's view, over its control socket)
 * Every one takes --etcd ENDPOINTS (comma-separated; default $FLATNET_ETCD, else
 * http://127.0.0.1:2379) and --prefix (default /flatnet). Registered by main.ts with one call.
 */

import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, FlatnetError } from '../errors.js';
import { DEFAULT_PREFIX, endpointSchema, prefixSchema } from '../control/schema.js';
import { createLogger, flushLogger } from '../daemon/log.js';
import { registerObjects } from './objects.js';

type Write = (s: string) => void;

export interface EtcdFlags { etcd?: string; prefix: string }

/** The endpoints and prefix of --etcd/--prefix, checked (ERR_CLI_ETCD naming the bad one). */
export function etcdTarget(o: EtcdFlags): { endpoints: string[]; prefix: string } {
  const raw = o.etcd ?? process.env['FLATNET_ETCD'] ?? 'http://127.0.0.1:2379';
  const endpoints = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const e of endpoints) {
    if (!endpointSchema.safeParse(e).success) throw new ConfigError('ERR_CLI_ETCD', 'etcd', `${JSON.stringify(e)} is not an etcd endpoint (http://ADDRESS:PORT or unix:///PATH)`);
  }
  if (endpoints.length === 0) throw new ConfigError('ERR_CLI_ETCD', 'etcd', 'no endpoint given');
  if (!prefixSchema.safeParse(o.prefix).success) throw new ConfigError('ERR_CLI_ETCD', 'prefix', `${JSON.stringify(o.prefix)} is not a key prefix such as /flatnet`);
  return { endpoints, prefix: o.prefix };
}

export const etcdOpts = (c: Command): Command => c
  .option('--etcd <endpoints>', 'etcd endpoints, comma-separated (default $FLATNET_ETCD or http://127.0.0.1:2379)')
  .option('--prefix <prefix>', "flatnet's key prefix in etcd", DEFAULT_PREFIX);

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`not an integer: ${v}`);
  return n;
}

interface InitFlags extends EtcdFlags { network: string; subnetLen: number; subnetMin?: string; subnetMax?: string; vni: number; port: number; mode: string; force: boolean }

async function runClusterInit(o: InitFlags, write: Write): Promise<void> {
  const t = etcdTarget(o);
  const { parseNetwork, networkDocument, networkKey } = await import('../control/network.js');
  const net = parseNetwork({ network: o.network, subnetLen: o.subnetLen, subnetMin: o.subnetMin, subnetMax: o.subnetMax, vni: o.vni, port: o.port, mode: o.mode });
  const doc = JSON.stringify(networkDocument(net));
  const { connectEtcd } = await import('../control/etcd.js');
  const client = connectEtcd(t.endpoints);
  try {
    const key = networkKey(t.prefix);
    const created = await client.if(key, 'Create', '==', 0).then(client.put(key).value(doc)).else(client.get(key)).commit();
    let outcome = 'created';
    if (!created.succeeded) {
      const current = created.responses[0]?.response_range?.kvs[0]?.value.toString() ?? '';
      if (current === doc) outcome = 'unchanged';
      else if (!o.force) throw new FlatnetError('ERR_CLUSTER_EXISTS', `${key} holds another network config (${current}); pass --force to replace it (nodes keep their leases until they restart)`);
      else { await client.put(key).value(doc); outcome = 'replaced'; }
    }
    write(`${JSON.stringify({ key, outcome, network: JSON.parse(doc) as unknown })}\n`);
  } finally {
    client.close();
  }
}

async function runClusterLeases(o: EtcdFlags & { json: boolean }, write: Write): Promise<void> {
  const t = etcdTarget(o);
  const { connectEtcd, rawOf } = await import('../control/etcd.js');
  const { readNetwork } = await import('../control/node-control.js');
  const { subnetsPrefix } = await import('../control/network.js');
  const { selectPeers } = await import('../control/records.js');
  const { formatIpv4, formatMac } = await import('../wire/addr.js');
  const client = connectEtcd(t.endpoints);
  try {
    const net = await readNetwork(client, t.prefix);
    const res = await client.getAll().prefix(subnetsPrefix(t.prefix)).exec();
    const raws = res.kvs.map(rawOf);
    const sel = selectPeers(t.prefix, net, raws, null);
    const rows = [...sel.records].map(([key, r]) => ({ key, subnet: r.subnet.toString(), node: r.node, underlay: formatIpv4(r.underlayIp), vtepMac: formatMac(r.vtepMac), kind: r.kind }));
    if (o.json) write(`${JSON.stringify({ revision: Number(res.header.revision), leases: rows, rejected: sel.rejected }, null, 2)}\n`);
    else {
      for (const r of rows) write(`${r.subnet.padEnd(18)} ${r.node.padEnd(16)} underlay ${r.underlay.padEnd(15)} vtep ${r.vtepMac} ${r.kind}\n`);
      for (const r of sel.rejected) write(`ignored ${r.key}: ${r.reason} (${r.detail})\n`);
    }
  } finally {
    client.close();
  }
}

interface AgentFlags extends EtcdFlags { node: string; underlay: string; dev: string; stateDir: string; leaseTtl: number; logLevel: string; services: boolean }

async function runKernelAgent(o: AgentFlags): Promise<void> {
  const t = etcdTarget(o);
  if (o.leaseTtl < 2) throw new ConfigError('ERR_CLI_AGENT', 'lease-ttl', 'at least 2 seconds');
  const log = createLogger(o.logLevel, { node: o.node, agent: 'kernel' });
  const { KernelAgent } = await import('../control/kernel-agent.js');
  const agent = await KernelAgent.start({ control: { endpoints: t.endpoints, prefix: t.prefix, leaseTtlSeconds: o.leaseTtl }, node: o.node, underlay: o.underlay, dev: o.dev, stateDir: o.stateDir, services: o.services, log });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    agent.stop().finally(() => { log.info('kernel agent down'); flushLogger(log); process.exit(0); });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** registerControlPlane adds `cluster`, `kernel-agent` and `apply|get|delete` to the program. */
export function registerControlPlane(program: Command, write: Write): void {
  registerObjects(program, write);
  const cluster = program.command('cluster').description("the cluster's network config and subnet leases in etcd");
  etcdOpts(cluster.command('init')
    .description('write the network config nodes lease their subnets from (as flannel\'s coreos.com/network/config)')
    .option('--network <cidr>', 'the cluster network', '10.244.0.0/16')
    .option('--subnet-len <n>', "each node's subnet prefix length", int, 24)
    .option('--subnet-min <ip>', 'first subnet that may be leased (default: the second)')
    .option('--subnet-max <ip>', 'last subnet that may be leased (default: the last)')
    .option('--vni <n>', 'VXLAN network identifier', int, 1)
    .option('--port <n>', 'VXLAN UDP port', int, 4789)
    .option('--mode <mode>', 'l3 or l2', 'l3')
    .option('--force', 'replace a different network config', false))
    .action(async (o: InitFlags) => { await runClusterInit(o, write); });
  etcdOpts(cluster.command('leases')
    .description('the subnet leases in the store, and the records every node ignores (with why)')
    .option('--json', 'JSON instead of a table', false))
    .action(async (o: EtcdFlags & { json: boolean }) => { await runClusterLeases(o, write); });

  etcdOpts(program.command('kernel-agent')
    .description("program this namespace's kernel vxlan device from the subnet leases, as flanneld does, and serve the store's Services with kube-proxy's iptables rules (runs until SIGTERM)")
    .requiredOption('--node <name>', "this node's name")
    .requiredOption('--underlay <ip>', "this node's underlay address")
    .option('--dev <dev>', 'the vxlan device', 'flannel.1')
    .option('--state-dir <dir>', 'where NODE.subnet.env is kept', '/var/lib/flatnet')
    .option('--lease-ttl <s>', 'subnet lease TTL, seconds', int, 60)
    .option('--no-services', "do not serve the store's Services with kube-proxy's iptables rules (served by default)")
    .option('--log-level <level>', 'pino level', 'info'))
    .action(async (o: AgentFlags) => { await runKernelAgent(o); });
}
