/**
 * IPv4 CIDR blocks for the control plane: parsed and validated with ip-num (cold path: config,
 * CLI, control socket) and compiled to (network, prefix length, mask) uint32 numbers that the
 * data path compares with one AND (ip-num's own containment test costs ~10 µs: see
 * DEPENDENCIES.md).
 */

import { IPv4CidrRange, Validator } from 'ip-num';
import { ConfigError } from '../errors.js';
import { formatIpv4, prefixMask } from '../wire/addr.js';

export class Cidr {
  /** Network address (host bits zero). */
  readonly network: number;
  readonly len: number;
  readonly mask: number;
  /** The last address of the block (all host bits set): a data-path field, not a computation. */
  readonly broadcast: number;

  constructor(network: number, len: number) {
    if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`prefix length ${len}`);
    this.len = len;
    this.mask = prefixMask(len);
    this.network = (network & this.mask) >>> 0;
    if (this.network !== network >>> 0) throw new RangeError(`${formatIpv4(network)}/${len} has host bits set`);
    this.broadcast = (this.network | ~this.mask) >>> 0;
  }

  /**
   * parse: "10.244.1.0/24" -> Cidr. Throws ConfigError ERR_CONFIG_INVALID_CIDR naming `field`,
   * also for a misaligned block such as 10.244.0.1/16 (ip-num's Validator).
   */
  static parse(text: string, field = ''): Cidr {
    const [ok, why] = Validator.isValidIPv4CidrRange(text);
    if (!ok) throw new ConfigError('ERR_CONFIG_INVALID_CIDR', field, `${JSON.stringify(text)} is not an aligned IPv4 CIDR block (${why.join('; ')})`);
    const range = IPv4CidrRange.fromCidr(text);
    return new Cidr(Number(range.getFirst().getValue()), Number(range.getPrefix().getValue()));
  }

  /** contains: the data-path test, one AND and one compare. */
  contains(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === this.network;
  }

  /** True when the two blocks share any address. */
  overlaps(o: Cidr): boolean {
    const m = this.len < o.len ? this.mask : o.mask;
    return ((this.network & m) >>> 0) === ((o.network & m) >>> 0);
  }

  /** The n-th address of the block (0 = network address). */
  host(n: number): number {
    return (this.network + n) >>> 0;
  }

  get size(): number {
    return 2 ** (32 - this.len);
  }

  toString(): string {
    return `${formatIpv4(this.network)}/${this.len}`;
  }
}
