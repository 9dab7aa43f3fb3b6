// AF_PACKET sockets on an interface (the host end of a pod's veth): SOCK_RAW, all protocols,
// bound to one ifindex, our own (and the host's) outgoing frames ignored, optionally with
// PACKET_VNET_HDR and PACKET_QDISC_BYPASS. Batched with recvmmsg/sendmmsg.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "flatnet.h"
#include "rx.h"
#include "scratch.h"

namespace flatnet {

// Flag bits of packetOpen's `flags` argument (mirrored in src/io/native.ts).
constexpr int32_t kPktVnetHdr = 1;
constexpr int32_t kPktQdiscBypass = 2;
constexpr int32_t kPktPromisc = 4;
constexpr int32_t kPktForceBpfOutgoing = 8;  // use the BPF fallback even if the sockopt exists

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

// Sets a socket buffer size, with the *FORCE variant first (CAP_NET_ADMIN lifts rmem_max),
// and returns what the kernel reports back (it doubles the value for bookkeeping).
int SetSockBuf(int fd, int forceOpt, int opt, int bytes) {
  if (bytes > 0 && setsockopt(fd, SOL_SOCKET, forceOpt, &bytes, sizeof bytes) < 0) {
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
  int v = 0;
  socklen_t l = sizeof v;
  getsockopt(fd, SOL_SOCKET, opt, &v, &l);
  return v;
}

// Classic BPF: accept everything except PACKET_OUTGOING (for kernels before 4.20, which lack
// PACKET_IGNORE_OUTGOING). Runs in the kernel; nothing is parsed here.
static int AttachNoOutgoingFilter(int fd) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
      BPF_STMT(BPF_RET | BPF_K, 0x40000),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

// packetOpen(ifindex, flags, rcvbuf, sndbuf)
//   -> { fd, ignoreOutgoing: 'sockopt' | 'bpf', qdiscBypass, rcvbuf, sndbuf }
static Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    Napi::TypeError::New(env, "packetOpen(ifindex, flags, rcvbuf, sndbuf)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  int32_t ifindex = info[0].As<Napi::Number>().Int32Value();
  int32_t flags = info[1].As<Napi::Number>().Int32Value();
  int32_t rcvbuf = info[2].As<Napi::Number>().Int32Value();
  int32_t sndbuf = info[3].As<Napi::Number>().Int32Value();
  // ifindex 0 would bind to every interface: never what a port wants.
  if (ifindex <= 0) return ThrowErrno(env, "bind(AF_PACKET)", ENODEV);

  // Protocol 0: the socket receives nothing until bind() names the interface.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket(AF_PACKET)", errno);
  auto fail = [&](const char* syscall) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, syscall, e);
  };

  const int one = 1;
  const char* ignoreOutgoing = "sockopt";
  if ((flags & kPktForceBpfOutgoing) ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) {
    if (AttachNoOutgoingFilter(fd) < 0) return fail("setsockopt(SO_ATTACH_FILTER)");
    ignoreOutgoing = "bpf";
  }
  // VLAN tags are taken off by the receive path before packet sockets see the frame; the tag
  // comes back in PACKET_AUXDATA and is put back into the frame on receive (as libpcap does).
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) return fail("setsockopt(PACKET_AUXDATA)");
  if ((flags & kPktVnetHdr) && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) {
    return fail("setsockopt(PACKET_VNET_HDR)");
  }
  bool bypass = false;
  if (flags & kPktQdiscBypass) {
    bypass = setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) == 0;
  }
  int rcv = SetSockBuf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  int snd = SetSockBuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);

  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) return fail("bind(AF_PACKET)");

  if (flags & kPktPromisc) {
    // Dropped by the kernel when the socket closes (the membership is per socket).
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
      return fail("setsockopt(PACKET_ADD_MEMBERSHIP)");
    }
  }

  TrackFd(env, fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("ignoreOutgoing", ignoreOutgoing);
  out.Set("qdiscBypass", bypass);
  out.Set("rcvbuf", rcv);
  out.Set("sndbuf", snd);
  return out;
}

