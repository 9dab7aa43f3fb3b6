/**
 * U32Map: a map keyed by uint32 values (IPv4 addresses, network numbers) whose lookups allocate
 * nothing. V8 stores integers up to 2^30 - 1 unboxed (Smis); a key such as 198.51.100.1
 * (0xc6336401) is a heap number, and passing one to Map#get boxes it: 16 bytes per lookup
 * (found by `flatnet replay`: all the allocation left on the overlay receive path). This map
 * keys its inner Map by the low 30 bits and checks the full key; the rare keys that share their
 * low 30 bits (they differ only in the top two) go to a short chain.
 */

const LOW30 = 0x3fff_ffff;

interface Entry<V> { readonly key: number; readonly value: V; next: Entry<V> | null }

export class U32Map<V> {
  private readonly map = new Map<number, Entry<V>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** get returns the value for `key` (a uint32), or undefined. Allocates nothing. */
  get(key: number): V | undefined {
    let e: Entry<V> | null = this.map.get(key & LOW30) ?? null;
    while (e !== null) {
      if (e.key === key >>> 0) return e.value;
      e = e.next;
    }
    return undefined;
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** set adds or replaces (cold path: building tables). */
  set(key: number, value: V): this {
    const k = key >>> 0;
    const head = this.map.get(k & LOW30);
    for (let e = head ?? null; e !== null; e = e.next) {
      if (e.key === k) {
        (e as { value: V }).value = value;
        return this;
      }
    }
    this.map.set(k & LOW30, { key: k, value, next: head ?? null });
    this.count++;
    return this;
  }

  *values(): IterableIterator<V> {
    for (const head of this.map.values()) for (let e: Entry<V> | null = head; e !== null; e = e.next) yield e.value;
  }
}

const FILTER_BITS = 16;

/**
 * U32Filter: a set of uint32 keys that answers "no" to most keys outside it with one load and
 * no Map lookup: one bit per key's multiplicative hash (its top 16 bits) in a 65,536-bit table
 * (8 KiB). mayHave() is true for every key added, and for a key outside the set only when its
 * bit is shared (about k/65,536 of them for k keys): a filter in front of a map on a path where
 * most keys miss (the NAT stage: packets to pod IPs among the Services' ClusterIPs).
 */
export class U32Filter {
  private readonly bits = new Int32Array(1 << (FILTER_BITS - 5));

  add(key: number): void {
    const h = Math.imul(key | 0, 0x9e37_79b1) >>> (32 - FILTER_BITS);
    this.bits[h >>> 5]! |= 1 << (h & 31);
  }

  mayHave(key: number): boolean {
    const h = Math.imul(key | 0, 0x9e37_79b1) >>> (32 - FILTER_BITS);
    return (this.bits[h >>> 5]! & (1 << (h & 31))) !== 0;
  }
}
