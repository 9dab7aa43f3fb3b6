// The overlay UDP socket: bound to an address and port, large buffers, recvmmsg/sendmmsg with a
// destination per message, UDP_SEGMENT (GSO) on send and UDP_GRO on receive where the kernel
// has them (probed at open). The datagram (UDP payload) lands at slot + headroom.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "flatnet.h"
#include "rx.h"
#include "scratch.h"

namespace flatnet {

int SetSockBuf(int fd, int forceOpt, int opt, int bytes);  // packet.cc

// Flag bits of udpOpen's `flags` argument (mirrored in src/io/native.ts).
constexpr int32_t kUdpGso = 1;
constexpr int32_t kUdpGro = 2;
constexpr int32_t kUdpReusePort = 4;
constexpr int32_t kUdpDontFragment = 8;
constexpr int32_t kUdpNoCheck = 16;  // SO_NO_CHECK: a zero UDP checksum (RFC 7348 5)

// A frame split into datagrams without GSO may not need more messages than one chunk holds.
constexpr int32_t kMaxSplitSegments = kChunk;

static bool HasSockOpt(int fd, int level, int opt) {
  int v = 0;
  socklen_t l = sizeof v;
  return getsockopt(fd, level, opt, &v, &l) == 0;
}

// udpProbe() -> { gso, gro }: what this kernel supports (UDP_SEGMENT since 4.18; UDP_GRO is
// trusted from 5.12, the first kernel where getsockopt(UDP_GRO) exists, as wireguard-go does).
static Napi::Value UdpProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket(AF_INET)", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("gso", HasSockOpt(fd, SOL_UDP, UDP_SEGMENT));
  out.Set("gro", HasSockOpt(fd, SOL_UDP, UDP_GRO));
  close(fd);
  return out;
}

// udpOpen(addr, port, flags, rcvbuf, sndbuf) -> { fd, port, gso, gro, rcvbuf, sndbuf }
// `addr` is an IPv4 address as a uint32 (host order); port 0 picks an ephemeral port.
static Napi::Value UdpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber() || !info[4].IsNumber()) {
    Napi::TypeError::New(env, "udpOpen(addr, port, flags, rcvbuf, sndbuf)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  uint32_t addr = info[0].As<Napi::Number>().Uint32Value();
  int32_t port = info[1].As<Napi::Number>().Int32Value();
  int32_t flags = info[2].As<Napi::Number>().Int32Value();
  int32_t rcvbuf = info[3].As<Napi::Number>().Int32Value();
  int32_t sndbuf = info[4].As<Napi::Number>().Int32Value();
  if (port < 0 || port > 65535) return ThrowErrno(env, "bind", EINVAL);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket(AF_INET)", errno);
  auto fail = [&](const char* syscall) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, syscall, e);
  };
  const int one = 1;
  if ((flags & kUdpReusePort) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    return fail("setsockopt(SO_REUSEPORT)");
  }
  if (flags & kUdpDontFragment) {
    const int pmtu = IP_PMTUDISC_DO;  // never fragment on the underlay (RFC 7348 4.3)
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) < 0) return fail("setsockopt(IP_MTU_DISCOVER)");
  }
  if ((flags & kUdpNoCheck) && setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) < 0) {
    return fail("setsockopt(SO_NO_CHECK)");
  }
  // The outer TOS of every datagram (an IP_TOS cmsg): its ECN bits combine into the inner
  // packet on decapsulation (RFC 6040), as the kernel's vxlan driver does.
  if (setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) < 0) return fail("setsockopt(IP_RECVTOS)");
  int rcv = SetSockBuf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  int snd = SetSockBuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(addr);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&sin), sizeof sin) < 0) return fail("bind");
  socklen_t sl = sizeof sin;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&sin), &sl) < 0) return fail("getsockname");

  const bool gso = (flags & kUdpGso) && HasSockOpt(fd, SOL_UDP, UDP_SEGMENT);
  bool gro = false;
  if ((flags & kUdpGro) && HasSockOpt(fd, SOL_UDP, UDP_GRO)) {
    gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  }

  TrackFd(env, fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("port", static_cast<int32_t>(ntohs(sin.sin_port)));
  out.Set("gso", gso);
  out.Set("gro", gro);
  out.Set("rcvbuf", rcv);
  out.Set("sndbuf", snd);
  return out;
}

