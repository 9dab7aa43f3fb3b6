/**
 * The iptables rules kube-proxy's iptables mode writes for a set of Services, as an
 * `iptables-restore` input, so that a kernel-VXLAN node of the lab serves the same ClusterIPs by
 * kube-proxy's own mechanism (and flatnet's behaviour can be compared with it). Made from the
 * same ServiceCatalog flatnet's NAT stage uses, with kube-proxy's chain layout and names
 * (pkg/proxy/iptables/proxier.go):
 *
 *   nat:    PREROUTING/OUTPUT -> KUBE-SERVICES -> KUBE-SVC-<hash> (one per service port)
 *           -> KUBE-SEP-<hash> (one per endpoint: DNAT), chosen with `-m statistic --mode random`
 *           probabilities 1/n, 1/(n-1), ..., 1; ClientIP affinity with `-m recent`; hairpin and
 *           off-cluster sources marked for MASQUERADE in KUBE-POSTROUTING.
 *   filter: a Service port without endpoints REJECTs new connections (icmp-port-unreachable);
 *           internalTrafficPolicy Local without a local endpoint DROPs them.
 *
 * Chain names hash the service port name and protocol (and the endpoint) with SHA-256 and
 * base32, as kube-proxy's servicePortChainName/servicePortEndpointChainName do.
 *
 * As kube-proxy syncs (syncProxyRules): the jumps from the built-in chains into KUBE-SERVICES and
 * KUBE-POSTROUTING are ensured one by one (`iptables -C`, else `-I`: KUBE_JUMPS), and everything
 * else is one `iptables-restore --noflush` whose chain lines flush only kube-proxy's own chains
 * and rewrite them whole; service chains that are no longer used are flushed and deleted (`-X`)
 * in the same restore (`stale`). Nothing else in the tables is touched. kubeProxyCleanup is the
 * restore that removes every chain (after the jumps are deleted).
 */

import { createHash } from 'node:crypto';
import type { Frontend, ServiceCatalog } from '../service/catalog.js';
import { formatIpv4 } from '../wire/addr.js';

const MASQ_MARK = '0x4000/0x4000';
const PROTO_NAME: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** kube-proxy's portProtoHash: base32(sha256(s)) cut to 16 characters. */
function hash16(s: string): string {
  const d = createHash('sha256').update(s).digest();
  // RFC 4648 base32, upper case, as Go's base32.StdEncoding.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0, out = '';
  for (const byte of d) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
    if (out.length >= 16) break;
  }
  return out.slice(0, 16);
}

export const svcChain = (fe: Frontend): string => `KUBE-SVC-${hash16(fe.name + PROTO_NAME[fe.proto]!)}`;
export const sepChain = (fe: Frontend, ip: number, port: number): string =>
  `KUBE-SEP-${hash16(fe.name + PROTO_NAME[fe.proto]! + `${formatIpv4(ip)}:${port}`)}`;

export interface KubeProxyOptions {
  /** The cluster's pod network: traffic to a ClusterIP from outside it is masqueraded. */
  readonly clusterCidr: string;
  /**
   * Put the jumps from the built-in chains (KUBE_JUMPS) into the restore input as `-A` lines:
   * right for loading once into fresh tables (default); a syncer ensures them itself and says false.
   */
  readonly jumps?: boolean;
  /** nat chains written before and to be deleted now if the catalog no longer uses them. */
  readonly stale?: Iterable<string>;
}

export type IptablesTable = 'nat' | 'filter';

/** One jump from a built-in chain into kube-proxy's, as kube-proxy's iptablesJumpChains. */
export interface KubeJump { readonly table: IptablesTable; readonly chain: string; readonly rule: readonly string[] }

const portals = ['-m', 'comment', '--comment', 'kubernetes service portals'];
const newPortals = ['-m', 'conntrack', '--ctstate', 'NEW', ...portals];
export const KUBE_JUMPS: readonly KubeJump[] = [
  { table: 'filter', chain: 'INPUT', rule: [...newPortals, '-j', 'KUBE-SERVICES'] },
  { table: 'filter', chain: 'FORWARD', rule: [...newPortals, '-j', 'KUBE-SERVICES'] },
  { table: 'filter', chain: 'OUTPUT', rule: [...newPortals, '-j', 'KUBE-SERVICES'] },
  { table: 'nat', chain: 'PREROUTING', rule: [...portals, '-j', 'KUBE-SERVICES'] },
  { table: 'nat', chain: 'OUTPUT', rule: [...portals, '-j', 'KUBE-SERVICES'] },
  { table: 'nat', chain: 'POSTROUTING', rule: ['-m', 'comment', '--comment', 'kubernetes postrouting rules', '-j', 'KUBE-POSTROUTING'] },
];
/** The chains every sync writes, whatever the Services. */
export const KUBE_BASE_CHAINS: Readonly<Record<IptablesTable, readonly string[]>> = {
  filter: ['KUBE-SERVICES'],
  nat: ['KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING'],
};

/** Whether a nat chain is a per-service one (kube-proxy's isServiceChainName, for the chains written here). */
export const isServiceChain = (chain: string): boolean => /^KUBE-(SVC|SEP)-[A-Z2-7]{16}$/.test(chain);

