/**
 * The iptables rules and ipsets Calico's iptables data plane (Felix) programs for Kubernetes
 * NetworkPolicies, as `iptables-restore` and `ipset restore` inputs, so that a kernel node of the
 * lab enforces the same allow/deny set as flatnet's policy engine by Calico's mechanism, and the
 * two can be measured side by side. Made from the same Namespace, Pod and NetworkPolicy objects
 * the engine compiles (src/policy/objects.ts), with Felix's chain layout (felix/rules/static.go,
 * endpoints.go, policy.go):
 *
 *   FORWARD -> cali-FORWARD: clear Calico's mark bits, then
 *       -i cali+ -> cali-from-wl-dispatch: -i <pod's veth> -g cali-fw-<veth>   (the pod's egress)
 *       -o cali+ -> cali-to-wl-dispatch:   -o <pod's veth> -g cali-tw-<veth>   (the pod's ingress)
 *     FORWARD's tail: the accept mark set -> ACCEPT ("Policy explicitly accepted packet.")
 *   cali-tw-/cali-fw-<veth> (per workload interface, per direction):
 *       conntrack RELATED,ESTABLISHED -> ACCEPT; INVALID -> DROP; clear the accept and pass bits;
 *       when policies apply in this direction: one jump per policy (cali-pi-/cali-po-<id>) or per
 *       group of consecutive policies with the same selector (cali-gi-/cali-go-<id>, which jumps
 *       to its policies, checking for a verdict every 5), "Return if policy accepted" after each,
 *       and "Drop if no policies passed packet" at the end (the pod is isolated);
 *       otherwise the namespace's profile (cali-pri-/cali-pro-kns.<ns>), which accepts,
 *       and "Drop if no profiles matched".
 *   cali-pi-/cali-po-<policy>: one rule per (protocol and its ports, peer) of each NetworkPolicy
 *       rule, as Calico's Kubernetes conversion splits them, each setting the accept mark (0x10000)
 *       and followed by a return when it is set.
 *
 * Address sets are ipsets, as Felix makes them: one `hash:net` set per distinct pod/namespace
 * selector peer (cali40s:<id>, the selected pods' addresses); an ipBlock is its CIDR inline
 * (`-s`/`-d`), or, with `except`, a `hash:net` set holding the CIDR and each exception as a
 * `nomatch` entry; a named port is a `hash:ip,port` set (cali40n:<id>) of every pod's
 * address,protocol:port that carries that name. Pod traffic reaches the rules on routed veths,
 * Calico's own plumbing (see calicoNodeCommands): each pod's veth `cali<11 hex>` in the node with a
 * /32 route, the pod's default route via 169.254.1.1; no bridge.
 *
 * Left out (not needed for the allow/deny set): Felix's rule-ID comments, failsafe and host
 * endpoint chains (empty here), the dispatch tree (a flat list: nodes of the lab carry a few
 * pods), the drop of VXLAN/IPIP packets sent by pods, the service-account profiles (no rules).
 * SCTP is refused (ERR_CALICO_UNSUPPORTED): the kernels of these machines have no SCTP, so
 * nothing could check such rules.
 */

import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { parseIpv4, prefixMask } from '../wire/addr.js';
import {
  namespaceLabels, selectorMatches, type LabelSelector, type Namespace, type NetworkPolicy, type NetworkPolicyPeer,
  type NetworkPolicyPort, type Pod,
} from '../policy/objects.js';
import type { Command } from './kernel-node.js';

/** Felix's default mark bits: accept, pass, and the two scratch bits (cleared at the start). */
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
const MARK_ALL = 0xf0000;
/** Felix checks for a verdict after this many policy jumps in a group chain. */
const RETURN_STRIDE = 5;
/** iptables' multiport match takes at most 15 ports (a range counts as two). */
const MULTIPORT_MAX = 15;
/** The gateway every Calico pod routes through (answered by the node, never configured on it). */
export const CALICO_GATEWAY = '169.254.1.1';
/** The MAC Calico gives every host-side veth. */
export const CALICO_HOST_MAC = 'ee:ee:ee:ee:ee:ee';

const hex = (n: number): string => `0x${n.toString(16)}`;
const mark = (bits: number): string => `${hex(bits)}/${hex(bits)}`;
const clear = (bits: number): string => `0x0/${hex(bits)}`;