// udpRecv(fd, arena, slotSize, headroom, meta, max) -> count | -errno
//
// Fills ADDR/PORT with the source, GSO_SIZE with the UDP_GRO segment size when the kernel
// coalesced several datagrams into one read (else 0), FLAGS TRUNCATED on MSG_TRUNC.
static napi_value UdpRecv(napi_env env, napi_callback_info info) {
  RxArgs a;
  if (!ParseRxArgs(env, info, false, &a)) return RetI32(env, -EINVAL);
  const int32_t fd = a.fd, slotSize = a.slotSize, headroom = a.headroom, max = a.max;
  uint8_t* const arena = a.arena;
  int32_t* const meta = a.meta;
  Scratch* s = GetScratch(env);
  const int32_t room = slotSize - headroom;
  int32_t n = 0;
  while (n < max) {
    const int vlen = max - n < kChunk ? max - n : kChunk;
    for (int k = 0; k < vlen; k++) {
      s->iov[k].iov_base = arena + (n + k) * slotSize + headroom;
      s->iov[k].iov_len = static_cast<size_t>(room);
      struct msghdr* h = &s->msgs[k].msg_hdr;
      h->msg_name = &s->addr[k].in;
      h->msg_namelen = sizeof(struct sockaddr_in);
      h->msg_iov = &s->iov[k];
      h->msg_iovlen = 1;
      h->msg_control = s->cmsg[k];
      h->msg_controllen = kCmsgSpace;
      h->msg_flags = 0;
    }
    int r = recvmmsg(fd, s->msgs, static_cast<unsigned>(vlen), MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n == 0) return RetI32(env, -errno);
      break;
    }
    for (int k = 0; k < r; k++) {
      struct msghdr* h = &s->msgs[k].msg_hdr;
      const int32_t i = n + k;
      SetRxMeta(meta, i, i * slotSize + headroom, s->msgs[k].msg_len, room, (h->msg_flags & MSG_TRUNC) != 0);
      int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
      m[kMetaAddr] = static_cast<int32_t>(ntohl(s->addr[k].in.sin_addr.s_addr));
      m[kMetaPort] = ntohs(s->addr[k].in.sin_port);
      for (struct cmsghdr* c = CMSG_FIRSTHDR(h); c != nullptr; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int gsoSize = 0;
          memcpy(&gsoSize, CMSG_DATA(c), sizeof gsoSize);
          m[kMetaGsoSize] = gsoSize;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
          m[kMetaTos] = *CMSG_DATA(c);  // GRO merges only datagrams of one TOS
        }
      }
    }
    n += r;
    if (r < vlen) break;
  }
  return RetI32(env, n);
}

// SetSendMsg fills message k of the chunk: to frame m's ADDR:PORT, from `iovlen` iovecs at `iov`,
// with a UDP_SEGMENT cmsg of `gsoSize` when it is not 0; frame index `frame`, `last` when it is
// the frame's last message.
static void SetSendMsg(Scratch* s, int k, const int32_t* m, struct iovec* iov, int iovlen, int32_t gsoSize, int32_t frame, bool last) {
  struct sockaddr_in* sin = &s->addr[k].in;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(m[kMetaPort]));
  sin->sin_addr.s_addr = htonl(static_cast<uint32_t>(m[kMetaAddr]));
  memset(sin->sin_zero, 0, sizeof sin->sin_zero);
  struct msghdr* h = &s->msgs[k].msg_hdr;
  h->msg_name = sin;
  h->msg_namelen = sizeof *sin;
  h->msg_iov = iov;
  h->msg_iovlen = static_cast<size_t>(iovlen);
  h->msg_flags = 0;
  if (gsoSize > 0) {
    struct cmsghdr* c = reinterpret_cast<struct cmsghdr*>(s->cmsg[k]);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t g16 = static_cast<uint16_t>(gsoSize);
    memcpy(CMSG_DATA(c), &g16, sizeof g16);
    h->msg_control = c;
    h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
  } else {
    h->msg_control = nullptr;
    h->msg_controllen = 0;
  }
  s->frame[k] = frame;
  s->last[k] = last;
}

