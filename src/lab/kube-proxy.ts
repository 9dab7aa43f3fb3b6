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
}

/** kubeProxyRules: the iptables-restore input (nat and filter tables) for the catalog. */
export function kubeProxyRules(catalog: ServiceCatalog, opts: KubeProxyOptions): string {
  const nat: string[] = [], filter: string[] = [];
  const natChains = ['KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-POSTROUTING'];
  nat.push(
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    `-A KUBE-MARK-MASQ -j MARK --set-xmark ${MASQ_MARK}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK} -j RETURN`,
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  );
  filter.push(
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
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
  return [
    '*filter', ':KUBE-SERVICES - [0:0]', ...filter, 'COMMIT',
    '*nat', ...natChains.map((c) => `:${c} - [0:0]`), ...nat, 'COMMIT', '',
  ].join('\n');
}
