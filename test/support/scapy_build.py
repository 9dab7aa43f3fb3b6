#!/usr/bin/python3
"""Random valid VXLAN frames built by scapy, for the reverse direction of the differential test.

Usage: /usr/bin/python3 scapy_build.py SEED COUNT OUT.pcap OUT.json
Writes COUNT frames to OUT.pcap and, to OUT.json, a list with one object per frame:
{"fields": {...intended values...}, "dport": 4789|8472, "gbp": bool, "desc": "..."}.

The intended values are the arguments handed to scapy's constructors, plus lengths worked out
here by arithmetic; scapy fills the checksums, which must therefore come out 'good' (or 'none'
where a zero UDP checksum was asked for). Field keys are the flat schema of test/support/gen.ts.
Deterministic for a seed (Python's `random.Random`).
"""

import json
import random
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw, bind_layers
from scapy.utils import RawPcapWriter

bind_layers(UDP, VXLAN, dport=8472)

# Ports some dissector decodes as VXLAN (see VXLAN_LIKE_PORTS in gen.ts): never used inside.
VXLAN_LIKE_PORTS = {4789, 4790, 6633, 8472, 48879}


def mac(r, multicast=False):
    first = (r.randrange(256) & 0xFC) | (0x01 if multicast else 0x02)
    return ":".join("%02x" % b for b in [first] + [r.randrange(256) for _ in range(5)])


def underlay_ip(r):
    return "198.51.100.%d" % r.randint(1, 254)


def pod_ip(r):
    return "10.244.%d.%d" % (r.randrange(256), r.randrange(256))


def inner_port(r):
    while True:
        p = r.choice([r.randint(1, 1023), r.randint(1024, 65535)])
        if p not in VXLAN_LIKE_PORTS:
            return p


def ip_options(r):
    """Returns (scapy options, option bytes before padding, kinds as the dissectors list them)."""
    opts, raw_len, kinds = [], 0, []
    for _ in range(r.randint(1, 3)):
        k = r.choice(["nop", "ra", "rr"])
        if k == "nop":
            o, n, kind = IPOption_NOP(), 1, 1
        elif k == "ra":
            o, n, kind = IPOption_Router_Alert(), 4, 148
        else:
            slots = r.randint(1, 4)
            o, n, kind = IPOption_RR(routers=["0.0.0.0"] * slots), 3 + 4 * slots, 7
        if raw_len + n > 40:
            break
        opts.append(o)
        raw_len += n
        kinds.append(kind)
    if raw_len % 4:
        kinds.append(0)  # scapy pads with zero bytes: an end-of-list, then zeros
    return opts, raw_len + (-raw_len % 4), kinds


def ones_mod(data, acc=0):
    """Naive RFC 1071 sum of `data` plus `acc`, reduced mod 0xffff (0 here means "sums to zero")."""
    s = acc
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | (data[i + 1] if i + 1 < len(data) else 0)
    return s % 0xFFFF


def pseudo(src, dst, proto, length):
    a = [int(x) for x in src.split(".")] + [int(x) for x in dst.split(".")]
    return sum((a[i] << 8) | a[i + 1] for i in range(0, 8, 2)) + proto + length


def steer(word, sum_mod):
    """The value for a 16-bit word (at an even offset) that makes the region sum to zero."""
    return (word - sum_mod) % 0xFFFF


def tcp_options(r):
    parts = [p for p in ["mss", "ws", "sackok", "ts", "nop"] if r.random() < 0.5] or ["mss"]
    r.shuffle(parts)
    opts, n, kinds, mss = [], 0, [], None
    for p in parts:
        if p == "mss":
            mss = r.choice([536, 1410, 1460, r.randrange(65536)])
            opts.append(("MSS", mss)); n += 4; kinds.append(2)
        elif p == "ws":
            opts.append(("WScale", r.randint(0, 14))); n += 3; kinds.append(3)
        elif p == "sackok":
            opts.append(("SAckOK", b"")); n += 2; kinds.append(4)
        elif p == "ts":
            opts.append(("Timestamp", (r.randrange(2 ** 32), r.randrange(2 ** 32)))); n += 10; kinds.append(8)
        else:
            opts.append(("NOP", None)); n += 1; kinds.append(1)
    if n % 4:
        kinds.append(0)
    return opts, n + (-n % 4), kinds, mss


