/**
 * Link control by interface name (ioctl through the addon), for ports and the VTEP daemon:
 * ifindex, MTU, up/down, MAC address, transmit queue length. Every call acts in the calling
 * thread's current network namespace (see netns.ts) and throws a NativeError with the errno
 * name as `code` (ENODEV for a missing interface, EPERM without CAP_NET_ADMIN).
 */

import { FlatnetError } from '../errors.js';
import { formatMac, parseMac } from '../wire/addr.js';
import { control, loadNative } from './native.js';

/** IFF_* flags as returned by getLinkFlags (linux/if.h). */
export const IfFlag = { UP: 0x1, BROADCAST: 0x2, LOOPBACK: 0x8, RUNNING: 0x40, NOARP: 0x80, PROMISC: 0x100 } as const;

/** Largest interface name the kernel accepts (IFNAMSIZ - 1). */
export const IFNAME_MAX_LEN = 15;

/** checkIfName throws ERR_IO_BAD_IFNAME unless `name` is a usable interface name. */
export function checkIfName(name: string): void {
  // The kernel's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or whitespace.
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX_LEN || name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new FlatnetError('ERR_IO_BAD_IFNAME', `not a valid interface name: ${JSON.stringify(name)}`);
  }
}

export function ifIndex(name: string): number {
  checkIfName(name);
  return control(name, () => loadNative().ifIndex(name));
}

export function ifName(index: number): string {
  return control(`ifindex ${index}`, () => loadNative().ifNameOf(index));
}

export function getMtu(name: string): number {
  checkIfName(name);
  return control(name, () => loadNative().getMtu(name));
}

export function setMtu(name: string, mtu: number): void {
  checkIfName(name);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new FlatnetError('ERR_IO_BAD_MTU', `MTU ${mtu} is not in [68, 65535]`);
  control(name, () => loadNative().setMtu(name, mtu));
}

export function getLinkFlags(name: string): number {
  checkIfName(name);
  return control(name, () => loadNative().getFlags(name));
}

export function isLinkUp(name: string): boolean {
  return (getLinkFlags(name) & IfFlag.UP) !== 0;
}

export function setLinkUp(name: string, up: boolean): void {
  checkIfName(name);
  control(name, () => loadNative().setUp(name, up));
}

/** getMac returns the interface's MAC address as a 48-bit number. */
export function getMac(name: string): number {
  checkIfName(name);
  const b = control(name, () => loadNative().getMac(name));
  return b.readUIntBE(0, 6);
}

export function getMacString(name: string): string {
  return formatMac(getMac(name));
}

/** setMac sets the MAC address (a 48-bit number or "aa:bb:cc:dd:ee:ff"). */
export function setMac(name: string, mac: number | string): void {
  checkIfName(name);
  const v = typeof mac === 'string' ? parseMac(mac) : mac;
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff_ffff) throw new FlatnetError('ERR_IO_BAD_MAC', `not a MAC address: ${mac}`);
  const b = Buffer.alloc(6);
  b.writeUIntBE(v, 0, 6);
  control(name, () => loadNative().setMac(name, b));
}

export function setTxQueueLen(name: string, len: number): void {
  checkIfName(name);
  if (!Number.isInteger(len) || len < 0) throw new FlatnetError('ERR_IO_BAD_QLEN', `transmit queue length ${len}`);
  control(name, () => loadNative().setTxQueueLen(name, len));
}