/** A short, stable id: base64url of SHA-224 (Felix's scheme for policy and group names). */
function hashId(s: string, len: number): string {
  return createHash('sha224').update(s).digest('base64url').slice(0, len);
}

/** workloadInterface: the host-side veth Calico's CNI plugin names for a pod: cali + 11 hex of SHA-1(namespace.name). */
export function workloadInterface(namespace: string, name: string): string {
  return `cali${createHash('sha1').update(`${namespace}.${name}`).digest('hex').slice(0, 11)}`;
}

/** A chain name within iptables' 28 characters: the id itself when it fits, else `prefix_<hash>`. */
function chainName(prefix: string, id: string): string {
  const whole = prefix + id;
  if (whole.length <= 28 && /^[A-Za-z0-9._-]+$/.test(id)) return whole;
  return `${prefix}_${hashId(id, 28 - prefix.length - 1)}`;
}

export interface CalicoInputs {
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly NetworkPolicy[];
  /** The node whose workloads get endpoint chains (pods with this spec.nodeName); every pod when absent. */
  readonly node?: string;
}

/** What the generator made. */
export interface CalicoRules {
  /** `iptables-restore --noflush` input (the filter table). */
  readonly iptables: string;
  /** `ipset restore` input (load it first: the rules refer to the sets). */
  readonly ipset: string;
  /** The node's workloads: namespace/name -> host-side interface and address. */
  readonly endpoints: ReadonlyMap<string, { readonly iface: string; readonly ip: string }>;
  readonly counts: { readonly chains: number; readonly rules: number; readonly sets: number; readonly setMembers: number };
  /** Pods left out (no IP yet): they cannot be workloads or set members. */
  readonly skipped: readonly string[];
}

type Dir = 'ingress' | 'egress';
const nsOf = (m: { namespace?: string }): string => m.namespace ?? 'default';
const PROTOS = { TCP: 'tcp', UDP: 'udp' } as const;

interface PodInfo { readonly key: string; readonly ns: string; readonly name: string; readonly ip: string; readonly labels: Readonly<Record<string, string>>; readonly nsLabels: Readonly<Record<string, string>>; readonly pod: Pod }

/** checkCidr: an IPv4 CIDR with its host bits cleared (Calico normalises them too), or a ConfigError at `field`. */
function checkCidr(text: string, field: string): { net: number; len: number; text: string } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  let ip = -1;
  if (m !== null) { try { ip = parseIpv4(m[1]!); } catch { ip = -1; } }
  const len = Number(m?.[2] ?? 99);
  if (ip < 0 || len > 32) throw new ConfigError('ERR_CALICO_INVALID', field, `not an IPv4 CIDR: ${JSON.stringify(text)}`);
  const net = (ip & prefixMask(len)) >>> 0;
  return { net, len, text: `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${len}` };
}

/**
 * calicoRules renders the iptables rules and ipsets for `inputs`. Throws ConfigError
 * (ERR_CALICO_UNSUPPORTED: SCTP; ERR_CALICO_INVALID: a CIDR, an except outside its CIDR, a
 * port or endPort out of range) with the field path of the offending value.
 */
