// Kernel drop counters of flatnet's ports, read where the kernel keeps them (cold path, read
// every few seconds by src/io/kernel-drops.ts):
//   socketDrops(fd)   SO_MEMINFO's SK_MEMINFO_DROPS: what the kernel dropped on this socket
//                     (receive buffer full, filter, ...), cumulative; for the UDP overlay
//                     socket and AF_PACKET sockets alike;
//   packetStats(fd)   PACKET_STATISTICS of an AF_PACKET socket: [packets, drops] since the
//                     last call (the kernel resets them on read);
//   linkStats(name)   IFLA_STATS64 of an interface (RTM_GETLINK on a short-lived netlink socket,
//                     so in the calling thread's network namespace): [rx_packets, tx_packets,
//                     rx_errors, tx_errors, rx_dropped, tx_dropped].
// socketDrops and packetStats return -errno on failure (they take a port's fd, which may have
// been closed meanwhile); linkStats throws (ENODEV for an interface that is gone).
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "flatnet.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

namespace flatnet {

static Napi::Value SocketDrops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Number::New(env, -EINVAL);
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint32_t mem[SK_MEMINFO_VARS];
  memset(mem, 0, sizeof mem);
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0) return Napi::Number::New(env, -errno);
  if (len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) return Napi::Number::New(env, -EINVAL);
  return Napi::Number::New(env, mem[SK_MEMINFO_DROPS]);
}

static Napi::Value PacketStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Number::New(env, -EINVAL);
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct tpacket_stats st;
  memset(&st, 0, sizeof st);
  socklen_t len = sizeof st;
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return Napi::Number::New(env, -errno);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, st.tp_packets));
  a.Set(1u, Napi::Number::New(env, st.tp_drops));
  return a;
}

static Napi::Value LinkStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "interface name must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) return ThrowErrno(env, "linkStats", name.empty() ? ENODEV : EINVAL);
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return ThrowErrno(env, "socket(AF_NETLINK)", errno);
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char attrs[64];
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  struct rtattr* rta = reinterpret_cast<struct rtattr*>(req.attrs);
  rta->rta_type = IFLA_IFNAME;
  rta->rta_len = RTA_LENGTH(name.size() + 1);
  memcpy(RTA_DATA(rta), name.c_str(), name.size() + 1);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)) + RTA_ALIGN(rta->rta_len);
  if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
    int e = errno;
    close(fd);
    return ThrowErrno(env, "send(RTM_GETLINK)", e);
  }
  alignas(struct nlmsghdr) char buf[16384];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  int e = n < 0 ? errno : 0;
  close(fd);
  if (n < 0) return ThrowErrno(env, "recv(RTM_GETLINK)", e);
  for (struct nlmsghdr* nh = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<unsigned>(n)); nh = NLMSG_NEXT(nh, n)) {
    if (nh->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(nh));
      return ThrowErrno(env, "RTM_GETLINK", err->error < 0 ? -err->error : EIO);
    }
    if (nh->nlmsg_type != RTM_NEWLINK) continue;
    struct ifinfomsg* ifi = static_cast<struct ifinfomsg*>(NLMSG_DATA(nh));
    int alen = static_cast<int>(IFLA_PAYLOAD(nh));
    for (struct rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(struct rtnl_link_stats64)) continue;
      struct rtnl_link_stats64 s;
      memcpy(&s, RTA_DATA(a), sizeof s);
      Napi::Array out = Napi::Array::New(env, 6);
      out.Set(0u, Napi::Number::New(env, static_cast<double>(s.rx_packets)));
      out.Set(1u, Napi::Number::New(env, static_cast<double>(s.tx_packets)));
      out.Set(2u, Napi::Number::New(env, static_cast<double>(s.rx_errors)));
      out.Set(3u, Napi::Number::New(env, static_cast<double>(s.tx_errors)));
      out.Set(4u, Napi::Number::New(env, static_cast<double>(s.rx_dropped)));
      out.Set(5u, Napi::Number::New(env, static_cast<double>(s.tx_dropped)));
      return out;
    }
  }
  return ThrowErrno(env, "RTM_GETLINK(IFLA_STATS64)", ENODATA);
}

void RegisterStats(Napi::Env env, Napi::Object exports) {
  exports.Set("socketDrops", Napi::Function::New(env, SocketDrops, "socketDrops"));
  exports.Set("packetStats", Napi::Function::New(env, PacketStats, "packetStats"));
  exports.Set("linkStats", Napi::Function::New(env, LinkStats, "linkStats"));
}

}  // namespace flatnet
