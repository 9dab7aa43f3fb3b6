/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016, section 3.4), as Cilium and Katran use it for Service backends: a lookup
 * table of M slots (M prime) that every backend fills in turn, each following its own
 * permutation of the slots. Each backend gets M/N slots (within one), and when one backend is
 * added or removed only about 1/N of the slots change owner, so most connections keep their
 * backend even without a connection table (which flatnet has too: the table is for new
 * connections).
 *
 * Backends are named by strings (their "ip:port"); the permutation of a backend depends only on
 * its name and the table is filled in the names' sorted order, so every node builds the same
 * table from the same set, whatever order it learned the backends in.
 */

/** A prime table size: 251 fits few backends; Cilium's default is 16381. */
export const DEFAULT_MAGLEV_SIZE = 16381;

/** FNV-1a 32-bit over a string's UTF-16 code units, with a seed mixed in first. */
function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche, so that names differing in one character spread over the whole range.
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * maglevTable fills a table of `size` slots (a prime) with indexes into `names` (every name
 * unique). Returns an Int32Array; all -1 when there are no backends.
 */
export function maglevTable(names: readonly string[], size = DEFAULT_MAGLEV_SIZE): Int32Array {
  if (!isPrime(size)) throw new RangeError(`maglev table size must be prime, got ${size}`);
  const table = new Int32Array(size).fill(-1);
  const n = names.length;
  if (n === 0) return table;
  // Fill in sorted order (so that the table depends on the set only), then map back.
  const order = names.map((_, i) => i).sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
  const sorted = order.map((i) => names[i]!);
  const offset = new Uint32Array(n), skip = new Uint32Array(n), next = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    offset[i] = fnv1a(sorted[i]!, 0x5bd1e995) % size;
    skip[i] = (fnv1a(sorted[i]!, 0x1b873593) % (size - 1)) + 1;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      // The next slot in backend i's permutation that nobody owns yet.
      let c = (offset[i]! + next[i]! * skip[i]!) % size;
      while (table[c] !== -1) {
        next[i]!++;
        c = (offset[i]! + next[i]! * skip[i]!) % size;
      }
      table[c] = order[i]!;
      next[i]!++;
      if (++filled === size) return table;
    }
  }
}

/** maglevPick: the backend index for a flow hash (a uint32), or -1 with no backends. */
export const maglevPick = (table: Int32Array, hash: number): number => table[(hash >>> 0) % table.length]!;
