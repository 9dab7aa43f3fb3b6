// AF_XDP ports: one XDP socket (raw system calls: socket, setsockopt, mmap of the four rings,
// bind) on queue 0 of an interface, with its own UMEM, and flatnet's XDP program
// (native/bpf/flatnet_xdp.c) loaded and attached through libbpf.
//
// UMEM layout: kFrames chunks of kFrameSize bytes; the first half feeds the fill ring (receive),
// the second half is a free stack for transmit, refilled from the completion ring. Frames are
// copied between the UMEM and the caller's arena (the pipeline works on its own slots), so a
// port never hands a UMEM address to JS.
//
// The program is attached through a BPF link when the kernel has them (5.9+): the link's fd
// belongs to this process, so when the process ends, however it ends, the program is detached and the
// interface is the kernel's again. Older kernels get a netlink attachment, detached by
// xskClose; if the process is killed first, the program stays but finds no socket in its map
// and passes every frame to the kernel (bpf_redirect_map's XDP_PASS default).
//
// Hot calls (xskRecv, xskSend) follow flatnet.h: caller-owned arena + meta, a count or -errno,
// no JS object per frame. need_wakeup: the kernel is kicked (recvfrom/sendto, MSG_DONTWAIT)
// only when it asks for it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "flatnet.h"
#include "rx.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace flatnet {

constexpr uint32_t kFrames = 4096;     // UMEM chunks
constexpr uint32_t kFrameSize = 2048;  // chunk size; frames up to 2048 - XDP_PACKET_HEADROOM
constexpr uint32_t kRingSize = 2048;   // each of the four rings
constexpr uint32_t kRxFrames = kFrames / 2;

// Mirrors struct flatnet_config in native/bpf/flatnet_xdp.c.
struct XdpConfig {
  uint32_t mode;
  uint32_t udpPort;  // network byte order
  uint32_t localIp;  // network byte order
  uint32_t maxLen;   // frames longer than this go to the kernel
};

struct Ring {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* ring = nullptr;
  void* map = nullptr;
  size_t mapLen = 0;
  uint32_t mask = kRingSize - 1;
};

struct Xsk {
  int fd = -1;
  int ifindex = 0;
  uint8_t* umem = nullptr;
  Ring fill, comp, rx, tx;
  std::vector<uint64_t> txFree;  // free transmit chunks
  uint32_t txOutstanding = 0;    // submitted, not yet completed
  bpf_object* obj = nullptr;
  int linkFd = -1;  // the BPF link: closing it detaches the program
  int xdpFlags = -1;  // netlink attachment flags when there is no link
  int peersFd = -1;
  bool needWakeup = false;
};

static std::unordered_map<int32_t, Xsk*> gXsks;
static int32_t gNextXsk = 1;

static inline uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static void Unmap(Ring* r) {
  if (r->map != nullptr && r->map != MAP_FAILED) munmap(r->map, r->mapLen);
  r->map = nullptr;
}

static void Destroy(Xsk* x) {
  if (x->fd >= 0) close(x->fd);  // removes it from the XSKMAP
  Unmap(&x->fill);
  Unmap(&x->comp);
  Unmap(&x->rx);
  Unmap(&x->tx);
  if (x->linkFd >= 0) close(x->linkFd);  // detaches the program
  else if (x->xdpFlags >= 0) bpf_xdp_detach(x->ifindex, x->xdpFlags, nullptr);
  if (x->obj != nullptr) bpf_object__close(x->obj);
  if (x->umem != nullptr) munmap(x->umem, static_cast<size_t>(kFrames) * kFrameSize);
  delete x;
}

