// TAP devices: open /dev/net/tun with IFF_TAP | IFF_NO_PI (optionally IFF_VNET_HDR and
// IFF_MULTI_QUEUE), non-blocking; offloads probed with TUNSETOFFLOAD; batched read/write.
//
// A TAP fd is a character device: there is no recvmmsg, so one addon call drains up to `max`
// frames with one read() each until EAGAIN (what OVS does with readv, and the measured design
// in research/performance.md 3.2).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "flatnet.h"
#include "rx.h"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef TUN_F_UDP_TUNNEL_GSO
#define TUN_F_UDP_TUNNEL_GSO 0x080
#endif
#ifndef TUN_F_UDP_TUNNEL_GSO_CSUM
#define TUN_F_UDP_TUNNEL_GSO_CSUM 0x100
#endif

namespace flatnet {

// Flag bits of tapOpen's `flags` argument (mirrored in src/io/native.ts).
constexpr int32_t kTapVnetHdr = 1;
constexpr int32_t kTapMultiQueue = 2;

// Tries `want`, then smaller sets, and returns what the kernel accepted (-errno on a failure
// other than EINVAL). Kernels before 6.2 refuse USO, before 6.17 UDP-tunnel GSO; a TAP without
// offloads accepts 0.
static int ProbeOffload(int fd, unsigned want) {
  const unsigned tunnel = TUN_F_UDP_TUNNEL_GSO | TUN_F_UDP_TUNNEL_GSO_CSUM;
  const unsigned steps[] = {
      want,
      want & ~tunnel,
      want & ~static_cast<unsigned>(tunnel | TUN_F_USO4 | TUN_F_USO6),
      want & ~static_cast<unsigned>(tunnel | TUN_F_USO4 | TUN_F_USO6 | TUN_F_TSO_ECN),
      want & static_cast<unsigned>(TUN_F_CSUM),
      0,
  };
  for (unsigned s : steps) {
    if (ioctl(fd, TUNSETOFFLOAD, s) == 0) return static_cast<int>(s);
    if (errno != EINVAL) return -errno;
  }
  return -EINVAL;
}

// tapOpen(name, flags, vnetHdrSz, offload) -> { fd, name, vnetHdrLen, offload }
static Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    Napi::TypeError::New(env, "tapOpen(name, flags, vnetHdrSz, offload)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int32_t flags = info[1].As<Napi::Number>().Int32Value();
  int32_t vnetHdrSz = info[2].As<Napi::Number>().Int32Value();
  uint32_t offload = info[3].As<Napi::Number>().Uint32Value();
  if (name.size() >= IFNAMSIZ) return ThrowErrno(env, "ioctl(TUNSETIFF)", EINVAL);

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open(/dev/net/tun)", errno);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (flags & kTapVnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & kTapMultiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, "ioctl(TUNSETIFF)", e);
  }

  int32_t vnetHdrLen = 0;
  int accepted = 0;
  if (flags & kTapVnetHdr) {
    int sz = vnetHdrSz;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int e = errno;
      close(fd);
      return ThrowErrno(env, "ioctl(TUNSETVNETHDRSZ)", e);
    }
    vnetHdrLen = sz;
    accepted = ProbeOffload(fd, offload);
    if (accepted < 0) {
      close(fd);
      return ThrowErrno(env, "ioctl(TUNSETOFFLOAD)", -accepted);
    }
  }

  TrackFd(env, fd);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("name", Napi::String::New(env, ifr.ifr_name));
  out.Set("vnetHdrLen", vnetHdrLen);
  out.Set("offload", accepted);
  return out;
}

