/**
 * The node a capture is replayed through: a normal node configuration (src/daemon/config.ts)
 * turned into the same Switch the daemon builds (src/daemon/vtep.ts, VtepDaemon.start), with
 * in-process ports instead of the TAP, the AF_PACKET sockets and the UDP socket.
 *
 * The overlay port carries whole Ethernet frames (Framing.ETHERNET), so encapsulation writes an
 * outer Ethernet header too. The daemon's UDP socket never needs one (the kernel adds it), and a
 * node configuration has no field for it: replay takes the two outer MACs from its own options,
 * by default the fixed values below.
 *
 * Without `--config`, replay uses DEFAULT_NODE: node 1 of the lab topology, the one every
 * capture under fixtures/replay/ was generated for.
 *
 *   underlay 198.51.100.0/24 (MTU 1550), next hop 198.51.100.254 at 02:00:c6:33:64:fe
 *   node1  198.51.100.1  02:00:c6:33:64:01  pods 10.244.1.0/24  VTEP MAC 0e:00:0a:f4:01:00
 *          host port flatnet0 02:00:0a:f4:01:fe
 *          pod-a 10.244.1.10 02:00:0a:f4:01:0a     pod-b 10.244.1.11 02:00:0a:f4:01:0b
 *   node2  198.51.100.2  pods 10.244.2.0/24  VTEP MAC 0e:00:0a:f4:02:00
 *   node3  198.51.100.3  pods 10.244.3.0/24  VTEP MAC 0e:00:0a:f4:03:00
 *
 * The pod MTU is 1500 over a 1550-byte underlay (VXLAN's 50 bytes on top), so a TCP flow with
 * 1,448-byte segments (MSS 1460 minus 12 bytes of timestamps) fits without fragmentation.
 */

import type { UnderlayMacs } from '../daemon/switch-options.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigInput, type NodeConfig, parseConfig } from '../daemon/config.js';
import { ConfigError } from '../errors.js';
import type { VtepSpec } from '../fib/vtep.js';
import { SwitchMode, type SwitchOptions } from '../pipeline/switch.js';
import { parseMac } from '../wire/addr.js';

/** Outer Ethernet addresses of encapsulated frames (EncapSettings.localUnderlayMac / nextHopMac). */

export const DEFAULT_UNDERLAY_MACS: UnderlayMacs = {
  local: parseMac('02:00:c6:33:64:01'),
  nextHop: parseMac('02:00:c6:33:64:fe'),
};

/** The VTEP MAC replay uses when the configuration has none and none was persisted. */
export const DEFAULT_VTEP_MAC = parseMac('0e:00:0a:f4:01:00');

export const DEFAULT_NODE: ConfigInput = {
  node: 'node1',
  vni: 1,
  port: 4789,
  mode: 'l3',
  underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1550 },
  podCidr: '10.244.1.0/24',
  clusterCidr: '10.244.0.0/16',
  vtepMac: '0e:00:0a:f4:01:00',
  podMtu: 1500,
  host: { interface: 'flatnet0', mac: '02:00:0a:f4:01:fe' },
  peers: [
    { name: 'node2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' },
    { name: 'node3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' },
  ],
  pods: [
    { name: 'pod-a', interface: 'veth-pod-a', ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a' },
    { name: 'pod-b', interface: 'veth-pod-b', ip: '10.244.1.11', mac: '02:00:0a:f4:01:0b' },
  ],
};

/** defaultNodeConfig: DEFAULT_NODE, validated and compiled like any configuration file. */
export function defaultNodeConfig(): NodeConfig {
  return parseConfig(DEFAULT_NODE);
}

export interface ReplayVtepMac {
  readonly mac: number;
  /** Where it came from: the configuration, the daemon's state file, or replay's default. */
  readonly source: 'config' | 'state' | 'default';
}

/**
 * replayVtepMac: the configured VTEP MAC, else the one the daemon persisted for this node (read
 * only: unlike resolveVtepMac, replay never writes to the state directory), else
 * DEFAULT_VTEP_MAC.
 */
export function replayVtepMac(cfg: NodeConfig): ReplayVtepMac {
  if (cfg.vtepMac !== null) return { mac: cfg.vtepMac, source: 'config' };
  const file = join(cfg.stateDir, `${cfg.node}.vtep-mac`);
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    try {
      return { mac: parseMac(text), source: 'state' };
    } catch (e) {
      throw new ConfigError('ERR_CONFIG_STATE', file, `persisted VTEP MAC ${JSON.stringify(text)} is invalid`, { cause: e });
    }
  }
  return { mac: DEFAULT_VTEP_MAC, source: 'default' };
}