static bool MapRing(int fd, const xdp_ring_offset& off, uint64_t pgoff, size_t descSize, Ring* r) {
  r->mapLen = off.desc + kRingSize * descSize;
  r->map = mmap(nullptr, r->mapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, static_cast<off_t>(pgoff));
  if (r->map == MAP_FAILED) {
    r->map = nullptr;
    return false;
  }
  uint8_t* b = static_cast<uint8_t*>(r->map);
  r->producer = reinterpret_cast<uint32_t*>(b + off.producer);
  r->consumer = reinterpret_cast<uint32_t*>(b + off.consumer);
  r->flags = reinterpret_cast<uint32_t*>(b + off.flags);
  r->ring = b + off.desc;
  return true;
}

static int Silent(enum libbpf_print_level, const char*, va_list) { return 0; }

// xskOpen(ifindex, objPath, mode, udpPort, localIp, generic, maxLen) -> { id, fd, attach, link, zerocopy }
//   mode 0: redirect every frame; 1: VXLAN to udpPort (host order) for localIp (host-order
//   uint32, 0 = any) from addresses in the peers map. `generic`: attach in generic (skb) mode
//   instead of the driver's (a veth with a native program makes its peer give up GSO, so a
//   peer's UDP-GSO trains arrive cut; in generic mode they arrive whole and go to the kernel).
//   `maxLen`: frames longer than this stay with the kernel (0: whatever fits a UMEM chunk).
//   Throws with errno and syscall.
static Napi::Value XskOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsNumber() || !info[5].IsBoolean() || !info[6].IsNumber()) {
    return ThrowErrno(env, "xskOpen", EINVAL);
  }
  const int ifindex = info[0].As<Napi::Number>().Int32Value();
  const std::string path = info[1].As<Napi::String>().Utf8Value();
  const uint32_t mode = info[2].As<Napi::Number>().Uint32Value();
  const uint32_t udpPort = info[3].As<Napi::Number>().Uint32Value();
  const uint32_t localIp = info[4].As<Napi::Number>().Uint32Value();
  const bool generic = info[5].As<Napi::Boolean>().Value();
  const uint32_t room = kFrameSize - XDP_PACKET_HEADROOM;
  uint32_t maxLen = info[6].As<Napi::Number>().Uint32Value();
  if (maxLen == 0 || maxLen > room) maxLen = room;
  libbpf_set_print(Silent);

  Xsk* x = new Xsk();
  x->ifindex = ifindex;
  auto fail = [&](const char* what, int err) {
    Destroy(x);
    return ThrowErrno(env, what, err);
  };

  // The program and its maps.
  x->obj = bpf_object__open_file(path.c_str(), nullptr);
  if (x->obj == nullptr) {
    int e = errno;
    x->obj = nullptr;
    return fail("bpf_object__open_file", e != 0 ? e : ENOENT);
  }
  if (bpf_object__load(x->obj) != 0) return fail("bpf_object__load", errno != 0 ? errno : EPERM);
  bpf_program* prog = bpf_object__find_program_by_name(x->obj, "flatnet_xdp");
  const int xsksFd = bpf_object__find_map_fd_by_name(x->obj, "xsks");
  const int cfgFd = bpf_object__find_map_fd_by_name(x->obj, "config");
  x->peersFd = bpf_object__find_map_fd_by_name(x->obj, "peers");
  if (prog == nullptr || xsksFd < 0 || cfgFd < 0 || x->peersFd < 0) return fail("bpf_object__find", ENOENT);
  XdpConfig cfg = {mode, htons(static_cast<uint16_t>(udpPort)), htonl(localIp), maxLen};
  uint32_t zero = 0;
  if (bpf_map_update_elem(cfgFd, &zero, &cfg, 0) != 0) return fail("bpf_map_update_elem(config)", errno);

  // UMEM and the socket.
  const size_t umemLen = static_cast<size_t>(kFrames) * kFrameSize;
  void* mem = mmap(nullptr, umemLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return fail("mmap(umem)", errno);
  x->umem = static_cast<uint8_t*>(mem);
  x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (x->fd < 0) return fail("socket(AF_XDP)", errno);
  xdp_umem_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.addr = reinterpret_cast<uint64_t>(x->umem);
  reg.len = umemLen;
  reg.chunk_size = kFrameSize;
  reg.headroom = 0;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0) return fail("setsockopt(XDP_UMEM_REG)", errno);
  const uint32_t n = kRingSize;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &n, sizeof n) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &n, sizeof n) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &n, sizeof n) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &n, sizeof n) != 0) {
    return fail("setsockopt(XDP_*_RING)", errno);
  }
  xdp_mmap_offsets off;
  socklen_t optlen = sizeof off;
  if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen) != 0) return fail("getsockopt(XDP_MMAP_OFFSETS)", errno);
  if (!MapRing(x->fd, off.fr, XDP_UMEM_PGOFF_FILL_RING, sizeof(uint64_t), &x->fill) ||
      !MapRing(x->fd, off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, sizeof(uint64_t), &x->comp) ||
      !MapRing(x->fd, off.rx, XDP_PGOFF_RX_RING, sizeof(xdp_desc), &x->rx) ||
      !MapRing(x->fd, off.tx, XDP_PGOFF_TX_RING, sizeof(xdp_desc), &x->tx)) {
    return fail("mmap(xdp ring)", errno);
  }
  // Receive chunks go to the fill ring; the others wait for transmit.
  uint64_t* fr = static_cast<uint64_t*>(x->fill.ring);
  for (uint32_t i = 0; i < kRxFrames; i++) fr[i & x->fill.mask] = static_cast<uint64_t>(i) * kFrameSize;
  StoreRelease(x->fill.producer, kRxFrames);
  x->txFree.reserve(kFrames - kRxFrames);
  for (uint32_t i = kRxFrames; i < kFrames; i++) x->txFree.push_back(static_cast<uint64_t>(i) * kFrameSize);

  sockaddr_xdp sa;
  memset(&sa, 0, sizeof sa);
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = static_cast<uint32_t>(ifindex);
  sa.sxdp_queue_id = 0;
  sa.sxdp_flags = XDP_USE_NEED_WAKEUP;
  // A socket closed on this queue a moment ago frees the queue from a kernel work item
  // (xp_release_deferred): EBUSY until it has run. Wait for it, up to a second.
  int bound = -1;
  for (int tries = 0; tries < 100; tries++) {
    bound = bind(x->fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (bound == 0 || errno != EBUSY) break;
    usleep(10000);
  }
  if (bound != 0) return fail("bind(AF_XDP)", errno);
  x->needWakeup = true;
  xdp_options opts;
  optlen = sizeof opts;
  bool zerocopy = getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0 && (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;

  const uint32_t q = 0;
  if (bpf_map_update_elem(xsksFd, &q, &x->fd, 0) != 0) return fail("bpf_map_update_elem(xsks)", errno);

  // Attach: a BPF link (driver mode where the driver has it, unless `generic`), else netlink.
  const int progFd = bpf_program__fd(prog);
  LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = generic ? static_cast<uint32_t>(XDP_FLAGS_SKB_MODE) : 0u);
  // A link closed a moment ago (a port closed, a daemon killed) is freed by a kernel work item:
  // until it has run, the interface still has that program (EBUSY / EEXIST). Wait, up to 1 s.
  for (int tries = 0; tries < 100; tries++) {
    x->linkFd = bpf_link_create(progFd, ifindex, BPF_XDP, &lopts);
    if (x->linkFd >= 0 || (errno != EBUSY && errno != EEXIST)) break;
    usleep(10000);
  }
  if (x->linkFd < 0) {
    x->linkFd = -1;
    int flags = XDP_FLAGS_UPDATE_IF_NOEXIST | (generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
    if (bpf_xdp_attach(ifindex, progFd, flags, nullptr) != 0) {
      flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE;
      if (bpf_xdp_attach(ifindex, progFd, flags, nullptr) != 0) return fail("bpf_xdp_attach", errno);
    }
    x->xdpFlags = flags;
  }
  bpf_xdp_query_opts q_opts;
  memset(&q_opts, 0, sizeof q_opts);
  q_opts.sz = sizeof q_opts;
  const char* attach = "unknown";
  if (bpf_xdp_query(ifindex, 0, &q_opts) == 0) {
    attach = q_opts.attach_mode == XDP_ATTACHED_DRV ? "native" : q_opts.attach_mode == XDP_ATTACHED_SKB ? "generic"
             : q_opts.attach_mode == XDP_ATTACHED_HW ? "hw" : q_opts.attach_mode == XDP_ATTACHED_MULTI ? "multi" : "none";
  }

  const int32_t id = gNextXsk++;
  gXsks[id] = x;
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", id);
  r.Set("fd", x->fd);
  r.Set("attach", attach);
  r.Set("link", x->linkFd >= 0);
  r.Set("zerocopy", zerocopy);
  return r;
}

static Xsk* Find(int32_t id) {
  auto it = gXsks.find(id);
  return it == gXsks.end() ? nullptr : it->second;
}

// xskClose(id) -> 0 | -EBADF: closes the socket, detaches the program, frees the UMEM.
static napi_value XskClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t id;
  if (argc < 1 || !ArgI32(env, argv[0], &id)) return RetI32(env, -EINVAL);
  Xsk* x = Find(id);
  if (x == nullptr) return RetI32(env, -EBADF);
  gXsks.erase(id);
  Destroy(x);
  return RetI32(env, 0);
}