// Puts a VLAN tag that the kernel moved into PACKET_AUXDATA back after the MAC addresses.
// `p` is the frame, `copied` the bytes present, `room` the window; returns the bytes present
// afterwards (the original length grows by 4 either way).
static int32_t ReinsertVlan(uint8_t* p, int32_t copied, int32_t room, const struct tpacket_auxdata* aux) {
  if (copied < 12) return copied;
  const uint16_t tpid = (aux->tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux->tp_vlan_tpid : ETH_P_8021Q;
  int32_t keep = copied - 12;
  if (12 + 4 + keep > room) keep = room - 16;
  if (keep > 0) memmove(p + 16, p + 12, static_cast<size_t>(keep));
  if (room >= 16) {
    p[12] = static_cast<uint8_t>(tpid >> 8);
    p[13] = static_cast<uint8_t>(tpid);
    p[14] = static_cast<uint8_t>(aux->tp_vlan_tci >> 8);
    p[15] = static_cast<uint8_t>(aux->tp_vlan_tci);
    return 16 + (keep > 0 ? keep : 0);
  }
  return copied;
}

// The virtio-net header's offsets count from the frame start; after a tag went back in, move
// csum_start and hdr_len by the tag's length, as TAP reads do (virtio_net_hdr_from_skb's
// vlan_hlen). Little-endian u16 fields: flags(0) gso_type(1) hdr_len(2) gso_size(4)
// csum_start(6) csum_offset(8).
static void ShiftVnetOffsets(uint8_t* h, int by) {
  constexpr uint8_t kNeedsCsum = 1;
  auto add16 = [&](int off) {
    uint16_t v = static_cast<uint16_t>(h[off] | (h[off + 1] << 8));
    if (v == 0) return;
    v = static_cast<uint16_t>(v + by);
    h[off] = static_cast<uint8_t>(v);
    h[off + 1] = static_cast<uint8_t>(v >> 8);
  };
  if (h[0] & kNeedsCsum) add16(6);
  add16(2);
}

// packetRecv(fd, arena, slotSize, headroom, meta, max, vnetHdrLen) -> count | -errno
static napi_value PacketRecv(napi_env env, napi_callback_info info) {
  RxArgs a;
  if (!ParseRxArgs(env, info, true, &a)) return RetI32(env, -EINVAL);
  const int32_t fd = a.fd, slotSize = a.slotSize, headroom = a.headroom, max = a.max, vnetHdrLen = a.vnetHdrLen;
  uint8_t* const arena = a.arena;
  int32_t* const meta = a.meta;
  Scratch* s = GetScratch(env);
  const int32_t room = slotSize - headroom;
  int32_t n = 0;  // frames delivered
  while (n < max) {
    const int vlen = max - n < kChunk ? max - n : kChunk;
    for (int k = 0; k < vlen; k++) {
      const int32_t start = (n + k) * slotSize + headroom;
      s->iov[k].iov_base = arena + start - vnetHdrLen;
      s->iov[k].iov_len = static_cast<size_t>(room + vnetHdrLen);
      struct msghdr* h = &s->msgs[k].msg_hdr;
      h->msg_name = &s->addr[k].ll;
      h->msg_namelen = sizeof(struct sockaddr_ll);
      h->msg_iov = &s->iov[k];
      h->msg_iovlen = 1;
      h->msg_control = s->cmsg[k];
      h->msg_controllen = kCmsgSpace;
      h->msg_flags = 0;
    }
    int r = recvmmsg(fd, s->msgs, static_cast<unsigned>(vlen), MSG_DONTWAIT | MSG_TRUNC, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n == 0) return RetI32(env, -errno);
      break;
    }
    int32_t out = n;
    for (int k = 0; k < r; k++) {
      struct msghdr* h = &s->msgs[k].msg_hdr;
      // Belt and braces: the sockopt or BPF filter already drops our own transmissions.
      if (s->addr[k].ll.sll_pkttype == PACKET_OUTGOING) continue;
      const int64_t total = static_cast<int64_t>(s->msgs[k].msg_len) - vnetHdrLen;
      if (total < 0) continue;
      const int32_t src = (n + k) * slotSize + headroom;
      const int32_t dst = out * slotSize + headroom;
      int64_t len = total;
      int32_t copied = static_cast<int32_t>(total > room ? room : total);
      if (src != dst) {
        memmove(arena + dst - vnetHdrLen, arena + src - vnetHdrLen, static_cast<size_t>(copied + vnetHdrLen));
      }
      for (struct cmsghdr* c = CMSG_FIRSTHDR(h); c != nullptr; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof aux);
        if (aux.tp_vlan_tci != 0 || (aux.tp_status & TP_STATUS_VLAN_VALID)) {
          copied = ReinsertVlan(arena + dst, copied, room, &aux);
          len += 4;
          if (vnetHdrLen >= 10) ShiftVnetOffsets(arena + dst - vnetHdrLen, 4);
        }
      }
      SetRxMeta(meta, out, dst, len, room, (h->msg_flags & MSG_TRUNC) != 0 || len > copied);
      out++;
    }
    const bool drained = r < vlen;
    n = out;
    if (drained) break;
  }
  return RetI32(env, n);
}

