/**
 * Protocol numbers used by the codec. Unknown values are never a parse failure: they pass
 * through as plain numbers (smoltcp's `enum_with_unknown!` idea).
 */

export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100, // IEEE 802.1Q
  QINQ: 0x88a8, // IEEE 802.1ad service tag
  IPV6: 0x86dd,
} as const;
export type EtherType = (typeof EtherType)[keyof typeof EtherType];

export const IpProto = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
} as const;
export type IpProto = (typeof IpProto)[keyof typeof IpProto];

export const UdpPort = {
  /** IANA's VXLAN port (RFC 7348 §5). flatnet's default. */
  VXLAN: 4789,
  /** The Linux kernel's default VXLAN port (module parameter `udp_port`). */
  VXLAN_LINUX: 8472,
  VXLAN_GPE: 4790,
} as const;

export function etherTypeName(t: number): string {
  switch (t) {
    case EtherType.IPV4: return 'IPv4';
    case EtherType.ARP: return 'ARP';
    case EtherType.VLAN: return '802.1Q';
    case EtherType.QINQ: return '802.1ad';
    case EtherType.IPV6: return 'IPv6';
    default: return `0x${t.toString(16).padStart(4, '0')}`;
  }
}

export function ipProtoName(p: number): string {
  switch (p) {
    case IpProto.ICMP: return 'ICMP';
    case IpProto.TCP: return 'TCP';
    case IpProto.UDP: return 'UDP';
    case IpProto.ICMPV6: return 'ICMPv6';
    default: return `proto-${p}`;
  }
}
