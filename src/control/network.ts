/**
 * The cluster's network config, kept in the store as flannel keeps `coreos.com/network/config`:
 * one JSON document at `PREFIX/network/config`, written by `flatnet cluster init`, read by every
 * node before it leases a subnet.
 *
 *   {"network": "10.244.0.0/16", "subnetLen": 24, "subnetMin": "10.244.1.0", "subnetMax": "10.244.255.0",
 *    "vni": 1, "port": 4789, "mode": "l3"}
 *
 * `subnetMin`/`subnetMax` bound the subnets handed out (flannel's SubnetMin/SubnetMax; default:
 * the second subnet to the last, so 10.244.0.0/24 is never leased). Every failure is a
 * ConfigError naming the field ("subnetLen", "network").
 *
 * Keys under the prefix (all of flatnet's, none of anyone else's):
 *   PREFIX/network/config            this document
 *   PREFIX/subnets/10.244.3.0-24     a node's lease (records.ts), on an etcd lease with a TTL
 *   PREFIX/objects/KIND/NS/NAME      cluster objects (objects.ts)
 */

import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import { formatIpv4, parseIpv4 } from '../wire/addr.js';
import { schemaError } from '../daemon/validate.js';

export { DEFAULT_PREFIX, prefixSchema } from './schema.js';

export const networkSchema = z.object({
  network: z.string().default('10.244.0.0/16'),
  subnetLen: z.number().int().min(8).max(30).default(24),
  subnetMin: z.ipv4().optional(),
  subnetMax: z.ipv4().optional(),
  vni: z.number().int().min(0).max(0xff_ffff).default(1),
  port: z.number().int().min(1).max(65535).default(4789),
  mode: z.enum(['l3', 'l2']).default('l3'),
}).strict();
export type NetworkInput = z.input<typeof networkSchema>;

/** The network config, compiled. */
export interface Network {
  readonly network: Cidr;
  readonly subnetLen: number;
  /** First and last subnet network address that may be leased. */
  readonly subnetMin: number;
  readonly subnetMax: number;
  readonly vni: number;
  readonly port: number;
  readonly mode: 'l3' | 'l2';
}

/** parseNetwork validates a parsed JSON value; ConfigError ERR_NETWORK_INVALID naming the field. */
export function parseNetwork(json: unknown): Network {
  const r = networkSchema.safeParse(json);
  if (!r.success) throw schemaError('ERR_NETWORK_INVALID', r.error);
  const c = r.data;
  const network = Cidr.parse(c.network, 'network');
  if (network.len > 28) throw new ConfigError('ERR_NETWORK_INVALID', 'network', `${network} is too small for a cluster network (at most /28)`);
  if (c.subnetLen <= network.len) {
    throw new ConfigError('ERR_NETWORK_INVALID', 'subnetLen', `a subnet length of ${c.subnetLen} does not split the network ${network} (it must be longer than ${network.len})`);
  }
  const step = 2 ** (32 - c.subnetLen);
  const last = network.network + network.size - step;
  const min = c.subnetMin === undefined ? network.network + step : parseIpv4(c.subnetMin);
  const max = c.subnetMax === undefined ? last : parseIpv4(c.subnetMax);
  for (const [f, v] of [['subnetMin', min], ['subnetMax', max]] as const) {
    if (!network.contains(v)) throw new ConfigError('ERR_NETWORK_INVALID', f, `${formatIpv4(v)} is not inside the network ${network}`);
    if ((v - network.network) % step !== 0) throw new ConfigError('ERR_NETWORK_INVALID', f, `${formatIpv4(v)} is not the start of a /${c.subnetLen} subnet`);
  }
  if (min > max) throw new ConfigError('ERR_NETWORK_INVALID', 'subnetMax', `${formatIpv4(max)} is below subnetMin ${formatIpv4(min)}`);
  return { network, subnetLen: c.subnetLen, subnetMin: min, subnetMax: max, vni: c.vni, port: c.port, mode: c.mode };
}

/** parseNetworkText: the stored document (a string) to a Network; bad JSON is ERR_NETWORK_JSON. */
export function parseNetworkText(text: string): Network {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('ERR_NETWORK_JSON', '', `the network config is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseNetwork(json);
}

/** The document as stored (canonical: every field spelled out). */
export function networkDocument(n: Network): Record<string, unknown> {
  return {
    network: n.network.toString(), subnetLen: n.subnetLen, subnetMin: formatIpv4(n.subnetMin), subnetMax: formatIpv4(n.subnetMax),
    vni: n.vni, port: n.port, mode: n.mode,
  };
}

/** How many subnets the network can lease. */
export function subnetCount(n: Network): number {
  return (n.subnetMax - n.subnetMin) / 2 ** (32 - n.subnetLen) + 1;
}

/** The i-th leasable subnet (0-based). */
export function subnetAt(n: Network, i: number): Cidr {
  return new Cidr(n.subnetMin + i * 2 ** (32 - n.subnetLen), n.subnetLen);
}

// ---------------------------------------------------------------------------------------
// Keys

export const networkKey = (prefix: string): string => `${prefix}/network/config`;
export const subnetsPrefix = (prefix: string): string => `${prefix}/subnets/`;
/** flannel's key form: 10.244.3.0/24 -> PREFIX/subnets/10.244.3.0-24. */
export const subnetKey = (prefix: string, c: Cidr): string => `${subnetsPrefix(prefix)}${formatIpv4(c.network)}-${c.len}`;

/** The subnet a key names, or null when the key is not of the form PREFIX/subnets/A.B.C.D-LEN. */
export function subnetOfKey(prefix: string, key: string): Cidr | null {
  const p = subnetsPrefix(prefix);
  if (!key.startsWith(p)) return null;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})$/.exec(key.slice(p.length));
  if (m === null) return null;
  try {
    return Cidr.parse(`${m[1]}/${m[2]}`);
  } catch {
    return null;
  }
}
