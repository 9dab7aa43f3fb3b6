// The encapsulation view's field table: offsets that match the codec's layout, and no throw and
// no field outside the frame for any truncation or corruption of a real frame.
import { describe, expect, it } from 'vitest';
import { annotateFrame } from '../../src/ui/frame.js';
import { OUTER_IP_OFF, OUTER_UDP_OFF, VXLAN_HEADROOM, VXLAN_OFF } from '../../src/wire/encap.js';

// n1's frame for `icmp to 10.244.2.10` from n1p0, as `flatnet trace --json` printed it on a lab.
const FRAME = Buffer.from('00000000000000000000000008004500008600000000401125fdc6336401c6336402f95b12b50072000008000000000001000e000af402000e000af40100080045000054000140003f0122ad0af4010a0af4020a080000eb00010001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637', 'hex');

describe('annotateFrame', () => {
  it('puts the headers where the encapsulation writes them, and the overhead is VXLAN_HEADROOM', () => {
    const hs = annotateFrame(FRAME, 4789);
    expect(hs.filter((h) => h.overhead).map((h) => h.offset)).toEqual([0, OUTER_IP_OFF, OUTER_UDP_OFF, VXLAN_OFF]);
    expect(hs.filter((h) => h.overhead).reduce((n, h) => n + h.length, 0)).toBe(VXLAN_HEADROOM);
    expect(hs.find((h) => h.layer === 'inner-eth')!.offset).toBe(VXLAN_HEADROOM);
    // Fields tile each header: in order, no gap, no overlap.
    for (const h of hs) {
      let at = h.offset;
      for (const f of h.fields) { expect(f.offset, `${h.layer} ${f.name}`).toBe(at); at += f.length; }
      expect(at, h.layer).toBe(h.offset + h.length);
    }
  });

  it('without VXLAN on that port, the UDP payload is data and nothing is overhead', () => {
    const hs = annotateFrame(FRAME, 8472);
    expect(hs.map((h) => h.layer)).toEqual(['outer-eth', 'outer-ipv4', 'outer-udp', 'payload']);
  });

  it('never throws and never names a byte outside the frame, whatever the length or a flipped byte', () => {
    for (let len = 0; len <= FRAME.length; len++) {
      for (const flip of [-1, 12, 14, 23, 36, 42, 50, 64, 73]) {
        const b = Buffer.from(FRAME.subarray(0, len));
        if (flip >= 0 && flip < len) b[flip] = b[flip]! ^ 0xff;
        const hs = annotateFrame(b, 4789);
        for (const h of hs) for (const f of h.fields) expect(f.offset + f.length, `len ${len} flip ${flip} ${h.layer} ${f.name}`).toBeLessThanOrEqual(len);
      }
    }
  });
});