def frame(r):
    f = {}
    ones = []  # UDP datagrams steered so that their checksum computes to zero (sent as 0xffff)
    kind = r.choice(["arp", "icmp", "udp", "udp", "tcp", "tcp"])
    vlan = r.random() < 0.2

    # inner Ethernet
    smac = mac(r)
    dmac = "ff:ff:ff:ff:ff:ff" if kind == "arp" and r.random() < 0.5 else (mac(r, True) if r.random() < 0.1 else mac(r))
    etype = 0x0806 if kind == "arp" else 0x0800
    inner = Ether(src=smac, dst=dmac)
    f.update({"i.eth.src": smac, "i.eth.dst": dmac, "i.eth.type": etype})
    eth_len = 14
    if vlan:
        vid, pcp, dei = r.choice([1, 4094, r.randint(1, 4094)]), r.randint(0, 7), r.random() < 0.2
        inner = inner / Dot1Q(vlan=vid, prio=pcp, id=int(dei))
        f.update({"i.vlan.id": vid, "i.vlan.pcp": pcp, "i.vlan.dei": dei})
        eth_len = 18

    if kind == "arp":
        request = dmac == "ff:ff:ff:ff:ff:ff"
        op = 1 if request else r.choice([1, 2])
        spa, tpa = pod_ip(r), pod_ip(r)
        tha = "00:00:00:00:00:00" if request else dmac
        inner = inner / ARP(op=op, hwsrc=smac, psrc=spa, hwdst=tha, pdst=tpa)
        f.update({"i.arp.op": op, "i.arp.sha": smac, "i.arp.spa": spa, "i.arp.tha": tha, "i.arp.tpa": tpa})
        inner_len = eth_len + 28
    else:
        src, dst = pod_ip(r), pod_ip(r)
        dscp, ecn, ident = r.choice([0, r.randint(0, 63)]), r.randint(0, 3), r.randrange(65536)
        ttl, df = r.choice([64, 255, r.randint(1, 255)]), r.random() < 0.5
        opts, opt_len, opt_kinds = ip_options(r) if r.random() < 0.25 else ([], 0, [])
        payload = bytes(r.randrange(256) for _ in range(r.randint(0, 1400) if r.random() < 0.3 else r.randint(0, 64)))
        proto = {"icmp": 1, "udp": 17, "tcp": 6}[kind]
        ip = IP(src=src, dst=dst, tos=(dscp << 2) | ecn, id=ident, ttl=ttl, flags="DF" if df else 0, options=opts)
        if kind == "icmp":
            typ, iid, seq = r.choice([0, 8]), r.randrange(65536), r.randrange(65536)
            l4 = ICMP(type=typ, code=0, id=iid, seq=seq)
            l4_len = 8 + len(payload)
            f.update({"i.icmp.type": typ, "i.icmp.code": 0, "i.icmp.ident": iid, "i.icmp.seq": seq, "i.icmp.csum": "good"})
        elif kind == "udp":
            sport, dport = inner_port(r), inner_port(r)
            zero = r.random() < 0.15
            if not zero and len(payload) >= 2 and r.random() < 0.1:
                seg = bytes(UDP(sport=sport, dport=dport, len=8 + len(payload), chksum=0) / Raw(payload))
                w = steer(int.from_bytes(payload[:2], "big"), ones_mod(seg, pseudo(src, dst, 17, len(seg))))
                payload = w.to_bytes(2, "big") + payload[2:]
                ones.append("inner")
            l4 = UDP(sport=sport, dport=dport, chksum=0) if zero else UDP(sport=sport, dport=dport)
            l4_len = 8 + len(payload)
            f.update({"i.udp.sport": sport, "i.udp.dport": dport, "i.udp.len": l4_len,
                      "i.udp.csum": "none" if zero else "good"})
        else:
            sport, dport = inner_port(r), inner_port(r)
            seq, ack = r.randrange(2 ** 32), r.randrange(2 ** 32)
            flags = r.choice([0x002, 0x012, 0x010, 0x018, 0x011, r.randrange(0x200)])
            win = r.randrange(65536)
            urg = r.randrange(65536) if flags & 0x020 else 0
            topts, topt_len, tkinds, mss = tcp_options(r) if r.random() < 0.5 else ([], 0, [], None)
            l4 = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win, urgptr=urg, options=topts)
            l4_len = 20 + topt_len + len(payload)
            f.update({"i.tcp.sport": sport, "i.tcp.dport": dport, "i.tcp.seq": seq, "i.tcp.ack": ack,
                      "i.tcp.flags": flags, "i.tcp.win": win, "i.tcp.urg": urg, "i.tcp.hdr_len": 20 + topt_len,
                      "i.tcp.len": len(payload), "i.tcp.csum": "good"})
            if tkinds:
                f["i.tcp.opts"] = ",".join(str(k) for k in tkinds)
            if mss is not None:
                f["i.tcp.mss"] = mss
        inner = inner / ip / l4 / Raw(payload)
        ip_len = 20 + opt_len + l4_len
        f.update({"i.ip.src": src, "i.ip.dst": dst, "i.ip.ttl": ttl, "i.ip.id": ident, "i.ip.df": df, "i.ip.mf": False,
                  "i.ip.dscp": dscp, "i.ip.ecn": ecn, "i.ip.hdr_len": 20 + opt_len, "i.ip.len": ip_len,
                  "i.ip.proto": proto, "i.ip.csum": "good"})
        if opt_kinds:
            f["i.ip.opts"] = ",".join(str(k) for k in opt_kinds)
        inner_len = eth_len + ip_len

    # VXLAN
    vni = r.choice([0, 1, 0xFFFFFF, r.randrange(256), r.randrange(1 << 24)])
    gbp = r.random() < 0.2
    if gbp:
        d, a, gpid = r.random() < 0.5, r.random() < 0.5, r.randrange(65536)
        b1 = (0x40 if d else 0) | (0x08 if a else 0)
        vx = VXLAN(flags=0x88, gpflags=b1, gpid=gpid, vni=vni)
        b23 = gpid
    else:
        vx = VXLAN(flags=0x08, vni=vni)
        b1, b23 = 0, 0
    f.update({"vx.flags": 0x88 if gbp else 0x08, "vx.i": True, "vx.g": gbp, "vx.d": bool(b1 & 0x40),
              "vx.a": bool(b1 & 0x08), "vx.b1": b1, "vx.b23": b23, "vx.vni": vni, "vx.rsvd8": 0})

    # outer
    osrc, odst = mac(r), mac(r)
    isrc, idst = underlay_ip(r), underlay_ip(r)
    odscp, oecn, oid, ottl, odf = r.randint(0, 63), r.randint(0, 3), r.randrange(65536), r.randint(1, 255), r.random() < 0.5
    sport, dport = r.randint(1024, 65535), r.choice([4789, 8472])
    csum = r.random() < 0.5
    udp = UDP(sport=sport, dport=dport) if csum else UDP(sport=sport, dport=dport, chksum=0)
    outer = Ether(src=osrc, dst=odst) / IP(src=isrc, dst=idst, tos=(odscp << 2) | oecn, id=oid, ttl=ottl,
                                            flags="DF" if odf else 0) / udp
    # The inner frame goes in as raw bytes: scapy would otherwise append a Padding layer after
    # the *outer* frame, outside the outer lengths. A short frame is sometimes padded to the
    # Ethernet minimum of 60 bytes with zeros.
    inner_raw = bytearray(bytes(inner))
    pad = 60 - inner_len if inner_len < 60 and r.random() < 0.3 else 0
    inner_raw += bytes(pad)
    udp_len = 8 + 8 + inner_len + pad
    if csum and r.random() < 0.05:
        # Steer the outer sum to zero through the inner destination MAC's last two bytes.
        raw = bytearray(bytes(outer / vx / Raw(bytes(inner_raw))))
        raw[40:42] = b"\0\0"
        w = steer(int.from_bytes(raw[54:56], "big"), ones_mod(raw[34:], pseudo(isrc, idst, 17, udp_len)))
        inner_raw[4:6] = w.to_bytes(2, "big")
        f["i.eth.dst"] = dmac[:12] + "%02x:%02x" % (w >> 8, w & 0xFF)
        ones.insert(0, "outer")
    pkt = outer / vx / Raw(bytes(inner_raw))
    f.update({"frame.len": 14 + 20 + udp_len,
              "o.eth.src": osrc, "o.eth.dst": odst, "o.eth.type": 0x0800,
              "o.ip.src": isrc, "o.ip.dst": idst, "o.ip.ttl": ottl, "o.ip.id": oid, "o.ip.df": odf, "o.ip.mf": False,
              "o.ip.dscp": odscp, "o.ip.ecn": oecn, "o.ip.hdr_len": 20, "o.ip.len": 20 + udp_len, "o.ip.proto": 17,
              "o.ip.csum": "good",
              "o.udp.sport": sport, "o.udp.dport": dport, "o.udp.len": udp_len, "o.udp.csum": "good" if csum else "none"})
    desc = "%s%s vni=%d dport=%d udpcsum=%s%s" % (kind, "+vlan" if vlan else "", vni, dport, "on" if csum else "off",
                                                  " gbp" if gbp else "")
    desc += "".join(" %s-csum-ffff" % w for w in ones) + (" pad=%d" % pad if pad else "")
    return pkt, {"fields": dict(sorted(f.items())), "dport": dport, "gbp": gbp, "allOnesUdp": ones, "desc": desc}


