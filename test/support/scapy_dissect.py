#!/usr/bin/python3
"""scapy as an independent field oracle for test/interop/differential.test.ts.

Usage: /usr/bin/python3 scapy_dissect.py FILE.pcap
Prints one JSON object per frame, in file order: {"index": i, "fields": {...}, "layers": "..."}
(or {"index": i, "error": "..."}). The field keys are the flat schema of test/support/gen.ts
(FIELD_KEYS): "o." outer frame, "vx." VXLAN header, "i." inner frame.

Checksum status is scapy's own opinion: the stored value is compared with what scapy computes
when the field is deleted on a copy and the layer is rebuilt ('none' for a zero UDP checksum).

Quirk: scapy 2.5 reads VXLAN flag 0x04 as the VXLAN-GPE "NextProtocol" bit and then splits
bytes 1-3 as reserved0 (16 bits) + NextProtocol (8 bits). The raw bytes are reassembled into
vx.b1/vx.b23 so that they stay comparable, and "vx.gpe_next_protocol" records the GPE reading.
"""

import json
import sys

from scapy.config import conf
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption
from scapy.layers.inet import TCPOptions
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Padding, Raw, bind_layers
from scapy.utils import RawPcapReader

# Linux's default VXLAN port (scapy 2.5 already binds it; harmless when it does).
bind_layers(UDP, VXLAN, dport=8472)
conf.debug_dissector = False

TCP_KIND = TCPOptions[1]


def csum_status(stored, recomputed, zero_means_none=False):
    if zero_means_none and stored == 0:
        return "none"
    return "good" if stored == recomputed else "bad"


def ip_checksum(ip):
    c = ip.copy()
    c.remove_payload()
    del c.chksum
    return IP(bytes(c)).chksum


def l4_checksum(ip, l4):
    """Rebuilds [ip ... ] with the L4 checksum deleted; reads it back at its offset."""
    c = ip.copy()
    layer = c.getlayer(l4.__class__)
    del layer.chksum
    raw = bytes(c)
    off = ip.ihl * 4 + (6 if isinstance(l4, UDP) else 16)
    return int.from_bytes(raw[off:off + 2], "big")


def icmp_checksum(icmp):
    c = icmp.copy()
    del c.chksum
    raw = bytes(c)
    return int.from_bytes(raw[2:4], "big")


def payload_len(layer):
    """Bytes after this layer's header, not counting Ethernet padding."""
    n = len(bytes(layer.payload))
    pad = layer.getlayer(Padding)
    if pad is not None:
        n -= len(bytes(pad))
    return n


def ether(f, p, e):
    f[p + ".eth.src"] = e.src
    f[p + ".eth.dst"] = e.dst
    nxt = e.payload
    if isinstance(nxt, Dot1Q):
        f[p + ".vlan.id"] = int(nxt.vlan)
        f[p + ".vlan.pcp"] = int(nxt.prio)
        f[p + ".vlan.dei"] = bool(nxt.id)
        f[p + ".eth.type"] = int(nxt.type)
        return nxt.payload
    f[p + ".eth.type"] = int(e.type)
    return nxt


def ipv4(f, p, ip):
    f[p + ".ip.src"] = ip.src
    f[p + ".ip.dst"] = ip.dst
    f[p + ".ip.ttl"] = int(ip.ttl)
    f[p + ".ip.id"] = int(ip.id)
    f[p + ".ip.df"] = bool(int(ip.flags) & 0x2)
    f[p + ".ip.mf"] = bool(int(ip.flags) & 0x1)
    f[p + ".ip.dscp"] = int(ip.tos) >> 2
    f[p + ".ip.ecn"] = int(ip.tos) & 3
    f[p + ".ip.hdr_len"] = int(ip.ihl) * 4
    f[p + ".ip.len"] = int(ip.len)
    f[p + ".ip.proto"] = int(ip.proto)
    f[p + ".ip.csum"] = csum_status(ip.chksum, ip_checksum(ip))
    if ip.options:
        kinds = []
        for o in ip.options:
            k = bytes(o)[0] if isinstance(o, IPOption) else int(o)
            kinds.append(k)
            if k == 0:
                break
        f[p + ".ip.opts"] = ",".join(str(k) for k in kinds)