export function calicoRules(inputs: CalicoInputs): CalicoRules {
  const nsByName = new Map(inputs.namespaces.map((n) => [n.metadata.name, n]));
  const pods: PodInfo[] = [];
  const skipped: string[] = [];
  for (const pod of inputs.pods) {
    const ns = nsOf(pod.metadata), key = `${ns}/${pod.metadata.name}`;
    const ip = pod.status?.podIP;
    if (ip === undefined) { skipped.push(key); continue; }
    try { parseIpv4(ip); } catch { throw new ConfigError('ERR_CALICO_INVALID', `pod ${key}: status.podIP`, `not an IPv4 address: ${JSON.stringify(ip)}`); }
    pods.push({ key, ns, name: pod.metadata.name, ip, labels: pod.metadata.labels ?? {}, nsLabels: namespaceLabels(nsByName.get(ns), ns), pod });
  }
  const local = pods.filter((p) => inputs.node === undefined || p.pod.spec?.nodeName === inputs.node);

  // ipsets, deduplicated by what they hold (Felix shares a set between rules with one selector).
  const sets = new Map<string, { name: string; create: string; adds: string[] }>();
  const selectorSet = (policyNs: string, peer: NetworkPolicyPeer): string => {
    const key = JSON.stringify(['sel', peer.namespaceSelector === undefined ? policyNs : null, peer.namespaceSelector ?? null, peer.podSelector ?? null]);
    let s = sets.get(key);
    if (s === undefined) {
      const name = `cali40s:${hashId(key, 22)}`;
      const members = pods.filter((q) => (peer.namespaceSelector !== undefined ? selectorMatches(peer.namespaceSelector, q.nsLabels) : q.ns === policyNs)
        && (peer.podSelector === undefined || selectorMatches(peer.podSelector, q.labels)));
      s = { name, create: `create ${name} hash:net family inet hashsize 1024 maxelem 1048576`, adds: members.map((q) => `add ${name} ${q.ip}/32`) };
      sets.set(key, s);
    }
    return s.name;
  };
  const exceptSet = (cidr: string, except: readonly string[]): string => {
    const key = JSON.stringify(['net', cidr, [...except].sort()]);
    let s = sets.get(key);
    if (s === undefined) {
      const name = `cali40s:${hashId(key, 22)}`;
      s = { name, create: `create ${name} hash:net family inet hashsize 1024 maxelem 1048576`, adds: [`add ${name} ${cidr}`, ...except.map((e) => `add ${name} ${e} nomatch`)] };
      sets.set(key, s);
    }
    return s.name;
  };
  const namedPortSet = (portName: string, proto: 'tcp' | 'udp'): string => {
    const key = JSON.stringify(['port', portName, proto]);
    let s = sets.get(key);
    if (s === undefined) {
      const name = `cali40n:${hashId(key, 22)}`;
      const adds: string[] = [];
      for (const q of pods) {
        for (const c of q.pod.spec?.containers ?? []) {
          for (const cp of c.ports ?? []) {
            if (cp.name === portName && (cp.protocol ?? 'TCP').toLowerCase() === proto) adds.push(`add ${name} ${q.ip},${proto}:${cp.containerPort}`);
          }
        }
      }
      s = { name, create: `create ${name} hash:ip,port family inet hashsize 1024 maxelem 1048576`, adds };
      sets.set(key, s);
    }
    return s.name;
  };

  // Each policy, in Calico's order for Kubernetes policies (equal order 1000, then by name).
  interface Pol { readonly ns: string; readonly name: string; readonly types: readonly string[]; readonly selector: LabelSelector; readonly selKey: string; readonly spec: NetworkPolicy['spec']; readonly id: string }
  const pols: Pol[] = inputs.policies.map((p) => {
    const ns = nsOf(p.metadata), spec = p.spec;
    const types = spec.policyTypes ?? (spec.egress !== undefined && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
    return { ns, name: p.metadata.name, types, selector: spec.podSelector, selKey: JSON.stringify([ns, spec.podSelector]), spec, id: `${ns}/knp.default.${p.metadata.name}` };
  }).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  /** The iptables rules (after `-A CHAIN `) of one policy in one direction. */
  const policyRules = (pol: Pol, dir: Dir): string[] => {
    const where = `networkpolicy ${pol.ns}/${pol.name}`;
    const rules = dir === 'ingress' ? pol.spec.ingress ?? [] : pol.spec.egress ?? [];
    const out: string[] = [];
    const addrSide = dir === 'ingress' ? 'src' : 'dst';
    const addrFlag = dir === 'ingress' ? '-s' : '-d';
    rules.forEach((rule, i) => {
      const field = `spec.${dir}[${i}]`;
      const peers = (dir === 'ingress' ? (rule as { from?: readonly NetworkPolicyPeer[] }).from : (rule as { to?: readonly NetworkPolicyPeer[] }).to) ?? [];
      const peerMatches: string[] = peers.length === 0 ? [''] : peers.map((peer, j) => {
        const pf = `${field}.${dir === 'ingress' ? 'from' : 'to'}[${j}]`;
        if (peer.ipBlock !== undefined) {
          const c = checkCidr(peer.ipBlock.cidr, `${where}: ${pf}.ipBlock.cidr`);
          const except = (peer.ipBlock.except ?? []).map((e, k) => {
            const x = checkCidr(e, `${where}: ${pf}.ipBlock.except[${k}]`);
            if (x.len < c.len || ((x.net & prefixMask(c.len)) >>> 0) !== c.net) {
              throw new ConfigError('ERR_CALICO_INVALID', `${where}: ${pf}.ipBlock.except[${k}]`, `${e} is not inside ${peer.ipBlock!.cidr}`);
            }
            return x.text;
          });
          return except.length === 0 ? ` ${addrFlag} ${c.text}` : ` -m set --match-set ${exceptSet(c.text, except)} ${addrSide}`;
        }
        return ` -m set --match-set ${selectorSet(pol.ns, peer)} ${addrSide}`;
      });
      const portMatches = portGroups(rule.ports ?? [], `${where}: ${field}.ports`, namedPortSet);
      // Protocol by protocol, then peer by peer: the order of Calico's conversion (k8sRuleToCalico).
      for (const po of portMatches) {
        for (const pm of peerMatches) {
          out.push(`${po.proto}${pm}${po.ports} -j MARK --set-xmark ${mark(MARK_ACCEPT)}`);
          out.push(`-m mark --mark ${mark(MARK_ACCEPT)} -j RETURN`);
        }
      }
    });
    return out;
  };

  const chains = new Map<string, string[]>();
  const chain = (name: string): string[] => {
    let c = chains.get(name);
    if (c === undefined) { c = []; chains.set(name, c); }
    return c;
  };
  const policyChain = (pol: Pol, dir: Dir): string => {
    const name = chainName(dir === 'ingress' ? 'cali-pi-' : 'cali-po-', pol.id);
    if (!chains.has(name)) chain(name).push(...policyRules(pol, dir));
    return name;
  };
  const groupChain = (group: readonly Pol[], dir: Dir): string => {
    const name = chainName(dir === 'ingress' ? 'cali-gi-' : 'cali-go-', `_${hashId(JSON.stringify([dir, group[0]!.selKey, group.map((p) => p.id)]), 20)}`);
    if (chains.has(name)) return name;
    const c = chain(name);
    group.forEach((pol, i) => {
      if (i !== 0 && i % RETURN_STRIDE === 0) c.push(`-m mark ! --mark ${clear(MARK_PASS | MARK_ACCEPT)} -m comment --comment "Return on verdict" -j RETURN`);
      const target = policyChain(pol, dir);
      c.push(i % RETURN_STRIDE === 0 ? `-j ${target}` : `-m mark --mark ${clear(MARK_PASS | MARK_ACCEPT)} -j ${target}`);
    });
    return name;
  };
  const profileChain = (ns: string, dir: Dir): string => {
    const name = chainName(dir === 'ingress' ? 'cali-pri-' : 'cali-pro-', `kns.${ns}`);
    if (!chains.has(name)) chain(name).push(`-j MARK --set-xmark ${mark(MARK_ACCEPT)}`, `-m mark --mark ${mark(MARK_ACCEPT)} -j RETURN`);
    return name;
  };

  // cali-FORWARD and the dispatch chains.
  chain('cali-FORWARD').push(
    `-m comment --comment "clear Calico's mark bits" -j MARK --set-xmark ${clear(MARK_ALL & ~MARK_ACCEPT)}`,
    `-m mark --mark ${clear(MARK_ACCEPT)} -j cali-from-hep-forward`,
    '-i cali+ -j cali-from-wl-dispatch',
    '-o cali+ -j cali-to-wl-dispatch',
    '-j cali-to-hep-forward',
    '-j cali-cidr-block',
  );
  chain('cali-from-hep-forward');
  chain('cali-to-hep-forward');
  chain('cali-cidr-block');
  const fromDispatch = chain('cali-from-wl-dispatch'), toDispatch = chain('cali-to-wl-dispatch');
  const endpoints = new Map<string, { iface: string; ip: string }>();
  for (const p of local) {
    const iface = workloadInterface(p.ns, p.name);
    endpoints.set(p.key, { iface, ip: p.ip });
    fromDispatch.push(`-i ${iface} -g cali-fw-${iface}`);
    toDispatch.push(`-o ${iface} -g cali-tw-${iface}`);
    for (const dir of ['ingress', 'egress'] as const) {
      const c = chain(`${dir === 'ingress' ? 'cali-tw-' : 'cali-fw-'}${iface}`);
      c.push(
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
        `-j MARK --set-xmark ${clear(MARK_ACCEPT | MARK_PASS)}`,
      );
      const type = dir === 'ingress' ? 'Ingress' : 'Egress';
      const applying = pols.filter((pol) => pol.ns === p.ns && pol.types.includes(type) && selectorMatches(pol.selector, p.labels));
      if (applying.length > 0) {
        c.push(`-m comment --comment "Start of tier default" -j MARK --set-xmark ${clear(MARK_PASS)}`);
        for (let i = 0; i < applying.length;) {
          let j = i + 1;
          while (j < applying.length && applying[j]!.selKey === applying[i]!.selKey) j++;
          const target = j - i > 1 ? groupChain(applying.slice(i, j), dir) : policyChain(applying[i]!, dir);
          c.push(`-m mark --mark ${clear(MARK_PASS)} -j ${target}`, `-m mark --mark ${mark(MARK_ACCEPT)} -m comment --comment "Return if policy accepted" -j RETURN`);
          i = j;
        }
        c.push(`-m mark --mark ${clear(MARK_PASS)} -m comment --comment "Drop if no policies passed packet" -j DROP`);
      }
      c.push(`-j ${profileChain(p.ns, dir)}`, `-m mark --mark ${mark(MARK_ACCEPT)} -m comment --comment "Return if profile accepted" -j RETURN`);
      c.push('-m comment --comment "Drop if no profiles matched" -j DROP');
    }
  }
  fromDispatch.push('-m comment --comment "Unknown interface" -j DROP');
  toDispatch.push('-m comment --comment "Unknown interface" -j DROP');

  const lines = ['*filter', ...[...chains.keys()].map((c) => `:${c} - [0:0]`)];
  lines.push('-I FORWARD 1 -j cali-FORWARD');
  let rules = 1;
  for (const [name, body] of chains) for (const r of body) { lines.push(`-A ${name} ${r}`); rules++; }
  lines.push(`-A FORWARD -m mark --mark ${mark(MARK_ACCEPT)} -m comment --comment "Policy explicitly accepted packet." -j ACCEPT`);
  lines.push(`-A FORWARD -j MARK --set-xmark ${mark(MARK_ACCEPT)}`);
  rules += 2;
  lines.push('COMMIT', '');
  const setList = [...sets.values()];
  const ipset = [...setList.map((s) => s.create), ...setList.flatMap((s) => s.adds), ''].join('\n');
  return {
    iptables: lines.join('\n'), ipset, endpoints, skipped,
    counts: { chains: chains.size, rules, sets: setList.length, setMembers: setList.reduce((n, s) => n + s.adds.length, 0) },
  };
}

interface PortMatch { readonly proto: string; readonly ports: string }

/**
 * portGroups: a rule's ports as iptables matches, one per protocol and kind (numeric ports and
 * ranges in multiport chunks of 15, each named port as a hash:ip,port set on the destination).
 * No ports: one match of everything.
 */
function portGroups(ports: readonly NetworkPolicyPort[], field: string, namedPortSet: (name: string, proto: 'tcp' | 'udp') => string): PortMatch[] {
  if (ports.length === 0) return [{ proto: '', ports: '' }];
  const byProto = new Map<'tcp' | 'udp', { any: boolean; nums: string[]; names: string[] }>();
  ports.forEach((p, i) => {
    const protocol = p.protocol ?? 'TCP';
    if (protocol === 'SCTP') throw new ConfigError('ERR_CALICO_UNSUPPORTED', `${field}[${i}].protocol`, 'SCTP: the kernels this comparison runs on have no SCTP, so its rules could not be checked');
    const proto = PROTOS[protocol as keyof typeof PROTOS];
    if (proto === undefined) throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].protocol`, `unknown protocol ${JSON.stringify(protocol)}: TCP, UDP or SCTP`);
    let g = byProto.get(proto);
    if (g === undefined) { g = { any: false, nums: [], names: [] }; byProto.set(proto, g); }
    if (p.port === undefined) {
      if (p.endPort !== undefined) throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].endPort`, 'endPort needs a numeric port');
      g.any = true;
      return;
    }
    if (typeof p.port === 'string') {
      if (p.endPort !== undefined) throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].endPort`, 'endPort needs a numeric port, not a named one');
      if (!/^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/.test(p.port)) throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].port`, `not a port name: ${JSON.stringify(p.port)}`);
      g.names.push(p.port);
      return;
    }
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].port`, `${p.port}: 1 to 65535`);
    if (p.endPort !== undefined && (!Number.isInteger(p.endPort) || p.endPort < p.port || p.endPort > 65535)) {
      throw new ConfigError('ERR_CALICO_INVALID', `${field}[${i}].endPort`, `${p.endPort}: from port (${p.port}) to 65535`);
    }
    g.nums.push(p.endPort !== undefined && p.endPort !== p.port ? `${p.port}:${p.endPort}` : String(p.port));
  });
  const out: PortMatch[] = [];
  for (const [proto, g] of byProto) {
    if (g.any) { out.push({ proto: `-p ${proto}`, ports: '' }); continue; }
    let chunk: string[] = [], width = 0;
    const flush = (): void => { if (chunk.length > 0) out.push({ proto: `-p ${proto}`, ports: ` -m multiport --destination-ports ${chunk.join(',')}` }); chunk = []; width = 0; };
    for (const n of g.nums) {
      const w = n.includes(':') ? 2 : 1;
      if (width + w > MULTIPORT_MAX) flush();
      chunk.push(n); width += w;
    }
    flush();
    for (const name of g.names) out.push({ proto: `-p ${proto}`, ports: ` -m set --match-set ${namedPortSet(name, proto)} dst,dst` });
  }
  return out;
}

/** A pod plugged into a Calico-style node: its namespace, address, MAC and host-side interface. */
export interface CalicoPod { readonly ns: string; readonly ip: string; readonly mac: string; readonly iface: string }

/**
 * calicoNodeCommands: the commands that plug pods into node namespace `nodeNs` the way Calico's
 * CNI plugin does (the namespaces exist; the veths are made here): a veth per pod, `eth0` in the
 * pod with its /32 address and a default route via 169.254.1.1 on the link, the host side
 * `cali...` (MAC ee:ee:ee:ee:ee:ee, proxy ARP on) with a /32 route to the pod. Neighbour entries
 * are static both ways, so that no ARP exchange (the node has no address to ask from) decides a
 * probe. Forwarding on in the node.
 */
export function calicoNodeCommands(nodeNs: string, pods: readonly CalicoPod[]): Command[] {
  const cmds: Command[] = [['ip', ['netns', 'exec', nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']]];
  for (const p of pods) {
    cmds.push(
      ['ip', ['link', 'add', p.iface, 'netns', nodeNs, 'address', CALICO_HOST_MAC, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns, 'address', p.mac]],
      ['ip', ['netns', 'exec', nodeNs, 'sysctl', '-qw', `net.ipv4.conf.${p.iface}.proxy_arp=1`, `net.ipv4.neigh.${p.iface}.proxy_delay=0`]],
      ['ip', ['-n', nodeNs, 'link', 'set', p.iface, 'up']],
      ['ip', ['-n', nodeNs, 'route', 'add', `${p.ip}/32`, 'dev', p.iface, 'scope', 'link']],
      ['ip', ['-n', nodeNs, 'neigh', 'replace', p.ip, 'lladdr', p.mac, 'dev', p.iface, 'nud', 'permanent']],
      ['ip', ['-n', p.ns, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0']],
      ['ip', ['-n', p.ns, 'link', 'set', 'eth0', 'up']],
      ['ip', ['-n', p.ns, 'route', 'add', CALICO_GATEWAY, 'dev', 'eth0', 'scope', 'link']],
      ['ip', ['-n', p.ns, 'route', 'add', 'default', 'via', CALICO_GATEWAY, 'dev', 'eth0']],
      ['ip', ['-n', p.ns, 'neigh', 'replace', CALICO_GATEWAY, 'lladdr', CALICO_HOST_MAC, 'dev', 'eth0', 'nud', 'permanent']],
    );
  }
  return cmds;
}