// tapRead(fd, arena, slotSize, headroom, meta, max, vnetHdrLen) -> count | -errno
//
// Frame i lands at slot i + headroom; with a vnet header the read starts vnetHdrLen earlier so
// the header sits at [START - vnetHdrLen, START). A frame longer than the slot is cut and
// flagged TRUNCATED.
static napi_value TapRead(napi_env env, napi_callback_info info) {
  RxArgs a;
  if (!ParseRxArgs(env, info, true, &a)) return RetI32(env, -EINVAL);
  const int32_t fd = a.fd, slotSize = a.slotSize, headroom = a.headroom, max = a.max, vnetHdrLen = a.vnetHdrLen;
  uint8_t* const arena = a.arena;
  int32_t* const meta = a.meta;
  const int32_t room = slotSize - headroom;
  // read() on a TAP returns min(frame, buffer), so a cut frame is only visible if the buffer is
  // longer than the room: one extra byte, which lands in the first byte of the next slot (not
  // filled yet, so nothing is lost). The batch's last slot has no next one; it gets a second
  // iovec instead (measured: a two-segment readv on a TAP costs ~35% more than read()).
  uint8_t overflow[1];
  struct iovec iov[2];
  iov[1].iov_base = overflow;
  iov[1].iov_len = sizeof overflow;
  int32_t n = 0;
  while (n < max) {
    const int32_t start = n * slotSize + headroom;
    const size_t len = static_cast<size_t>(room + vnetHdrLen);
    ssize_t r;
    if (n + 1 < max) {
      r = read(fd, arena + start - vnetHdrLen, len + 1);
    } else {
      iov[0].iov_base = arena + start - vnetHdrLen;
      iov[0].iov_len = len;
      r = readv(fd, iov, 2);
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n == 0) return RetI32(env, -errno);
      break;  // report the frames we have; the error comes back on the next call
    }
    if (r < vnetHdrLen) continue;  // cannot happen for a TAP; never hand out a negative length
    SetRxMeta(meta, n, start, r - vnetHdrLen, room, r - vnetHdrLen > room);
    n++;
  }
  return RetI32(env, n);
}

// tapWrite(fd, arena, meta, count, vnetHdrLen, res) -> accepted | -errno
//
// One write() per frame of [START - vnetHdrLen, END). EAGAIN/ENOBUFS stops the batch (the
// rest is counted in res[kResDropped]); a frame the kernel rejects (EINVAL for a bad vnet
// header, EIO when the link is down) is skipped and counted in res[kResErrors].
static napi_value TapWrite(napi_env env, napi_callback_info info) {
  TxArgs a;
  if (!ParseTxArgs(env, info, &a)) return RetI32(env, -EINVAL);
  const int32_t fd = a.fd, count = a.count, vnetHdrLen = a.vnetHdrLen;
  uint8_t* const arena = a.arena;
  const size_t arenaLen = a.arenaLen;
  int32_t* const meta = a.meta;
  int32_t* const res = a.res;
  ResReset(res);
  int32_t sent = 0, i = 0;
  for (; i < count; i++) {
    const int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
    if (!TxFrameOk(m, arenaLen, vnetHdrLen)) {
      res[kResErrors]++;
      res[kResErrno] = EINVAL;
      MarkTxFailed(meta, i, i + 1);
      continue;
    }
    const int32_t off = m[kMetaStart] - vnetHdrLen;
    const size_t len = static_cast<size_t>(m[kMetaEnd] - off);
    ssize_t r;
    do r = write(fd, arena + off, len); while (r < 0 && errno == EINTR);
    if (r >= 0) {
      sent++;
      res[kResBytes] += m[kMetaEnd] - m[kMetaStart];
      continue;
    }
    const int e = errno;
    res[kResErrno] = e;
    if (IsQueueFull(e)) {
      res[kResDropped] += count - i;
      MarkTxFailed(meta, i, count);
      i = count;
      break;
    }
    if (IsFatalFd(e)) {
      res[kResErrors] += count - i;
      MarkTxFailed(meta, i, count);
      i = count;
      break;
    }
    res[kResErrors]++;
    MarkTxFailed(meta, i, i + 1);
  }
  res[kResNext] = i;
  if (sent == 0 && res[kResErrno] != 0) return RetI32(env, -res[kResErrno]);
  return RetI32(env, sent);
}

// tapSetPersist(fd, on): TUNSETPERSIST. A persistent device outlives its fd (with its addresses
// and routes), so a daemon can exit and a restart can attach to it again. Throws on failure.
static Napi::Value TapSetPersist(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "tapSetPersist(fd, on)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const bool on = info[1].As<Napi::Boolean>().Value();
  if (ioctl(fd, TUNSETPERSIST, on ? 1 : 0) < 0) return ThrowErrno(env, "ioctl(TUNSETPERSIST)", errno);
  return env.Undefined();
}

void RegisterTap(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("tapSetPersist", Napi::Function::New(env, TapSetPersist, "tapSetPersist"));
  SetRaw(env, exports, "tapRead", TapRead);
  SetRaw(env, exports, "tapWrite", TapWrite);
}

}  // namespace flatnet
