import { describe, expect, it } from 'vitest';
import { MtuStatus, mtuStatusName } from '../../src/mtu/status.js';

describe('MtuStatus', () => {
  const entries = Object.entries(MtuStatus);

  it('OK is 0 and every other code is a distinct negative integer (counts and codes never collide)', () => {
    expect(MtuStatus.OK).toBe(0);
    const others = entries.filter(([k]) => k !== 'OK').map(([, v]) => v);
    expect(others.every((v) => Number.isInteger(v) && v < 0)).toBe(true);
    expect(new Set(others).size).toBe(others.length);
  });

  it('keeps its published numbers (append-only)', () => {
    expect(MtuStatus).toMatchObject({ TRUNCATED: -1, NOT_IP: -2, NO_ROOM: -13, DF_SET: -14, DATAGRAM_TOO_BIG: -18 });
  });

  it('names each code in snake_case, and unknown codes too', () => {
    for (const [k, v] of entries) expect(mtuStatusName(v)).toBe(k.toLowerCase());
    expect(mtuStatusName(-999)).toBe('mtu_status_-999');
  });
});
