// MtuStatus as its users see it: src/mtu functions return a count (>= 0) or one of these
// negative codes, and counters are labelled with mtuStatusName(). Codes and names are published
// (append, never renumber or rename), so they are written out here rather than derived from the
// table under test.
import { describe, expect, it } from 'vitest';
import { MtuStatus, mtuStatusName } from '../../src/mtu/status.js';

/** Every code and counter label published so far. */
const PUBLISHED: readonly (readonly [number, string])[] = [
  [0, 'ok'], [-1, 'truncated'], [-2, 'not_ip'], [-3, 'bad_ip_header'], [-4, 'bad_ip_checksum'], [-5, 'ip_fragment'],
  [-6, 'ipv6_ext_header'], [-7, 'wrong_protocol'], [-8, 'bad_l4_header'], [-9, 'gso_type_unsupported'],
  [-10, 'gso_type_mismatch'], [-11, 'bad_gso_size'], [-12, 'too_many_segments'], [-13, 'no_room'], [-14, 'df_set'],
  [-15, 'mtu_too_small'], [-16, 'bad_ip_options'], [-17, 'csum_out_of_range'], [-18, 'datagram_too_big'], [-19, 'not_ipv4'],
];
const LOWEST_PUBLISHED = Math.min(...PUBLISHED.map(([c]) => c));

const codes = Object.values(MtuStatus) as number[];

describe('MtuStatus', () => {
  it.each(PUBLISHED)('keeps code %i labelled %s', (code, name) => {
    expect(codes).toContain(code);
    expect(mtuStatusName(code)).toBe(name);
  });

  it('only appends: a code not published yet is below every published one', () => {
    const published = new Set(PUBLISHED.map(([c]) => c));
    for (const c of codes.filter((c) => !published.has(c))) expect(c).toBeLessThan(LOWEST_PUBLISHED);
  });

  it('OK is 0 and every failure a distinct negative integer, so that no code reads as a count', () => {
    expect(MtuStatus.OK).toBe(0);
    const failures = codes.filter((c) => c !== MtuStatus.OK);
    for (const c of failures) {
      expect(Number.isInteger(c)).toBe(true);
      expect(c).toBeLessThan(0);
    }
    expect(new Set(failures).size).toBe(failures.length);
  });

  it('labels are distinct snake_case words (one counter per code)', () => {
    const names = codes.map(mtuStatusName);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each([
    ['the next unassigned code', LOWEST_PUBLISHED - 1000],
    ['a far-off negative code', -999],
    ['a count (not a status)', 3],
  ])('labels %s readably, with its number, apart from every known label', (_what, code) => {
    const name = mtuStatusName(code);
    expect(name).toBe(`mtu_status_${code}`);
    expect(codes.map(mtuStatusName)).not.toContain(name);
  });
});