def udp(f, p, ip, u):
    f[p + ".udp.sport"] = int(u.sport)
    f[p + ".udp.dport"] = int(u.dport)
    f[p + ".udp.len"] = int(u.len)
    f[p + ".udp.csum"] = csum_status(u.chksum, l4_checksum(ip, u), zero_means_none=True)


def vxlan(f, v):
    flags = int(v.flags)
    f["vx.flags"] = flags
    f["vx.i"] = bool(flags & 0x08)
    f["vx.g"] = bool(flags & 0x80)
    if flags & 0x80:
        b1, b23 = int(v.gpflags), int(v.gpid)
    elif flags & 0x04:
        # scapy's GPE reading (see the module doc); reassemble the raw bytes 1-3.
        b1, b23 = int(v.reserved0) >> 8, ((int(v.reserved0) & 0xFF) << 8) | int(v.NextProtocol)
        f["vx.gpe_next_protocol"] = int(v.NextProtocol)
    else:
        b1, b23 = int(v.reserved1) >> 16, int(v.reserved1) & 0xFFFF
    f["vx.b1"] = b1
    f["vx.b23"] = b23
    f["vx.d"] = bool(b1 & 0x40)
    f["vx.a"] = bool(b1 & 0x08)
    f["vx.vni"] = int(v.vni)
    f["vx.rsvd8"] = int(v.reserved2)


def inner_l3(f, l3):
    if isinstance(l3, ARP):
        f["i.arp.op"] = int(l3.op)
        f["i.arp.sha"] = l3.hwsrc
        f["i.arp.spa"] = l3.psrc
        f["i.arp.tha"] = l3.hwdst
        f["i.arp.tpa"] = l3.pdst
        return
    if not isinstance(l3, IP):
        return
    ipv4(f, "i", l3)
    l4 = l3.payload
    if isinstance(l4, ICMP):
        f["i.icmp.type"] = int(l4.type)
        f["i.icmp.code"] = int(l4.code)
        f["i.icmp.ident"] = int(l4.id)
        f["i.icmp.seq"] = int(l4.seq)
        f["i.icmp.csum"] = csum_status(l4.chksum, icmp_checksum(l4))
    elif isinstance(l4, UDP):
        udp(f, "i", l3, l4)
    elif isinstance(l4, TCP):
        f["i.tcp.sport"] = int(l4.sport)
        f["i.tcp.dport"] = int(l4.dport)
        f["i.tcp.seq"] = int(l4.seq)
        f["i.tcp.ack"] = int(l4.ack)
        f["i.tcp.flags"] = int(l4.flags)
        f["i.tcp.win"] = int(l4.window)
        f["i.tcp.urg"] = int(l4.urgptr)
        f["i.tcp.hdr_len"] = int(l4.dataofs) * 4
        f["i.tcp.len"] = payload_len(l4)
        kinds, mss = [], None
        for name, val in l4.options:
            k = TCP_KIND.get(name, name) if isinstance(name, str) else int(name)
            kinds.append(int(k))
            if k == 0:
                break
            if k == 2 and mss is None:
                mss = int(val)
        if kinds:
            f["i.tcp.opts"] = ",".join(str(k) for k in kinds)
        if mss is not None:
            f["i.tcp.mss"] = mss
        f["i.tcp.csum"] = csum_status(l4.chksum, l4_checksum(l3, l4))


def dissect(raw):
    f = {"frame.len": len(raw)}
    pkt = Ether(raw)
    l3 = ether(f, "o", pkt)
    if isinstance(l3, IP):
        ipv4(f, "o", l3)
        u = l3.payload
        if isinstance(u, UDP):
            udp(f, "o", l3, u)
            v = u.payload
            if isinstance(v, VXLAN):
                vxlan(f, v)
                inner = v.payload
                if isinstance(inner, Ether):
                    inner_l3(f, ether(f, "i", inner))
    return f, pkt


def main():
    for i, (raw, _meta) in enumerate(RawPcapReader(sys.argv[1])):
        try:
            f, pkt = dissect(raw)
            layers = "/".join(l.__name__ for l in pkt.layers() if l not in (Raw, Padding))
            print(json.dumps({"index": i, "fields": dict(sorted(f.items())), "layers": layers}))
        except Exception as e:  # one bad frame must not hide the others
            print(json.dumps({"index": i, "error": "%s: %s" % (type(e).__name__, e)}))


if __name__ == "__main__":
    main()