/** A jump as an `iptables-restore` line. */
const quoteArg = (a: string): string => /[\s"]/.test(a) ? `"${a}"` : a;
const jumpLine = (j: KubeJump): string => `-A ${j.chain} ${j.rule.map(quoteArg).join(' ')}`;

/** The nat chains a restore input declares (`:NAME - [0:0]`) and does not delete. */
export function declaredNatChains(rules: string): string[] {
  const out: string[] = [];
  let table = '';
  const deleted = new Set<string>();
  for (const l of rules.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1);
    else if (table === 'nat' && l.startsWith(':')) out.push(l.slice(1).split(' ')[0]!);
    else if (table === 'nat' && l.startsWith('-X ')) deleted.add(l.slice(3));
  }
  return out.filter((c) => !deleted.has(c));
}

/** kubeProxyCleanup: the restore input that flushes and deletes `nat` and filter's KUBE-SERVICES (delete the jumps first). */
export function kubeProxyCleanup(nat: Iterable<string>): string {
  const natChains = [...new Set([...KUBE_BASE_CHAINS.nat, ...nat])];
  return [
    '*filter', ...KUBE_BASE_CHAINS.filter.map((c) => `:${c} - [0:0]`), ...KUBE_BASE_CHAINS.filter.map((c) => `-X ${c}`), 'COMMIT',
    '*nat', ...natChains.map((c) => `:${c} - [0:0]`), ...natChains.map((c) => `-X ${c}`), 'COMMIT', '',
  ].join('\n');
}

/** kubeProxyRules: the iptables-restore input (nat and filter tables) for the catalog. */
export function kubeProxyRules(catalog: ServiceCatalog, opts: KubeProxyOptions): string {
  const nat: string[] = [], filter: string[] = [];
  const natChains = [...KUBE_BASE_CHAINS.nat];
  const withJumps = opts.jumps ?? true;
  if (withJumps) {
    nat.push(...KUBE_JUMPS.filter((j) => j.table === 'nat').map(jumpLine));
    filter.push(...KUBE_JUMPS.filter((j) => j.table === 'filter').map(jumpLine));
  }
  nat.push(
    `-A KUBE-MARK-MASQ -j MARK --set-xmark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK} -j RETURN`,
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  );
  for (const fe of catalog.frontends) {
    const proto = PROTO_NAME[fe.proto]!;
    const match = `-d ${formatIpv4(fe.ip)}/32 -p ${proto} -m ${proto} --dport ${fe.port}`;
    if (fe.backends.length === 0) {
      filter.push(fe.empty === 'no-local-endpoints'
        ? `-A KUBE-SERVICES ${match} -m comment --comment "${fe.name} has no local endpoints" -j DROP`
        : `-A KUBE-SERVICES ${match} -m comment --comment "${fe.name} has no endpoints" -j REJECT --reject-with icmp-port-unreachable`);
      continue;
    }
    const svc = svcChain(fe);
    natChains.push(svc);
    nat.push(`-A KUBE-SERVICES ${match} -m comment --comment "${fe.name} cluster IP" -j ${svc}`);
    nat.push(`-A ${svc} ! -s ${opts.clusterCidr} ${match} -m comment --comment "${fe.name} cluster IP" -j KUBE-MARK-MASQ`);
    const seps = fe.backends.map((b) => sepChain(fe, b.ip, b.port));
    natChains.push(...seps);
    const affinityS = Math.round(fe.affinityMs / 1000);
    if (affinityS > 0) {
      for (const sep of seps) nat.push(`-A ${svc} -m comment --comment "${fe.name} -> affinity" -m recent --name ${sep} --mask 255.255.255.255 --rsource --rcheck --seconds ${affinityS} --reap -j ${sep}`);
    }
    const n = seps.length;
    seps.forEach((sep, i) => {
      const left = n - i;
      nat.push(left > 1
        ? `-A ${svc} -m comment --comment "${fe.name} -> ${formatIpv4(fe.backends[i]!.ip)}:${fe.backends[i]!.port}" -m statistic --mode random --probability ${(1 / left).toFixed(10)} -j ${sep}`
        : `-A ${svc} -m comment --comment "${fe.name} -> ${formatIpv4(fe.backends[i]!.ip)}:${fe.backends[i]!.port}" -j ${sep}`);
    });
    fe.backends.forEach((b, i) => {
      const sep = seps[i]!, addr = formatIpv4(b.ip);
      nat.push(`-A ${sep} -s ${addr}/32 -m comment --comment "${fe.name}" -j KUBE-MARK-MASQ`);
      if (affinityS > 0) nat.push(`-A ${sep} -p ${proto} -m comment --comment "${fe.name}" -m recent --name ${sep} --mask 255.255.255.255 --rsource --set -m ${proto} -j DNAT --to-destination ${addr}:${b.port}`);
      else nat.push(`-A ${sep} -p ${proto} -m comment --comment "${fe.name}" -m ${proto} -j DNAT --to-destination ${addr}:${b.port}`);
    });
  }
  // Chains written before and unused now: declared (which flushes them), then deleted, after the
  // rules, as kube-proxy does (a stale KUBE-SVC may still jump to a stale KUBE-SEP until flushed).
  const active = new Set(natChains);
  const stale = [...new Set(opts.stale ?? [])].filter((c) => isServiceChain(c) && !active.has(c));
  return [
    '*filter', ...KUBE_BASE_CHAINS.filter.map((c) => `:${c} - [0:0]`), ...filter, 'COMMIT',
    '*nat', ...natChains.map((c) => `:${c} - [0:0]`), ...stale.map((c) => `:${c} - [0:0]`), ...nat, ...stale.map((c) => `-X ${c}`), 'COMMIT', '',
  ].join('\n');
}
