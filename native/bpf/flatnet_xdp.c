// flatnet's XDP program for AF_XDP ports (built by .ci/setup with clang -target bpf into
// native/build/bpf/flatnet_xdp.o; loaded and attached by native/src/xdp.cc through libbpf).
//
// One copy of the program (with its own maps) is attached to each interface flatnet runs an
// AF_XDP socket on. It redirects only what flatnet owns and passes everything else to the
// kernel (XDP_PASS), so the node's own traffic (ARP, etcd, SSH, ...) keeps working:
//
//   mode ALL    (a pod's veth host end): every frame goes to the socket;
//   mode VXLAN  (the underlay): IPv4 UDP to the VXLAN port, not a fragment, addressed to the
//               node's underlay address, from an address in `peers` (filled by the daemon).
// In both, a frame longer than `max_len` (a UMEM chunk's room) stays with the kernel.
//
// bpf_redirect_map's last argument is the action when no socket is in `xsks` for the queue:
// XDP_PASS, so a closed socket (the daemon gone) leaves the interface to the kernel.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FLATNET_MODE_ALL 0
#define FLATNET_MODE_VXLAN 1

// Mirrored in native/src/xdp.cc (struct XdpConfig).
struct flatnet_config {
  __u32 mode;
  __u32 udp_port;  // network byte order, in the low 16 bits
  __u32 local_ip;  // network byte order; 0 = any
  __u32 max_len;   // longer frames go to the kernel (they do not fit a UMEM chunk); 0 = no limit
};

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);   // peer underlay IPv4, network byte order
  __type(value, __u32); // unused (1)
} peers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct flatnet_config);
} config SEC(".maps");

SEC("xdp")
int flatnet_xdp(struct xdp_md *ctx) {
  __u32 zero = 0;
  struct flatnet_config *c = bpf_map_lookup_elem(&config, &zero);
  if (!c) return XDP_PASS;
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  // A frame longer than a UMEM chunk (in generic mode: a GSO super-frame, e.g. a UDP-GSO train
  // that a peer sent whole) is the kernel's: its socket path takes it in one piece.
  if (c->max_len != 0 && end - data > c->max_len) return XDP_PASS;
  if (c->mode == FLATNET_MODE_ALL) return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);

  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
  // Fragments (MF set or an offset) are the kernel's to reassemble.
  if (ip->frag_off & bpf_htons(0x3fff)) return XDP_PASS;
  if (c->local_ip != 0 && ip->daddr != c->local_ip) return XDP_PASS;
  struct udphdr *udp = (void *)ip + ip->ihl * 4;
  if ((void *)(udp + 1) > end || udp->dest != (__u16)c->udp_port) return XDP_PASS;
  __u32 src = ip->saddr;
  if (!bpf_map_lookup_elem(&peers, &src)) return XDP_PASS;
  return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
