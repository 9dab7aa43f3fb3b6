// Underlay next hop from the kernel over rtnetlink (control path): the route to a peer
// (RTM_GETROUTE: output interface, gateway, preferred source) and the neighbour entry of the
// next hop (RTM_GETNEIGH). A monitor socket subscribed to route and neighbour changes lets the
// JS side forget what it resolved when the kernel's tables move (Open vSwitch's native
// tunnelling does the same with its route table and tunnel neighbour cache).
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "flatnet.h"

namespace flatnet {

static void AddAttr(nlmsghdr* n, int type, const void* data, int len) {
  rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<uint8_t*>(n) + NLMSG_ALIGN(n->nlmsg_len));
  a->rta_type = static_cast<unsigned short>(type);
  a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  memcpy(RTA_DATA(a), data, static_cast<size_t>(len));
  n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

// Sends one request on `fd` and reads its single answer into `buf`. Returns the answer's
// length, or -errno (the kernel's NLMSG_ERROR included).
static int Transact(int fd, nlmsghdr* req, uint8_t* buf, size_t len) {
  int r = -EIO;
  if (send(fd, req, req->nlmsg_len, 0) < 0) {
    r = -errno;
  } else {
    ssize_t got;
    do got = recv(fd, buf, len, 0); while (got < 0 && errno == EINTR);
    if (got < 0) {
      r = -errno;
    } else {
      nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf);
      if (!NLMSG_OK(h, static_cast<unsigned>(got))) r = -EIO;
      else if (h->nlmsg_type == NLMSG_ERROR) {
        nlmsgerr* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        r = e->error != 0 ? e->error : -ENOENT;
      } else {
        r = static_cast<int>(got);
      }
    }
  }
  return r;
}

// nlOpen() -> fd: an rtnetlink socket for routeGet/neighGet, bound to the namespace the caller
// is in now (lookups answer for that namespace wherever the thread is later). Owned by the
// addon (close() it). Throws with errno.
static Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return ThrowErrno(env, "socket(AF_NETLINK)", errno);
  timeval tv = {1, 0};  // a lookup never blocks the loop for long
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, "bind(AF_NETLINK)", e);
  }
  TrackFd(env, fd);
  return Napi::Number::New(env, fd);
}

static bool OwnedFd(napi_env env, const Napi::Value& v, int* fd) {
  if (!v.IsNumber()) return false;
  *fd = v.As<Napi::Number>().Int32Value();
  return GetState(env)->fds.count(*fd) != 0;
}

// NewRequest zeroes `req` and writes a request header of `type` for a `payload`-byte message.
static nlmsghdr* NewRequest(uint8_t* req, size_t size, uint16_t type, size_t payload) {
  memset(req, 0, size);
  nlmsghdr* n = reinterpret_cast<nlmsghdr*>(req);
  n->nlmsg_len = NLMSG_LENGTH(payload);
  n->nlmsg_type = type;
  n->nlmsg_flags = NLM_F_REQUEST;
  return n;
}

// routeGet(nlFd, dst: host-order IPv4) -> { ifindex, gateway, src, local } (host-order IPv4s,
// 0 = none). Throws with errno (ENETUNREACH, EHOSTUNREACH, EBADF, ...) and syscall.
static Napi::Value RouteGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (info.Length() < 2 || !OwnedFd(env, info[0], &fd) || !info[1].IsNumber()) return ThrowErrno(env, "routeGet", EBADF);
  const uint32_t dst = htonl(info[1].As<Napi::Number>().Uint32Value());
  alignas(nlmsghdr) uint8_t req[256];
  nlmsghdr* n = NewRequest(req, sizeof req, RTM_GETROUTE, sizeof(rtmsg));
  rtmsg* rt = static_cast<rtmsg*>(NLMSG_DATA(n));
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = 32;
  AddAttr(n, RTA_DST, &dst, 4);
  alignas(nlmsghdr) uint8_t buf[8192];
  int got = Transact(fd, n, buf, sizeof buf);
  if (got < 0) return ThrowErrno(env, "netlink(RTM_GETROUTE)", -got);
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf);
  rtmsg* ans = static_cast<rtmsg*>(NLMSG_DATA(h));
  int attrLen = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(rtmsg)));
  uint32_t oif = 0, gw = 0, src = 0;
  for (rtattr* a = RTM_RTA(ans); RTA_OK(a, attrLen); a = RTA_NEXT(a, attrLen)) {
    if (a->rta_type == RTA_OIF) memcpy(&oif, RTA_DATA(a), 4);
    else if (a->rta_type == RTA_GATEWAY) memcpy(&gw, RTA_DATA(a), 4);
    else if (a->rta_type == RTA_PREFSRC) memcpy(&src, RTA_DATA(a), 4);
  }
  if (ans->rtm_type != RTN_UNICAST && ans->rtm_type != RTN_LOCAL) return ThrowErrno(env, "netlink(RTM_GETROUTE)", EHOSTUNREACH);
  Napi::Object r = Napi::Object::New(env);
  r.Set("ifindex", static_cast<double>(oif));
  r.Set("gateway", static_cast<double>(ntohl(gw)));
  r.Set("src", static_cast<double>(ntohl(src)));
  r.Set("local", ans->rtm_type == RTN_LOCAL);
  return r;
}

