/**
 * Small DOM helpers for the visualizer's page: element builders for HTML and SVG, number
 * formatting, and a JSON fetch that turns the API's `{error}` answers into thrown messages.
 */

type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;
type Child = Node | string | number | null | undefined | false;

function apply(el: Element, attrs: Attrs, children: readonly Child[]): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/** h: an HTML element. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/** s: an SVG element. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, children);
  return el;
}

/** rate: 1234567 -> "1.23 M" (SI prefixes). */
export function si(n: number, unit = ''): string {
  const a = Math.abs(n);
  const [v, p] = a >= 1e9 ? [n / 1e9, 'G'] : a >= 1e6 ? [n / 1e6, 'M'] : a >= 1e3 ? [n / 1e3, 'k'] : [n, ''];
  const digits = Math.abs(v) >= 100 || p === '' ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${p}${unit}`.trim();
}

export const count = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : n.toLocaleString('en-US'));

/** api: GET a JSON API path; an error answer throws its message. */
export async function api<T>(path: string): Promise<T> {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = (await r.json()) as unknown;
  if (!r.ok) {
    const e = (body as { error?: { message?: string; code?: string } }).error;
    throw new Error(`${r.status} ${e?.code ?? ''}: ${e?.message ?? r.statusText}`);
  }
  return body as T;
}

/** replace: empties `el` and puts `children` in it. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  apply(el, {}, children);
}

/** select: a <select> of options (value, label), with `value` selected when present. */
export function select(id: string, options: readonly (readonly [string, string])[], value: string | null, onchange?: (v: string) => void): HTMLSelectElement {
  const el = h('select', { id, name: id, ...(onchange ? { onchange: (e: Event) => onchange((e.target as HTMLSelectElement).value) } : {}) },
    ...options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));
  return el;
}