// xskRecv(id, arena, slotSize, headroom, meta, max) -> count | -errno
//
// Takes up to `max` frames off the RX ring, copies frame i to slot i at `headroom` and gives
// its chunk straight back to the fill ring. A frame longer than the slot is cut and flagged.
static napi_value XskRecv(napi_env env, napi_callback_info info) {
  RxArgs a;
  if (!ParseRxArgs(env, info, false, &a)) return RetI32(env, -EINVAL);
  Xsk* x = Find(a.fd);
  if (x == nullptr) return RetI32(env, -EBADF);
  Ring& rx = x->rx;
  Ring& fill = x->fill;
  const uint32_t cons = *rx.consumer;
  uint32_t avail = LoadAcquire(rx.producer) - cons;
  if (avail == 0) {
    // Nothing waiting: make sure the kernel has chunks to fill and is awake.
    if (x->needWakeup && (LoadAcquire(fill.flags) & XDP_RING_NEED_WAKEUP) != 0) {
      recvfrom(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    }
    return RetI32(env, 0);
  }
  const uint32_t n = avail < static_cast<uint32_t>(a.max) ? avail : static_cast<uint32_t>(a.max);
  const xdp_desc* descs = static_cast<const xdp_desc*>(rx.ring);
  uint64_t* fr = static_cast<uint64_t*>(fill.ring);
  const uint32_t fprod = *fill.producer;
  const int32_t room = a.slotSize - a.headroom;
  for (uint32_t i = 0; i < n; i++) {
    const xdp_desc& d = descs[(cons + i) & rx.mask];
    const int32_t start = static_cast<int32_t>(i) * a.slotSize + a.headroom;
    const uint32_t len = d.len;
    const uint32_t copy = len > static_cast<uint32_t>(room) ? static_cast<uint32_t>(room) : len;
    memcpy(a.arena + start, x->umem + (d.addr & ~static_cast<uint64_t>(kFrameSize - 1)) + (d.addr & (kFrameSize - 1)), copy);
    SetRxMeta(a.meta, static_cast<int32_t>(i), start, len, room, false);
    // The chunk's base address goes back to the fill ring (the kernel adds its headroom).
    fr[(fprod + i) & fill.mask] = d.addr & ~static_cast<uint64_t>(kFrameSize - 1);
  }
  StoreRelease(rx.consumer, cons + n);
  StoreRelease(fill.producer, fprod + n);
  if (x->needWakeup && (LoadAcquire(fill.flags) & XDP_RING_NEED_WAKEUP) != 0) {
    recvfrom(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  return RetI32(env, static_cast<int32_t>(n));
}

// Moves completed transmit chunks back to the free stack.
static void Reclaim(Xsk* x) {
  Ring& c = x->comp;
  const uint32_t cons = *c.consumer;
  const uint32_t n = LoadAcquire(c.producer) - cons;
  if (n == 0) return;
  const uint64_t* cr = static_cast<const uint64_t*>(c.ring);
  for (uint32_t i = 0; i < n; i++) x->txFree.push_back(cr[(cons + i) & c.mask]);
  StoreRelease(c.consumer, cons + n);
  x->txOutstanding -= n;
}

// Wakes the kernel's transmit path when it asks for it. In copy mode one sendto() moves at most
// a small batch (TX_BATCH_SIZE, 32) and answers EAGAIN while more waits: go on until the ring
// is drained or the kernel says something else (ENOBUFS/EBUSY: the device queue is full).
static void KickTx(Xsk* x) {
  if (x->needWakeup && (LoadAcquire(x->tx.flags) & XDP_RING_NEED_WAKEUP) == 0) return;
  for (int i = 0; i < 256; i++) {
    if (sendto(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
      if (LoadAcquire(x->tx.consumer) == *x->tx.producer) return;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return;
    if (LoadAcquire(x->tx.consumer) == *x->tx.producer) return;
  }
}

// xskSend(id, arena, meta, count, vnetHdrLen, res) -> accepted | -errno
//
// Copies frames [START, END) into free transmit chunks and posts them on the TX ring, then
// kicks the kernel if it asks for it. A frame longer than a chunk is refused (counted as an
// error); when no chunk or ring slot is free after one reclaim, the rest is dropped.
static napi_value XskSend(napi_env env, napi_callback_info info) {
  TxArgs a;
  if (!ParseTxArgs(env, info, &a)) return RetI32(env, -EINVAL);
  int32_t* const res = a.res;
  ResReset(res);
  Xsk* x = Find(a.fd);
  if (x == nullptr) {
    res[kResErrors] = a.count;
    res[kResErrno] = EBADF;
    MarkTxFailed(a.meta, 0, a.count);
    res[kResNext] = a.count;
    return RetI32(env, a.count == 0 ? 0 : -EBADF);
  }
  Reclaim(x);
  Ring& tx = x->tx;
  xdp_desc* descs = static_cast<xdp_desc*>(tx.ring);
  const uint32_t prod = *tx.producer;
  uint32_t space = kRingSize - (prod - LoadAcquire(tx.consumer));
  if ((space == 0 || x->txFree.empty()) && a.count > 0) {
    KickTx(x);
    Reclaim(x);
    space = kRingSize - (prod - LoadAcquire(tx.consumer));
  }
  uint32_t posted = 0;
  int32_t i = 0;
  for (; i < a.count; i++) {
    const int32_t* m = a.meta + static_cast<int64_t>(i) * kMetaStride;
    if (!TxFrameOk(m, a.arenaLen, 0)) {
      res[kResErrors]++;
      res[kResErrno] = EINVAL;
      MarkTxFailed(a.meta, i, i + 1);
      continue;
    }
    const uint32_t len = static_cast<uint32_t>(m[kMetaEnd] - m[kMetaStart]);
    if (len > kFrameSize || len == 0) {
      res[kResErrors]++;
      res[kResErrno] = EMSGSIZE;
      MarkTxFailed(a.meta, i, i + 1);
      continue;
    }
    if (posted == space || x->txFree.empty()) break;
    const uint64_t addr = x->txFree.back();
    x->txFree.pop_back();
    memcpy(x->umem + addr, a.arena + m[kMetaStart], len);
    xdp_desc& d = descs[(prod + posted) & tx.mask];
    d.addr = addr;
    d.len = len;
    d.options = 0;
    posted++;
    res[kResBytes] += static_cast<int32_t>(len);
  }
  if (i < a.count) {
    res[kResDropped] += a.count - i;
    MarkTxFailed(a.meta, i, a.count);
    res[kResErrno] = ENOBUFS;
  }
  res[kResNext] = a.count;
  if (posted > 0) {
    StoreRelease(tx.producer, prod + posted);
    x->txOutstanding += posted;
    KickTx(x);
  }
  if (posted == 0 && res[kResErrno] != 0) return RetI32(env, -res[kResErrno]);
  return RetI32(env, static_cast<int32_t>(posted));
}

// xskSetPeers(id, addrs: Int32Array of host-order IPv4) -> 0 | -errno: the underlay program
// redirects VXLAN from exactly these sources (others go to the kernel).
static napi_value XskSetPeers(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t id;
  int32_t* addrs;
  size_t n;
  if (argc < 2 || !ArgI32(env, argv[0], &id) || !ArgI32Array(env, argv[1], &addrs, &n)) return RetI32(env, -EINVAL);
  Xsk* x = Find(id);
  if (x == nullptr) return RetI32(env, -EBADF);
  std::unordered_set<uint32_t> want;
  for (size_t i = 0; i < n; i++) want.insert(htonl(static_cast<uint32_t>(addrs[i])));
  std::vector<uint32_t> stale;
  uint32_t key, next;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(x->peersFd, prev, &next) == 0) {
    if (want.count(next) == 0) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (uint32_t k : stale) bpf_map_delete_elem(x->peersFd, &k);
  const uint32_t one = 1;
  for (uint32_t k : want) {
    if (bpf_map_update_elem(x->peersFd, &k, &one, 0) != 0) return RetI32(env, -errno);
  }
  return RetI32(env, 0);
}

// xskStats(id) -> { rxDropped, rxInvalid, txInvalid, rxRingFull, fillRingEmpty, txRingEmpty,
//   txOutstanding } from XDP_STATISTICS (cold path: show, metrics, tests).
static Napi::Value XskStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowErrno(env, "xskStats", EINVAL);
  Xsk* x = Find(info[0].As<Napi::Number>().Int32Value());
  if (x == nullptr) return ThrowErrno(env, "xskStats", EBADF);
  xdp_statistics s;
  memset(&s, 0, sizeof s);
  socklen_t len = sizeof s;
  if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &s, &len) != 0) return ThrowErrno(env, "getsockopt(XDP_STATISTICS)", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("rxDropped", static_cast<double>(s.rx_dropped));
  r.Set("rxInvalid", static_cast<double>(s.rx_invalid_descs));
  r.Set("txInvalid", static_cast<double>(s.tx_invalid_descs));
  r.Set("rxRingFull", static_cast<double>(s.rx_ring_full));
  r.Set("fillRingEmpty", static_cast<double>(s.rx_fill_ring_empty_descs));
  r.Set("txRingEmpty", static_cast<double>(s.tx_ring_empty_descs));
  r.Set("txOutstanding", x->txOutstanding);
  return r;
}

// xdpAttached(ifindex) -> program id attached to the interface, 0 for none (tests, cleanup checks).
static Napi::Value XdpAttached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowErrno(env, "xdpAttached", EINVAL);
  uint32_t progId = 0;
  if (bpf_xdp_query_id(info[0].As<Napi::Number>().Int32Value(), 0, &progId) != 0) return ThrowErrno(env, "bpf_xdp_query_id", errno);
  return Napi::Number::New(env, progId);
}

void RegisterXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("xskOpen", Napi::Function::New(env, XskOpen, "xskOpen"));
  SetRaw(env, exports, "xskClose", XskClose);
  SetRaw(env, exports, "xskRecv", XskRecv);
  SetRaw(env, exports, "xskSend", XskSend);
  SetRaw(env, exports, "xskSetPeers", XskSetPeers);
  exports.Set("xskStats", Napi::Function::New(env, XskStats, "xskStats"));
  exports.Set("xdpAttached", Napi::Function::New(env, XdpAttached, "xdpAttached"));
}

}  // namespace flatnet