// neighGet(nlFd, ifindex, ip: host-order IPv4) -> { mac: Buffer(6) | null, state }: the kernel's
// neighbour entry; mac is null unless the entry is usable (reachable, stale, delay, probe,
// permanent, noarp). A missing entry is { mac: null, state: 0 }, not an error.
static Napi::Value NeighGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (info.Length() < 3 || !OwnedFd(env, info[0], &fd) || !info[1].IsNumber() || !info[2].IsNumber()) return ThrowErrno(env, "neighGet", EBADF);
  const int ifindex = info[1].As<Napi::Number>().Int32Value();
  const uint32_t ip = htonl(info[2].As<Napi::Number>().Uint32Value());
  alignas(nlmsghdr) uint8_t req[256];
  nlmsghdr* n = NewRequest(req, sizeof req, RTM_GETNEIGH, sizeof(ndmsg));
  ndmsg* nd = static_cast<ndmsg*>(NLMSG_DATA(n));
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = ifindex;
  AddAttr(n, NDA_DST, &ip, 4);
  alignas(nlmsghdr) uint8_t buf[4096];
  int got = Transact(fd, n, buf, sizeof buf);
  Napi::Object r = Napi::Object::New(env);
  r.Set("mac", env.Null());
  r.Set("state", 0);
  if (got == -ENOENT) return r;
  if (got < 0) return ThrowErrno(env, "netlink(RTM_GETNEIGH)", -got);
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf);
  ndmsg* ans = static_cast<ndmsg*>(NLMSG_DATA(h));
  r.Set("state", static_cast<double>(ans->ndm_state));
  const int usable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
  if ((ans->ndm_state & usable) == 0) return r;
  int attrLen = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(ndmsg)));
  for (rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<uint8_t*>(ans) + NLMSG_ALIGN(sizeof(ndmsg)));
       RTA_OK(a, attrLen); a = RTA_NEXT(a, attrLen)) {
    if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
      r.Set("mac", Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(RTA_DATA(a)), 6));
    }
  }
  return r;
}

// nlMonitorOpen() -> fd: a non-blocking rtnetlink socket subscribed to IPv4 route, neighbour and
// link changes; owned by the addon (close() it). Throws with errno.
static Napi::Value NlMonitorOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return ThrowErrno(env, "socket(AF_NETLINK)", errno);
  sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_LINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, "bind(AF_NETLINK)", e);
  }
  TrackFd(env, fd);
  return Napi::Number::New(env, fd);
}

// nlDrain(fd) -> messages read (>= 0) | -errno other than EAGAIN. An overrun (ENOBUFS) counts
// as one message: something changed and was lost, so everything must be looked up again.
static napi_value NlDrain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd;
  if (argc < 1 || !ArgI32(env, argv[0], &fd)) return RetI32(env, -EINVAL);
  if (GetState(env)->fds.count(fd) == 0) return RetI32(env, -EBADF);
  alignas(nlmsghdr) uint8_t buf[16384];
  int32_t count = 0;
  for (;;) {
    ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        count++;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return RetI32(env, -errno);
    }
    if (got == 0) break;
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(got)); h = NLMSG_NEXT(h, got)) {
      count++;
    }
  }
  return RetI32(env, count);
}

void RegisterNexthop(Napi::Env env, Napi::Object exports) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen, "nlOpen"));
  exports.Set("routeGet", Napi::Function::New(env, RouteGet, "routeGet"));
  exports.Set("neighGet", Napi::Function::New(env, NeighGet, "neighGet"));
  exports.Set("nlMonitorOpen", Napi::Function::New(env, NlMonitorOpen, "nlMonitorOpen"));
  SetRaw(env, exports, "nlDrain", NlDrain);
}

}  // namespace flatnet
