/**
 * A node config with `control.etcd` has no pod subnet of its own: the node joins the cluster
 * first, and its config is completed from what the store says (join), before the daemon parses
 * it as it parses any config:
 *   podCidr      the leased subnet (the file must not give one)
 *   clusterCidr, vni, port, mode   the network config's (a file that gives another value is
 *                refused, naming the field: a node cannot disagree with its cluster)
 * The VTEP MAC (configured, or generated once and kept in the state dir) goes into the lease
 * record, so it is resolved before the lease.
 */

import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import type { Cidr } from '../fib/cidr.js';
import { formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import { configSchema, resolveVtepMac } from '../daemon/config.js';
import type { NodeSpec } from '../daemon/desired.js';
import { schemaError } from '../daemon/validate.js';
import type { Network } from './network.js';
import { NodeControl } from './node-control.js';

/** hasControl: whether a parsed config file asks for the control plane. */
export function hasControl(json: unknown): boolean {
  return typeof json === 'object' && json !== null && 'control' in json && (json as { control?: unknown }).control !== undefined;
}

/** completeWith: `json` with the network's fields and the leased subnet filled in (checked as described above). */
export function completeWith(json: unknown, net: Network, subnet: Cidr, vtepMac: number): unknown {
  const o = json as Record<string, unknown>;
  refusePodCidr(o);
  const want: Record<string, unknown> = { clusterCidr: net.network.toString(), vni: net.vni, port: net.port, mode: net.mode };
  for (const [k, v] of Object.entries(want)) {
    if (o[k] !== undefined && o[k] !== v) {
      throw new ConfigError('ERR_CONFIG_NETWORK_MISMATCH', k, `${JSON.stringify(o[k])} differs from the cluster's network config (${JSON.stringify(v)}); leave it out or make it agree`);
    }
  }
  return { ...o, ...want, podCidr: subnet.toString(), vtepMac: formatMac(vtepMac) };
}

function refusePodCidr(o: Record<string, unknown>): void {
  if (o['podCidr'] !== undefined) throw new ConfigError('ERR_CONFIG_INVALID', 'podCidr', 'comes from the subnet lease when control.etcd is set; remove it from the file');
}

/**
 * join: for a config with control.etcd, join the cluster (retrying while etcd does not answer)
 * and return the completed config and the node's control plane. The file is checked for shape
 * first, so a typo fails before any network traffic.
 */
export async function join(json: unknown, log?: Logger): Promise<{ json: unknown; control: NodeControl }> {
  const r = configSchema.safeParse(json);
  if (!r.success) throw schemaError('ERR_CONFIG_INVALID', r.error);
  const c = r.data;
  const spec = c.control!.etcd;
  refusePodCidr(json as Record<string, unknown>);
  const vtepMac = resolveVtepMac({ node: c.node, stateDir: c.stateDir, vtepMac: c.vtepMac === undefined ? null : parseMac(c.vtepMac) } as NodeSpec);
  const control = await NodeControl.join(
    { endpoints: spec.endpoints, prefix: spec.prefix, leaseTtlSeconds: spec.leaseTtlSeconds },
    { node: c.node, underlayIp: parseIpv4(c.underlay.address), vtepMac, kind: 'flatnet' },
    c.stateDir, log,
  );
  try {
    return { json: completeWith(json, control.network, control.subnet, vtepMac), control };
  } catch (e) {
    await control.close(true);
    throw e;
  }
}
