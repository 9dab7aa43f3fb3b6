// Link control by interface name, through ioctls on a short-lived AF_INET datagram socket (made
// per call, so it acts in the calling thread's current network namespace): ifindex, name, MTU,
// flags (up/down), MAC address, transmit queue length. Cold paths: errors throw.
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "flatnet.h"

namespace flatnet {

// Copies a JS string argument into ifr_name; false (after throwing) when it is not a valid name.
static bool IfName(const Napi::CallbackInfo& info, struct ifreq* ifr, const char* syscall) {
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(info.Env(), "interface name must be a string").ThrowAsJavaScriptException();
    return false;
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ) {
    ThrowErrno(info.Env(), syscall, name.empty() ? ENODEV : EINVAL);
    return false;
  }
  memset(ifr, 0, sizeof *ifr);
  memcpy(ifr->ifr_name, name.data(), name.size());
  return true;
}

// Runs one ioctl on a fresh socket; returns 0 or errno.
static int Ioctl(unsigned long req, struct ifreq* ifr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int r = ioctl(fd, req, ifr);
  int e = r < 0 ? errno : 0;
  close(fd);
  return e;
}

#define LINK_IOCTL(req, name)                              \
  do {                                                     \
    int e_ = Ioctl(req, &ifr);                             \
    if (e_ != 0) return ThrowErrno(env, "ioctl(" name ")", e_); \
  } while (0)

// ifIndex(name) -> index
static Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCGIFINDEX)")) return Napi::Value();
  LINK_IOCTL(SIOCGIFINDEX, "SIOCGIFINDEX");
  return Napi::Number::New(env, ifr.ifr_ifindex);
}

// ifNameOf(index) -> name
static Napi::Value IfNameOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "ifNameOf(index)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_ifindex = info[0].As<Napi::Number>().Int32Value();
  LINK_IOCTL(SIOCGIFNAME, "SIOCGIFNAME");
  return Napi::String::New(env, ifr.ifr_name);
}

// getMtu(name) -> mtu
static Napi::Value GetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCGIFMTU)")) return Napi::Value();
  LINK_IOCTL(SIOCGIFMTU, "SIOCGIFMTU");
  return Napi::Number::New(env, ifr.ifr_mtu);
}

// setMtu(name, mtu)
static Napi::Value SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCSIFMTU)")) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsNumber()) return ThrowErrno(env, "ioctl(SIOCSIFMTU)", EINVAL);
  ifr.ifr_mtu = info[1].As<Napi::Number>().Int32Value();
  LINK_IOCTL(SIOCSIFMTU, "SIOCSIFMTU");
  return env.Undefined();
}

// getFlags(name) -> IFF_* flags (IFF_UP = 1, IFF_RUNNING = 0x40, IFF_PROMISC = 0x100)
static Napi::Value GetFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCGIFFLAGS)")) return Napi::Value();
  LINK_IOCTL(SIOCGIFFLAGS, "SIOCGIFFLAGS");
  return Napi::Number::New(env, static_cast<uint16_t>(ifr.ifr_flags));
}

// setUp(name, up): read-modify-write of IFF_UP.
static Napi::Value SetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCGIFFLAGS)")) return Napi::Value();
  bool up = info.Length() >= 2 && info[1].ToBoolean().Value();
  LINK_IOCTL(SIOCGIFFLAGS, "SIOCGIFFLAGS");
  if (up) ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  else ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  LINK_IOCTL(SIOCSIFFLAGS, "SIOCSIFFLAGS");
  return env.Undefined();
}

// getMac(name) -> Buffer(6)
static Napi::Value GetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCGIFHWADDR)")) return Napi::Value();
  LINK_IOCTL(SIOCGIFHWADDR, "SIOCGIFHWADDR");
  return Napi::Buffer<char>::Copy(env, ifr.ifr_hwaddr.sa_data, 6);
}

// setMac(name, Buffer(6))
static Napi::Value SetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCSIFHWADDR)")) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsBuffer() || info[1].As<Napi::Buffer<char>>().Length() != 6) {
    return ThrowErrno(env, "ioctl(SIOCSIFHWADDR)", EINVAL);
  }
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, info[1].As<Napi::Buffer<char>>().Data(), 6);
  LINK_IOCTL(SIOCSIFHWADDR, "SIOCSIFHWADDR");
  return env.Undefined();
}

// setTxQueueLen(name, len)
static Napi::Value SetTxQueueLen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifreq ifr;
  if (!IfName(info, &ifr, "ioctl(SIOCSIFTXQLEN)")) return Napi::Value();
  if (info.Length() < 2 || !info[1].IsNumber()) return ThrowErrno(env, "ioctl(SIOCSIFTXQLEN)", EINVAL);
  ifr.ifr_qlen = info[1].As<Napi::Number>().Int32Value();
  LINK_IOCTL(SIOCSIFTXQLEN, "SIOCSIFTXQLEN");
  return env.Undefined();
}

void RegisterLink(Napi::Env env, Napi::Object exports) {
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
  exports.Set("ifNameOf", Napi::Function::New(env, IfNameOf, "ifNameOf"));
  exports.Set("getMtu", Napi::Function::New(env, GetMtu, "getMtu"));
  exports.Set("setMtu", Napi::Function::New(env, SetMtu, "setMtu"));
  exports.Set("getFlags", Napi::Function::New(env, GetFlags, "getFlags"));
  exports.Set("setUp", Napi::Function::New(env, SetUp, "setUp"));
  exports.Set("getMac", Napi::Function::New(env, GetMac, "getMac"));
  exports.Set("setMac", Napi::Function::New(env, SetMac, "setMac"));
  exports.Set("setTxQueueLen", Napi::Function::New(env, SetTxQueueLen, "setTxQueueLen"));
}

}  // namespace flatnet