def main():
    seed, count, pcap_path, json_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    r = random.Random(seed)
    pkts, specs = [], []
    for _ in range(count):
        p, s = frame(r)
        raw = bytes(p)
        # Lengths above are arithmetic on what was asked for: a disagreement here is a bug in
        # this script, not in the code under test, so it is reported as such.
        if len(raw) != s["fields"]["frame.len"]:
            raise SystemExit("scapy_build: frame %d is %d bytes, expected %d (%s)"
                             % (len(pkts), len(raw), s["fields"]["frame.len"], s["desc"]))
        ihl = (raw[14] & 0x0F) * 4
        inner_udp = 14 + 20 + 16 + (18 if s["fields"].get("i.vlan.id") is not None else 14) + s["fields"].get("i.ip.hdr_len", 0)
        for w in s["allOnesUdp"]:
            off = 14 + ihl + 6 if w == "outer" else inner_udp + 6
            if raw[off:off + 2] != b"\xff\xff":
                raise SystemExit("scapy_build: frame %d: %s UDP checksum steered to zero reads %s, not ffff (%s)"
                                 % (len(pkts), w, raw[off:off + 2].hex(), s["desc"]))
        pkts.append(raw)
        specs.append(s)
    w = RawPcapWriter(pcap_path, linktype=1)
    w.write_header(None)
    for i, raw in enumerate(pkts):
        w.write_packet(raw, sec=1700000000 + i, usec=0)
    w.close()
    with open(json_path, "w") as fh:
        json.dump(specs, fh)


if __name__ == "__main__":
    main()