// udpSend(fd, arena, meta, from, count, gso, res) -> accepted | -errno
//
// Frames [from, count): [START, END) to ADDR:PORT. A frame with GSO_SIZE > 0 holds several
// datagrams of GSO_SIZE bytes (the last may be shorter): with gso = 1 it goes out as one
// message with a UDP_SEGMENT cmsg, with gso = 0 as one message per datagram (same bytes on the
// wire). A scatter train (kFlagScatter, flatnet.h) is the same datagrams in pieces: datagram k
// is header k from [START, END) followed by payload k from AUX, gathered by the kernel from an
// iovec per piece (no copy here). EIO on a GSO message (the route's device cannot checksum: no GSO there) stops the
// batch with kResFlagGsoEio set and res[kResNext] at that frame, so the caller can disable GSO
// and resend from there.
static napi_value UdpSend(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd, from, count, gso;
  uint8_t* arena;
  size_t arenaLen, metaLen, resLen;
  int32_t *meta, *res;
  if (argc < 7 || !ArgI32(env, argv[0], &fd) || !ArgBuffer(env, argv[1], &arena, &arenaLen) ||
      !ArgI32Array(env, argv[2], &meta, &metaLen) || !ArgI32(env, argv[3], &from) ||
      !ArgI32(env, argv[4], &count) || !ArgI32(env, argv[5], &gso) ||
      !ArgI32Array(env, argv[6], &res, &resLen) || resLen < static_cast<size_t>(kResLen) ||
      from < 0 || count < from ||
      static_cast<int64_t>(count) * kMetaStride > static_cast<int64_t>(metaLen)) {
    return RetI32(env, -EINVAL);
  }
  ResReset(res);
  Scratch* s = GetScratch(env);
  int32_t sent = 0, i = from;
  bool stop = false;
  res[kResNext] = count;
  while (i < count && !stop) {
    // Phase 1: build one chunk of messages from whole frames.
    int nmsg = 0, nsg = 0;
    for (; i < count; i++) {
      const int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
      const int32_t start = m[kMetaStart], end = m[kMetaEnd], g = m[kMetaGsoSize];
      const int32_t len = end - start;
      if (!TxFrameOk(m, arenaLen, 0) || g < 0 || g > 65535) {
        res[kResErrors]++;
        res[kResErrno] = EINVAL;
        MarkTxFailed(meta, i, i + 1);
        continue;
      }
      if ((m[kMetaFlags] & kFlagScatter) != 0) {
        const int32_t hl = (m[kMetaFlags] >> kFlagScatterHdrShift) & 0xff;
        const int32_t pay = m[kMetaAux], payLen = m[kMetaTos];
        const int32_t n = hl > 0 ? len / hl : 0, seg = g - hl;
        if (hl <= 0 || n < 1 || n * hl != len || seg <= 0 || pay < 0 || payLen <= (n - 1) * seg || payLen > n * seg ||
            static_cast<size_t>(pay) + static_cast<size_t>(payLen) > arenaLen || 2 * n > kSgIov || (!gso && n > kMaxSplitSegments)) {
          res[kResErrors]++;
          res[kResErrno] = EINVAL;
          MarkTxFailed(meta, i, i + 1);
          continue;
        }
        const int msgs = gso ? 1 : n;
        if (nmsg + msgs > kChunk || nsg + 2 * n > kSgIov) break;  // the frame starts the next chunk
        for (int32_t k = 0; k < n; k++) {
          s->sg[nsg + 2 * k].iov_base = arena + start + k * hl;
          s->sg[nsg + 2 * k].iov_len = static_cast<size_t>(hl);
          s->sg[nsg + 2 * k + 1].iov_base = arena + pay + k * seg;
          s->sg[nsg + 2 * k + 1].iov_len = static_cast<size_t>(k == n - 1 ? payLen - k * seg : seg);
        }
        for (int j = 0; j < msgs; j++) {
          SetSendMsg(s, nmsg, m, &s->sg[nsg + (gso ? 0 : 2 * j)], gso ? 2 * n : 2, gso && n > 1 ? g : 0, i, j == msgs - 1);
          nmsg++;
        }
        nsg += 2 * n;
        continue;
      }
      const bool multi = g > 0 && len > g;
      const int32_t segs = multi && !gso ? (len + g - 1) / g : 1;
      if (segs > kMaxSplitSegments) {
        res[kResErrors]++;
        res[kResErrno] = EINVAL;
        MarkTxFailed(meta, i, i + 1);
        continue;
      }
      if (nmsg + segs > kChunk) break;  // the frame starts the next chunk
      for (int32_t j = 0; j < segs; j++) {
        const int32_t off = start + j * (multi && !gso ? g : 0);
        const int32_t segLen = multi && !gso ? (end - off < g ? end - off : g) : len;
        s->iov[nmsg].iov_base = arena + off;
        s->iov[nmsg].iov_len = static_cast<size_t>(segLen);
        SetSendMsg(s, nmsg, m, &s->iov[nmsg], 1, multi && gso ? g : 0, i, j == segs - 1);
        nmsg++;
      }
    }
    // Phase 2: send the chunk; a frame counts as sent when its last message went out.
    int k = 0;
    while (k < nmsg) {
      int r = sendmmsg(fd, s->msgs + k, static_cast<unsigned>(nmsg - k), MSG_DONTWAIT);
      if (r > 0) {
        for (int j = k; j < k + r; j++) {
          if (!s->last[j]) continue;
          const int32_t* m = meta + static_cast<int64_t>(s->frame[j]) * kMetaStride;
          res[kResBytes] += m[kMetaEnd] - m[kMetaStart] + ((m[kMetaFlags] & kFlagScatter) != 0 ? m[kMetaTos] : 0);
          sent++;
        }
        k += r;
        continue;
      }
      const int e = errno;
      if (r < 0 && e == EINTR) continue;
      res[kResErrno] = e;
      // Frames touched by messages [k, nmsg), counted once each.
      int32_t pending = 0;
      for (int j = k; j < nmsg; j++) if (j == k || s->frame[j] != s->frame[j - 1]) pending++;
      if (e == EIO && s->msgs[k].msg_hdr.msg_controllen != 0) {
        res[kResFlags] |= kResFlagGsoEio;
        res[kResNext] = s->frame[k];
        stop = true;
        break;
      }
      if (IsQueueFull(e)) {
        res[kResDropped] += pending + (count - i);
        MarkTxFailed(meta, s->frame[k], count);
        stop = true;
        break;
      }
      if (IsFatalFd(e)) {
        res[kResErrors] += pending + (count - i);
        MarkTxFailed(meta, s->frame[k], count);
        stop = true;
        break;
      }
      // This datagram was refused (EMSGSIZE, EINVAL, ENETUNREACH, EPERM...): the frame fails.
      res[kResErrors]++;
      const int32_t f = s->frame[k];
      MarkTxFailed(meta, f, f + 1);
      while (k < nmsg && s->frame[k] == f) k++;
    }
  }
  if (sent == 0 && res[kResErrno] != 0 && !(res[kResFlags] & kResFlagGsoEio)) return RetI32(env, -res[kResErrno]);
  return RetI32(env, sent);
}

