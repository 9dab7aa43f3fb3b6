/**
 * The node configuration file (`flatnet vtep --config FILE`): JSON, the node section plus the
 * file's peers and pods. One of the producers of desired state (producers.ts): this module
 * reads and parses it; every rule it is checked against lives in validate.ts. Every failure is
 * a ConfigError whose `field` names the offending path ("peers[1].podCidr"), so a user can find
 * the line. The result is compiled to numbers (uint32 addresses, 48-bit MACs, Cidr objects).
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { AUTO_BUDGET_US, BUSY_POLL_OFF, type BusyPollSetting, MAX_BUDGET_US } from '../pipeline/busy-poll.js';
import { formatMac, parseMac } from '../wire/addr.js';
import type { NodeSpec, PeerSpec, PodSpec } from './desired.js';
import { jsonErrorPosition, lineColumn } from './json-position.js';
import {
  checkNode, checkPeer, checkPod, checkUnicast, checkUnique, nodeSchema, peerEntrySchema, podEntrySchema,
  relatePeers, relatePods, schemaError,
} from './validate.js';

const budgetUs = z.number({ error: `a spin budget in microseconds, 1 to ${MAX_BUDGET_US}` }).int().min(1).max(MAX_BUDGET_US);

/**
 * `busyPoll` (src/pipeline/busy-poll.ts), named after the kernel's SO_BUSY_POLL: "off"; a number
 * of microseconds to spin after traffic, always; "auto", spin AUTO_BUDGET_US only while the machine
 * has a spare core; or { "us": N, "auto": true } for auto with another budget.
 */
export const busyPollSchema = z.union([
  z.enum(['off', 'auto']),
  budgetUs,
  z.object({ us: budgetUs, auto: z.boolean().default(false) }).strict(),
], { error: `"off", "auto", a budget in microseconds (1 to ${MAX_BUDGET_US}) or { "us": N, "auto": true|false }` });

export const configSchema = nodeSchema.extend({
  busyPoll: busyPollSchema.default('off'),
  peers: z.array(peerEntrySchema).default([]),
  pods: z.array(podEntrySchema).default([]),
}).strict();

export type ConfigInput = z.input<typeof configSchema>;

export type PeerConfig = PeerSpec;
export type PodConfig = PodSpec;

/** The validated, compiled file: the node section and the file's peers and pods, in file order. */
export interface NodeConfig extends NodeSpec {
  /** The drain loop's busy polling (applied at start and by a reload). */
  readonly busyPoll: BusyPollSetting;
  readonly peers: readonly PeerConfig[];
  readonly pods: readonly PodConfig[];
}

/**
 * loadConfig reads and validates FILE; throws ConfigError (ERR_CONFIG_READ, _JSON, _INVALID...).
 * `complete` fills in what the file leaves to the control plane (src/control/join.ts) first.
 */
export function loadConfig(path: string, complete?: (json: unknown) => unknown): NodeConfig {
  const json = readConfigJson(path);
  return parseConfig(complete === undefined ? json : complete(json));
}

/** readConfigJson reads FILE as JSON (ERR_CONFIG_READ, ERR_CONFIG_JSON), unchecked. */
export function readConfigJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError('ERR_CONFIG_READ', '', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw jsonError(path, text, e);
  }
  return json;
}

/** jsonError: ERR_CONFIG_JSON naming the line and column where the file stops being JSON. */
export function jsonError(path: string, text: string, cause: unknown): ConfigError {
  const pos = jsonErrorPosition(text) ?? lineColumn(text, text.length);
  const at = pos.offset >= text.length ? 'end of file' : JSON.stringify(text.slice(pos.offset, pos.offset + 12));
  return new ConfigError('ERR_CONFIG_JSON', '', `${path}:${pos.line}:${pos.column}: not valid JSON at ${at} (line ${pos.line}, column ${pos.column}): ${(cause as Error).message}`, { cause });
}

/** parseConfig validates an already-parsed JSON value. */
export function parseConfig(json: unknown): NodeConfig {
  const r = configSchema.safeParse(json);
  if (!r.success) throw schemaError('ERR_CONFIG_INVALID', r.error);
  const node = checkNode(r.data);
  const peers = r.data.peers.map((p, i) => checkPeer(node, p, `peers[${i}]`));
  checkUnique(peers, 'peers', relatePeers);
  const pods = r.data.pods.map((p, i) => checkPod(node, p, `pods[${i}]`));
  checkUnique(pods, 'pods', relatePods);
  return { ...node, busyPoll: compileBusyPoll(r.data.busyPoll), peers, pods };
}

/** compileBusyPoll: the setting the switch takes from the file's `busyPoll`. */
export function compileBusyPoll(v: z.output<typeof busyPollSchema>): BusyPollSetting {
  if (v === 'off') return BUSY_POLL_OFF;
  if (v === 'auto') return { mode: 'auto', budgetUs: AUTO_BUDGET_US };
  if (typeof v === 'number') return { mode: 'always', budgetUs: v };
  return { mode: v.auto ? 'auto' : 'always', budgetUs: v.us };
}

/** nodeOf: the node section of a compiled file (without its peers and pods). */
export function nodeOf(cfg: NodeConfig): NodeSpec {
  const { peers: _peers, pods: _pods, busyPoll: _busyPoll, ...node } = cfg;
  return node;
}

/**
 * resolveVtepMac returns the configured VTEP MAC or the one persisted for this node, generating
 * and persisting a random locally administered unicast MAC the first time (flannel keeps its
 * VTEP MAC across restarts so that peers' static entries stay valid: flannel #1155, #1795).
 */
export function resolveVtepMac(cfg: NodeSpec): number {
  if (cfg.vtepMac !== null) return cfg.vtepMac;
  const file = join(cfg.stateDir, `${cfg.node}.vtep-mac`);
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    try {
      return checkUnicast(parseMac(text), file);
    } catch (e) {
      throw new ConfigError('ERR_CONFIG_STATE', file, `persisted VTEP MAC ${JSON.stringify(text)} is invalid; delete the file to generate a new one`, { cause: e });
    }
  }
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  const m = parseMac([...b].map((x) => x.toString(16).padStart(2, '0')).join(':'));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${formatMac(m)}\n`, { mode: 0o644 });
  return m;
}
