/**
 * CNI results: what ADD prints, and the `prevResult` a runtime hands to the next plugin of a
 * chain (and back to us for CHECK and DEL). One internal shape (the 1.x one) converted to the
 * configuration's version on the way out:
 *   0.3.1, 0.4.0   each IP carries `"version": "4"`
 *   1.0.0          no IP version; interfaces: name, mac, sandbox
 *   1.1.0          interfaces may carry `mtu`
 */

import { CniCode, CniError, compareVersions, type CniVersion } from './spec.js';

export interface CniInterface { readonly name: string; readonly mac?: string; readonly mtu?: number; readonly sandbox?: string }
export interface CniIp { readonly address: string; readonly gateway?: string; readonly interface?: number }
export interface CniRoute { readonly dst: string; readonly gw?: string }
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIp[];
  readonly routes: readonly CniRoute[];
  readonly dns: Readonly<Record<string, unknown>>;
}

/** parseResult reads a prevResult (any supported version) into the internal shape; code 7 if it is not one. */
export function parseResult(json: unknown): CniResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CniError(CniCode.INVALID_CONFIG, 'prevResult: not a CNI result object');
  const r = json as Record<string, unknown>;
  const list = (k: string): Record<string, unknown>[] => {
    const v = r[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'object' || x === null)) throw new CniError(CniCode.INVALID_CONFIG, `prevResult.${k}: not a list of objects`);
    return v as Record<string, unknown>[];
  };
  const ips = list('ips').map((ip, i): CniIp => {
    if (typeof ip['address'] !== 'string') throw new CniError(CniCode.INVALID_CONFIG, `prevResult.ips[${i}].address: missing`);
    const { version: _v, ...rest } = ip;
    return rest as unknown as CniIp;
  });
  return {
    cniVersion: typeof r['cniVersion'] === 'string' ? r['cniVersion'] : '1.0.0',
    interfaces: list('interfaces') as unknown as CniInterface[],
    ips,
    routes: list('routes') as unknown as CniRoute[],
    dns: (typeof r['dns'] === 'object' && r['dns'] !== null ? r['dns'] : {}) as Record<string, unknown>,
  };
}

/** merge appends `ours` to a previous result (chained after another plugin), renumbering our IPs' interfaces. */
export function merge(prev: CniResult | null, ours: CniResult): CniResult {
  if (prev === null) return ours;
  const off = prev.interfaces.length;
  return {
    cniVersion: ours.cniVersion,
    interfaces: [...prev.interfaces, ...ours.interfaces],
    ips: [...prev.ips, ...ours.ips.map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + off }))],
    routes: [...prev.routes, ...ours.routes],
    dns: { ...prev.dns, ...ours.dns },
  };
}

/** toVersion: the result as the configuration's cniVersion spells it. */
export function toVersion(r: CniResult, version: CniVersion): Record<string, unknown> {
  const v1 = compareVersions(version, '1.0.0') >= 0;
  const withMtu = compareVersions(version, '1.1.0') >= 0;
  return {
    cniVersion: version,
    interfaces: r.interfaces.map((i) => {
      if (withMtu || i.mtu === undefined) return i;
      const { mtu: _m, ...rest } = i;
      return rest;
    }),
    ips: r.ips.map((ip) => (v1 ? ip : { version: '4', ...ip })),
    routes: r.routes,
    dns: r.dns,
  };
}
