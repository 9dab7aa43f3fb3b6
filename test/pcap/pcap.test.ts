import { describe, expect, it } from 'vitest';
import { PcapReader, PcapRecord } from '../../src/pcap/pcap.js';
import { PcapngBuilder } from '../support/pcap.js';

/** Reads every record of an in-memory capture; returns the PcapError code if one is thrown. */
function readAll(file: Buffer): { frames: number; code?: string } {
  let frames = 0;
  try {
    const r = new PcapReader(file);
    const rec = new PcapRecord();
    while (r.next(rec)) {
      expect(rec.capLen).toBeGreaterThanOrEqual(0);
      frames++;
    }
    return { frames };
  } catch (e) {
    return { frames, code: (e as { code?: string }).code };
  }
}

describe('PcapReader on malformed pcapng', () => {
  // Regression: a packet block too short for its own fixed fields made the reader run off the
  // end of the file with a RangeError (EPB, PB) or return a negative captured length (SPB).
  it.each([
    ['an EPB with no body', 6, Buffer.alloc(0)],
    ['an EPB with 8 of its 20 fixed bytes', 6, Buffer.alloc(8)],
    ['a PB with 4 of its 20 fixed bytes', 2, Buffer.alloc(4)],
    ['an SPB with no original-length field', 3, Buffer.alloc(0)],
    ['an IDB with no link type', 1, Buffer.alloc(0)],
  ])('rejects %s with ERR_PCAP_MALFORMED', (_name, type, body) => {
    const file = new PcapngBuilder().shb().idb().block(type, body).build();
    expect(readAll(file).code).toBe('ERR_PCAP_MALFORMED');
  });

  it('rejects an EPB whose captured length runs into the block trailer', () => {
    // Body: 20 fixed bytes + 4 data bytes, but caplen claims 8: the last 4 would be the trailer.
    const body = Buffer.alloc(24);
    body.writeUInt32LE(8, 12);
    body.writeUInt32LE(8, 16);
    const file = new PcapngBuilder().shb().idb().block(6, body).build();
    expect(readAll(file)).toEqual({ frames: 0, code: 'ERR_PCAP_MALFORMED' });
  });
});
