/**
 * Forwarding cost against the number of peers, measured in one process: two replay nodes built
 * from the same config but for their peer lists (3 peers, and the same 3 plus 4,997 more), both
 * warmed up, then `rounds` rounds of one short timed pass each, in alternating order. Adjacent
 * passes see the same machine load, so the median of the per-round ratios is a figure a shared,
 * loaded machine can still give; the medians of each side are reported too.
 */

import { readFileSync } from 'node:fs';
import { parseConfig, type ConfigInput } from '../../src/daemon/config.js';
import { DEFAULT_NODE } from '../../src/replay/node.js';
import { ReplayNode } from '../../src/replay/replay.js';

/** The replay node's config with `peers` peers (3: the default two and one more). */
export function configWithPeers(peers: number): ConfigInput {
  const extra = Array.from({ length: Math.max(0, peers - 2) }, (_, i) => ({
    name: `p${i}`, underlay: `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}`, podCidr: `10.${1 + Math.floor(i / 250)}.${i % 250}.0/24`,
    vtepMac: `0e:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
  }));
  return { ...DEFAULT_NODE, clusterCidr: '10.0.0.0/8', peers: [...DEFAULT_NODE.peers!, ...extra] };
}

export interface PeersAb { readonly small: number[]; readonly large: number[]; readonly ratios: number[]; readonly loops: number; readonly framesPerPass: number }

export function peersAb(pcap: string, smallPeers: number, largePeers: number, rounds: number, passMs = 150): PeersAb {
  const data = readFileSync(pcap);
  const a = new ReplayNode(parseConfig(configWithPeers(smallPeers)));
  const b = new ReplayNode(parseConfig(configWithPeers(largePeers)));
  const ia = a.load(data), ib = b.load(data);
  // Warm-up: both through the same code until V8 has settled, then size a pass.
  for (let i = 0; i < 3; i++) { a.run(ia, { loops: 64 }); b.run(ib, { loops: 64 }); }
  const probe = a.run(ia, { loops: 64 });
  const loops = Math.max(8, Math.round((passMs * 1e6) / (probe.nsPerFrame * probe.framesPerPass)));
  const small: number[] = [], large: number[] = [], ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0;
    const x = first ? a.run(ia, { loops }) : b.run(ib, { loops });
    const y = first ? b.run(ib, { loops }) : a.run(ia, { loops });
    const s = first ? x.nsPerFrame : y.nsPerFrame, l = first ? y.nsPerFrame : x.nsPerFrame;
    small.push(s); large.push(l); ratios.push(l / s);
  }
  return { small, large, ratios, loops, framesPerPass: probe.framesPerPass };
}

export const median = (xs: readonly number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
