/**
 * Payload copies for the offload paths, without a per-call allocation where Node allows it.
 *
 * Buffer#copy between two Buffers builds a Uint8Array view of the source range on every call
 * in Node 20 (lib/buffer.js _copyActual): a few hundred bytes of garbage per 64 KB super-frame
 * (bench/offload/offload.bench.ts). When source and destination are Buffers over one ArrayBuffer (an
 * arena and its spare slots, or subarrays of one arena), TypedArray#copyWithin on a Uint8Array
 * spanning that whole ArrayBuffer does the same memmove with nothing allocated; that view is
 * created once per ArrayBuffer and cached, like bytes.ts caches DataViews.
 *
 * How the switch uses this: indirectly. Giving segment/fragment/coalesce a destination carved
 * from the same arena as the frames (spare slots of the rx Batch) makes their copies
 * allocation-free; a separate scratch Buffer works too, at the cost above.
 */

const CACHE_SIZE = 4;
const EMPTY_AB = new ArrayBuffer(0);
const cacheAbs: ArrayBufferLike[] = [EMPTY_AB, EMPTY_AB, EMPTY_AB, EMPTY_AB];
const cacheViews: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)];
let cacheNext = 0;

function wholeView(ab: ArrayBufferLike): Uint8Array {
  for (let i = 0; i < CACHE_SIZE; i++) if (cacheAbs[i] === ab) return cacheViews[i]!;
  const v = new Uint8Array(ab);
  cacheAbs[cacheNext] = ab;
  cacheViews[cacheNext] = v;
  cacheNext = (cacheNext + 1) % CACHE_SIZE;
  return v;
}

/**
 * copyBytes copies src[from, from + len) to dst[to, to + len) (offsets relative to each Buffer).
 * Preconditions: both ranges inside their Buffers (callers check); overlapping ranges are
 * copied as memmove would. Mutates only dst[to, to + len).
 */
export function copyBytes(src: Buffer, from: number, dst: Buffer, to: number, len: number): void {
  if (len <= 0) return;
  if (src.buffer === dst.buffer) {
    const v = wholeView(src.buffer);
    const a = src.byteOffset + from;
    v.copyWithin(dst.byteOffset + to, a, a + len);
  } else {
    src.copy(dst, to, from, from + len);
  }
}
