/**
 * Address conversions for cold paths (config, CLI, tests): MACs are 48-bit numbers and IPv4
 * addresses uint32 on the data path; these turn them into text and back.
 */

import { WireError } from '../errors.js';

const MAC_RE = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i;

/** parseMac: "aa:bb:cc:dd:ee:ff" (or with dashes) to a 48-bit number; throws ERR_WIRE_BAD_ADDRESS. */
export function parseMac(text: string): number {
  const m = MAC_RE.exec(text.trim());
  if (m === null) throw new WireError('ERR_WIRE_BAD_ADDRESS', `not a MAC address: ${JSON.stringify(text)}`);
  let v = 0;
  for (let i = 1; i <= 6; i++) v = v * 256 + parseInt(m[i]!, 16);
  return v;
}

export function formatMac(mac: number): string {
  const parts: string[] = [];
  let v = mac;
  for (let i = 0; i < 6; i++) {
    parts.unshift((v % 256).toString(16).padStart(2, '0'));
    v = Math.floor(v / 256);
  }
  return parts.join(':');
}

/** True for a group (multicast or broadcast) MAC: the I/G bit of the first octet. */
export function isMulticastMac(mac: number): boolean {
  return Math.floor(mac / 0x100_0000_0000) % 2 === 1;
}

export const BROADCAST_MAC = 0xffff_ffff_ffff;

/** parseIpv4: dotted quad to uint32; throws ERR_WIRE_BAD_ADDRESS. */
export function parseIpv4(text: string): number {
  const parts = text.trim().split('.');
  if (parts.length !== 4) throw new WireError('ERR_WIRE_BAD_ADDRESS', `not an IPv4 address: ${JSON.stringify(text)}`);
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) {
      throw new WireError('ERR_WIRE_BAD_ADDRESS', `not an IPv4 address: ${JSON.stringify(text)}`);
    }
    v = v * 256 + Number(p);
  }
  return v >>> 0;
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** A prefix length as a uint32 netmask (0 -> 0, 32 -> 0xffffffff). */
export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffff_ffff << (32 - len)) >>> 0;
}