// packetSend(fd, arena, meta, count, vnetHdrLen, res) -> accepted | -errno
//
// sendmmsg on the bound socket (no address: the kernel uses the bound ifindex). A message the
// kernel rejects is skipped and counted; EAGAIN/ENOBUFS drops the rest of the batch.
static napi_value PacketSend(napi_env env, napi_callback_info info) {
  TxArgs a;
  if (!ParseTxArgs(env, info, &a)) return RetI32(env, -EINVAL);
  const int32_t fd = a.fd, count = a.count, vnetHdrLen = a.vnetHdrLen;
  uint8_t* const arena = a.arena;
  const size_t arenaLen = a.arenaLen;
  int32_t* const meta = a.meta;
  int32_t* const res = a.res;
  ResReset(res);
  Scratch* s = GetScratch(env);
  int32_t sent = 0, i = 0;
  bool stop = false;
  while (i < count && !stop) {
    int nmsg = 0;
    for (; i < count && nmsg < kChunk; i++) {
      const int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
      if (!TxFrameOk(m, arenaLen, vnetHdrLen)) {
        res[kResErrors]++;
        res[kResErrno] = EINVAL;
        MarkTxFailed(meta, i, i + 1);
        continue;
      }
      const int32_t off = m[kMetaStart] - vnetHdrLen;
      s->iov[nmsg].iov_base = arena + off;
      s->iov[nmsg].iov_len = static_cast<size_t>(m[kMetaEnd] - off);
      struct msghdr* h = &s->msgs[nmsg].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_iov = &s->iov[nmsg];
      h->msg_iovlen = 1;
      s->frame[nmsg] = i;
      nmsg++;
    }
    int k = 0;
    while (k < nmsg) {
      int r = sendmmsg(fd, s->msgs + k, static_cast<unsigned>(nmsg - k), MSG_DONTWAIT);
      if (r > 0) {
        for (int j = k; j < k + r; j++) {
          const int32_t* m = meta + static_cast<int64_t>(s->frame[j]) * kMetaStride;
          res[kResBytes] += m[kMetaEnd] - m[kMetaStart];
        }
        sent += r;
        k += r;
        continue;
      }
      const int e = errno;
      if (r < 0 && e == EINTR) continue;
      res[kResErrno] = e;
      if (IsQueueFull(e)) {
        res[kResDropped] += (nmsg - k) + (count - i);
        MarkTxFailed(meta, s->frame[k], count);
        stop = true;
        break;
      }
      if (IsFatalFd(e)) {
        res[kResErrors] += (nmsg - k) + (count - i);
        MarkTxFailed(meta, s->frame[k], count);
        stop = true;
        break;
      }
      res[kResErrors]++;  // this message was refused (EMSGSIZE, ENETDOWN, ...): skip it
      MarkTxFailed(meta, s->frame[k], s->frame[k] + 1);
      k++;
    }
  }
  res[kResNext] = stop ? count : i;
  if (sent == 0 && res[kResErrno] != 0) return RetI32(env, -res[kResErrno]);
  return RetI32(env, sent);
}

void RegisterPacket(Napi::Env env, Napi::Object exports) {
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen, "packetOpen"));
  SetRaw(env, exports, "packetRecv", PacketRecv);
  SetRaw(env, exports, "packetSend", PacketSend);
}

}  // namespace flatnet