// rawOpen(sndbuf) -> { fd, sndbuf }: an IPv4 raw socket for sending whole IPv4 packets that we
// built (IPPROTO_RAW implies IP_HDRINCL): the overlay's transmit side, so that the outer header
// on the wire is ours byte for byte (UDP source port from the flow hash, per-packet TOS/ECN and
// DF, the UDP checksum zero or computed). The kernel routes by the destination address, fills in
// the IPv4 checksum (and the ID when it is zero), and resolves the next hop. Send-only: a raw
// IPPROTO_RAW socket receives nothing. Sent with udpSend (gso 0; the port in ADDR/PORT unused).
static Napi::Value RawOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "rawOpen(sndbuf)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  int32_t sndbuf = info[0].As<Napi::Number>().Int32Value();
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return ThrowErrno(env, "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", errno);
  int snd = SetSockBuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
  TrackFd(env, fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("sndbuf", snd);
  return out;
}

void RegisterUdp(Napi::Env env, Napi::Object exports) {
  exports.Set("rawOpen", Napi::Function::New(env, RawOpen, "rawOpen"));
  exports.Set("udpProbe", Napi::Function::New(env, UdpProbe, "udpProbe"));
  exports.Set("udpOpen", Napi::Function::New(env, UdpOpen, "udpOpen"));
  SetRaw(env, exports, "udpRecv", UdpRecv);
  SetRaw(env, exports, "udpSend", UdpSend);
}

}  // namespace flatnet
