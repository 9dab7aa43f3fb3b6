/**
 * `flatnet show policy`: the installed NetworkPolicies with the pods each selects and its hits,
 * as JSON rows and as a kubectl-style table.
 */

import type { PolicySet } from './engine.js';

export interface PolicyRow {
  readonly namespace: string;
  readonly name: string;
  readonly types: readonly string[];
  /** namespace/name of each pod it selects. */
  readonly selects: readonly string[];
  /** New connections its rules allowed. */
  readonly allowed: number;
  /** New connections denied to (or from) a pod it isolates. */
  readonly denied: number;
  readonly rules: readonly { readonly rule: string; readonly hits: number }[];
}

export function policyRows(set: PolicySet): PolicyRow[] {
  return set.policies.map((p) => ({
    namespace: p.namespace, name: p.name, types: [...p.types], selects: [...p.selects], allowed: p.allowed, denied: p.denied,
    rules: p.rules.map((r) => ({ rule: `${r.direction}[${r.index}]`, hits: r.hits })),
  }));
}

/** renderPolicies: one line per policy, then its rules' hits and the pods it selects. */
export function renderPolicies(rows: readonly PolicyRow[]): string {
  if (rows.length === 0) return 'No NetworkPolicies installed.';
  const head = ['NAMESPACE', 'NAME', 'TYPES', 'PODS', 'ALLOWED', 'DENIED'];
  const cells = rows.map((r) => [r.namespace, r.name, r.types.join(','), String(r.selects.length), String(r.allowed), String(r.denied)]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string => c.map((x, i) => x.padEnd(w[i]!)).join('   ').trimEnd();
  const out = [line(head)];
  rows.forEach((r, i) => {
    out.push(line(cells[i]!));
    for (const rule of r.rules) out.push(`    ${rule.rule.padEnd(12)} hits ${rule.hits}`);
    out.push(`    selects      ${r.selects.length === 0 ? '(no pod)' : r.selects.join(' ')}`);
  });
  return out.join('\n');
}
