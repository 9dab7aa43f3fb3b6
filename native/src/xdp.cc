// AF_XDP ports: one XDP socket (raw system calls: socket, setsockopt, mmap of the four rings,
// bind) on queue 0 of an interface, and flatnet's XDP program (native/bpf/flatnet_xdp.c) loaded
// and attached through libbpf.
//
// One UMEM for several sockets (umemCreate): a node's ports share it, so a frame moves between
// them without a copy. The first socket registers it (XDP_UMEM_REG); the others bind with
// XDP_SHARED_UMEM on their own interface, each with its own fill and completion rings (Linux
// 5.10+). The UMEM is also handed to JavaScript as one Buffer (an external buffer over the
// mapping), and a read lends it to the batch: frame i's metadata points at the chunk the
// kernel wrote it to, no copy. The pipeline works on the frame in place (the 256 bytes of
// XDP_PACKET_HEADROOM in front of it take the outer headers) and, when the frame leaves by
// another socket of the same UMEM, xskSend posts that chunk on the TX ring as it is.
//
// Chunk ownership (one state per chunk, single-threaded: the JS thread):
//   FREE  in the UMEM's pool;
//   FILL  given to a socket's fill ring (the kernel's until it comes back on the RX ring);
//   HELD  read into a batch; at the socket's next read it goes back to its fill ring, unless
//   TX    it was posted on a TX ring (forwarded without a copy, or a frame copied in from
//         another arena); the completion ring gives it back to the pool.
// Each socket keeps `frames` * 3/4 chunks in its fill ring (topped up from the pool at every
// read: chunks forwarded elsewhere are replaced) and has a TX ring of `frames` / 4; a UMEM is
// sized for the sockets it will carry (the caller's choice: src/io/xdp-port.ts). A frame from
// any other arena (the kernel's sockets, the switch's scratch, another UMEM) is copied into a
// free chunk, as every frame was before the UMEM was shared.
//
// A pod's veth (mode ALL) hands XDP what the pod's stack sent, and a veth has no place for a
// CHECKSUM_PARTIAL skb's csum_start in an xdp_buff: a pod with TX checksum offload on (the
// default) reaches us with TCP and UDP checksums that hold only the pseudo-header sum. xskRecv
// finishes those (FinishPartialChecksum); TSO is not an issue, a veth whose peer runs XDP
// stops offering it (veth_fix_features).
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

constexpr uint32_t kMaxFrames = 4096;  // a socket's share of a UMEM: the default and the most
constexpr uint32_t kMinFrames = 64;
constexpr uint32_t kFrameSize = 2048;  // chunk size; frames up to 2048 - XDP_PACKET_HEADROOM
constexpr uint32_t kMaxUmemChunks = 65536;  // 128 MB

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
  uint32_t mask = 0;
};

enum ChunkState : uint8_t { kFree = 0, kFill = 1, kHeld = 2, kTx = 3 };

struct Xsk;

// A UMEM shared by the sockets that joined it. Freed when no socket uses it and the JS Buffer
// over it has been collected (`refs` counts both).
struct Umem {
  int32_t id = 0;
  uint8_t* base = nullptr;
  size_t len = 0;
  uint32_t chunks = 0;
  uint32_t reserved = 0;        // the joined sockets' `frames`, summed
  std::vector<uint8_t> state;   // ChunkState per chunk
  std::vector<int32_t> owner;   // the socket a FILL, HELD or TX chunk belongs to
  std::vector<uint32_t> pool;   // FREE chunks (indices)
  std::vector<Xsk*> members;
  int refs = 0;
};

struct Xsk {
  int32_t id = 0;
  int fd = -1;
  int ifindex = 0;
  Umem* umem = nullptr;
  Ring fill, comp, rx, tx;
  uint32_t fillTarget = 0;         // chunks kept in the fill ring (3/4 of frames)
  uint32_t fillCount = 0;          // chunks in the FILL state for this socket
  std::vector<uint32_t> held;      // chunks of the last read (HELD until the next read)
  uint32_t txOutstanding = 0;      // posted, not yet completed
  bpf_object* obj = nullptr;
  int linkFd = -1;  // the BPF link: closing it detaches the program
  int xdpFlags = -1;  // netlink attachment flags when there is no link
  int peersFd = -1;
  bool needWakeup = false;
  uint32_t frames = kMaxFrames;  // this socket's share of the UMEM: 3/4 receive, 1/4 transmit
  bool finishCsum = false;       // mode ALL: finish the pod's partial checksums
  uint64_t partialCsums = 0;     // frames whose checksum xskRecv finished
  uint64_t zeroCopyTx = 0;       // frames posted from the chunk they were read into
  uint64_t copiedTx = 0;         // frames copied into a chunk to be sent
};

static std::unordered_map<int32_t, Xsk*> gXsks;
static std::unordered_map<int32_t, Umem*> gUmems;
static int32_t gNextXsk = 1;
static int32_t gNextUmem = 1;

static inline uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static void Unmap(Ring* r) {
  if (r->map != nullptr && r->map != MAP_FAILED) munmap(r->map, r->mapLen);
  r->map = nullptr;
}

static void UmemUnref(Umem* u) {
  if (--u->refs > 0) return;
  gUmems.erase(u->id);
  munmap(u->base, u->len);
  delete u;
}

static inline void ToPool(Umem* u, uint32_t c) {
  u->state[c] = kFree;
  u->owner[c] = 0;
  u->pool.push_back(c);
}

// Leave: every chunk the socket held (in its rings, its last batch, its TX ring) goes back to
// the pool; its fd is closed first, so the kernel has let go of them.
static void Leave(Xsk* x) {
  Umem* u = x->umem;
  if (u == nullptr) return;
  for (uint32_t c = 0; c < u->chunks; c++) {
    if (u->state[c] != kFree && u->owner[c] == x->id) ToPool(u, c);
  }
  u->reserved -= x->frames;
  for (size_t i = 0; i < u->members.size(); i++) {
    if (u->members[i] == x) {
      u->members.erase(u->members.begin() + static_cast<long>(i));
      break;
    }
  }
  x->umem = nullptr;
  UmemUnref(u);
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
  Leave(x);
  delete x;
}

// Reclaim: completed transmit chunks back to the pool.
static void Reclaim(Xsk* x) {
  Ring& c = x->comp;
  if (c.map == nullptr) return;
  const uint32_t cons = *c.consumer;
  const uint32_t n = LoadAcquire(c.producer) - cons;
  if (n == 0) return;
  const uint64_t* cr = static_cast<const uint64_t*>(c.ring);
  Umem* u = x->umem;
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t chunk = static_cast<uint32_t>(cr[(cons + i) & c.mask] / kFrameSize);
    if (chunk < u->chunks && u->state[chunk] == kTx) ToPool(u, chunk);
  }
  StoreRelease(c.consumer, cons + n);
  x->txOutstanding -= n;
}

// ReclaimAll: every socket's completions (a chunk forwarded to another socket comes back on
// that socket's completion ring).
static void ReclaimAll(Umem* u) {
  for (Xsk* m : u->members) Reclaim(m);
}

// TopUp: fills the socket's fill ring back to its target from the pool.
static void TopUp(Xsk* x) {
  if (x->fillCount >= x->fillTarget) return;
  Umem* u = x->umem;
  uint32_t want = x->fillTarget - x->fillCount;
  if (u->pool.size() < want) ReclaimAll(u);
  if (want > u->pool.size()) want = static_cast<uint32_t>(u->pool.size());
  if (want == 0) return;
  Ring& f = x->fill;
  uint64_t* fr = static_cast<uint64_t*>(f.ring);
  const uint32_t prod = *f.producer;
  for (uint32_t i = 0; i < want; i++) {
    const uint32_t c = u->pool.back();
    u->pool.pop_back();
    u->state[c] = kFill;
    u->owner[c] = x->id;
    fr[(prod + i) & f.mask] = static_cast<uint64_t>(c) * kFrameSize;
  }
  StoreRelease(f.producer, prod + want);
  x->fillCount += want;
}

// Release: the chunks of the socket's last read that were not posted for transmit go back to
// its fill ring (or the pool, when the ring is at its target).
static void Release(Xsk* x) {
  if (x->held.empty()) return;
  Umem* u = x->umem;
  Ring& f = x->fill;
  uint64_t* fr = static_cast<uint64_t*>(f.ring);
  const uint32_t prod = *f.producer;
  uint32_t n = 0;
  for (uint32_t c : x->held) {
    if (u->state[c] != kHeld || u->owner[c] != x->id) continue;  // posted: TX until completed
    if (x->fillCount + n >= x->fillTarget) {
      ToPool(u, c);
      continue;
    }
    u->state[c] = kFill;
    fr[(prod + n) & f.mask] = static_cast<uint64_t>(c) * kFrameSize;
    n++;
  }
  x->held.clear();
  if (n > 0) {
    StoreRelease(f.producer, prod + n);
    x->fillCount += n;
  }
}

static bool MapRing(int fd, const xdp_ring_offset& off, uint64_t pgoff, size_t descSize, uint32_t size, Ring* r) {
  r->mask = size - 1;
  r->mapLen = off.desc + size * descSize;
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

// umemCreate(chunks) -> { id, buffer }: a UMEM of `chunks` chunks of 2 KB (64 to 65536), all
// free, and a Buffer over it (the arena reads lend to their batch). Sockets join it in xskOpen.
static void UmemFinalize(napi_env, void*, void* hint) { UmemUnref(static_cast<Umem*>(hint)); }

static Napi::Value UmemCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowErrno(env, "umemCreate", EINVAL);
  const uint32_t chunks = info[0].As<Napi::Number>().Uint32Value();
  if (chunks < kMinFrames || chunks > kMaxUmemChunks) return ThrowErrno(env, "umemCreate(chunks)", EINVAL);
  const size_t len = static_cast<size_t>(chunks) * kFrameSize;
  void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return ThrowErrno(env, "mmap(umem)", errno);
  Umem* u = new Umem();
  u->id = gNextUmem++;
  u->base = static_cast<uint8_t*>(mem);
  u->len = len;
  u->chunks = chunks;
  u->state.assign(chunks, kFree);
  u->owner.assign(chunks, 0);
  u->pool.reserve(chunks);
  for (uint32_t c = chunks; c > 0; c--) u->pool.push_back(c - 1);  // chunk 0 on top
  u->refs = 1;  // the Buffer
  gUmems[u->id] = u;
  napi_value buf;
  if (napi_create_external_buffer(env, len, u->base, UmemFinalize, u, &buf) != napi_ok) {
    UmemUnref(u);
    return ThrowErrno(env, "napi_create_external_buffer", ENOMEM);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", u->id);
  r.Set("buffer", Napi::Value(env, buf));
  return r;
}

// umemStats(id) -> { chunks, free, reserved, sockets } (cold path: show, tests); EBADF once freed.
static Napi::Value UmemStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowErrno(env, "umemStats", EINVAL);
  auto it = gUmems.find(info[0].As<Napi::Number>().Int32Value());
  if (it == gUmems.end()) return ThrowErrno(env, "umemStats", EBADF);
  Umem* u = it->second;
  Napi::Object r = Napi::Object::New(env);
  r.Set("chunks", u->chunks);
  r.Set("free", static_cast<double>(u->pool.size()));
  r.Set("reserved", u->reserved);
  r.Set("sockets", static_cast<double>(u->members.size()));
  return r;
}

// xskOpen(ifindex, objPath, mode, udpPort, localIp, generic, maxLen, frames, umemId)
//   -> { id, fd, attach, link, zerocopy }
//   mode 0: redirect every frame; 1: VXLAN to udpPort (host order) for localIp (host-order
//   uint32, 0 = any) from addresses in the peers map. `generic`: attach in generic (skb) mode
//   instead of the driver's (a veth with a native program makes its peer give up GSO, so a
//   peer's UDP-GSO trains arrive cut; in generic mode they arrive whole and go to the kernel).
//   `maxLen`: frames longer than this stay with the kernel (0: whatever fits a UMEM chunk).
//   `frames`: this socket's share of the UMEM, a power of two from 64 to 4096 (ENOSPC when the
//   UMEM has not that much left). Mode 0 finishes partial checksums on receive. Throws with
//   errno and syscall.
static Napi::Value XskOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 9 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsNumber() || !info[5].IsBoolean() || !info[6].IsNumber() || !info[7].IsNumber() || !info[8].IsNumber()) {
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
  const uint32_t frames = info[7].As<Napi::Number>().Uint32Value();
  if (frames < kMinFrames || frames > kMaxFrames || (frames & (frames - 1)) != 0) return ThrowErrno(env, "xskOpen(frames)", EINVAL);
  auto uit = gUmems.find(info[8].As<Napi::Number>().Int32Value());
  if (uit == gUmems.end()) return ThrowErrno(env, "xskOpen(umem)", EBADF);
  Umem* u = uit->second;
  if (u->reserved + frames > u->chunks) return ThrowErrno(env, "xskOpen(umem)", ENOSPC);
  libbpf_set_print(Silent);

  Xsk* x = new Xsk();
  x->id = gNextXsk++;
  x->ifindex = ifindex;
  x->frames = frames;
  x->finishCsum = mode == 0;
  x->umem = u;
  u->refs++;
  u->members.push_back(x);
  u->reserved += frames;
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

  // The socket: the first of its UMEM registers it; the others share it (XDP_SHARED_UMEM, with
  // their own fill and completion rings: another interface, or another queue).
  Xsk* owner = nullptr;
  for (Xsk* m : u->members) {
    if (m != x && m->fd >= 0) {
      owner = m;
      break;
    }
  }
  x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (x->fd < 0) return fail("socket(AF_XDP)", errno);
  if (owner == nullptr) {
    xdp_umem_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.addr = reinterpret_cast<uint64_t>(u->base);
    reg.len = u->len;
    reg.chunk_size = kFrameSize;
    reg.headroom = 0;
    if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) != 0) return fail("setsockopt(XDP_UMEM_REG)", errno);
  }
  const uint32_t rxRing = frames, txRing = frames / 4;
  x->fillTarget = frames - txRing;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_FILL_RING, &rxRing, sizeof rxRing) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_UMEM_COMPLETION_RING, &txRing, sizeof txRing) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_RX_RING, &rxRing, sizeof rxRing) != 0 ||
      setsockopt(x->fd, SOL_XDP, XDP_TX_RING, &txRing, sizeof txRing) != 0) {
    return fail("setsockopt(XDP_*_RING)", errno);
  }
  xdp_mmap_offsets off;
  socklen_t optlen = sizeof off;
  if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen) != 0) return fail("getsockopt(XDP_MMAP_OFFSETS)", errno);
  if (!MapRing(x->fd, off.fr, XDP_UMEM_PGOFF_FILL_RING, sizeof(uint64_t), rxRing, &x->fill) ||
      !MapRing(x->fd, off.cr, XDP_UMEM_PGOFF_COMPLETION_RING, sizeof(uint64_t), txRing, &x->comp) ||
      !MapRing(x->fd, off.rx, XDP_PGOFF_RX_RING, sizeof(xdp_desc), rxRing, &x->rx) ||
      !MapRing(x->fd, off.tx, XDP_PGOFF_TX_RING, sizeof(xdp_desc), txRing, &x->tx)) {
    return fail("mmap(xdp ring)", errno);
  }
  // The receive share goes to the fill ring: what the pool has (all of it, unless the other
  // sockets' frames in flight hold more than their transmit quarters); reads top it up.
  TopUp(x);

  sockaddr_xdp sa;
  memset(&sa, 0, sizeof sa);
  sa.sxdp_family = AF_XDP;
  sa.sxdp_ifindex = static_cast<uint32_t>(ifindex);
  sa.sxdp_queue_id = 0;
  if (owner == nullptr) {
    sa.sxdp_flags = XDP_USE_NEED_WAKEUP;
  } else {
    sa.sxdp_flags = XDP_SHARED_UMEM;  // need_wakeup as the owner has it
    sa.sxdp_shared_umem_fd = static_cast<uint32_t>(owner->fd);
  }
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

  gXsks[x->id] = x;
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", x->id);
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

// The one's complement sum of the 16-bit big-endian words over [p, p + len), folded (an odd
// last byte is the high one). Summed as host-order 32-bit words and byte-swapped at the end
// (RFC 1071: the sum does not depend on the byte order).
static uint64_t Sum16(const uint8_t* p, uint32_t len) {
  uint64_t s = 0;
  uint32_t i = 0;
  for (; i + 4 <= len; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    s += w;
  }
  if (i + 2 <= len) {
    uint16_t w;
    memcpy(&w, p + i, 2);
    s += w;
    i += 2;
  }
  if (i < len) s += p[i];
  while ((s >> 16) != 0) s = (s & 0xffff) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return __builtin_bswap16(static_cast<uint16_t>(s));
#else
  return s;
#endif
}

static uint16_t Fold(uint64_t s) {
  while ((s >> 16) != 0) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// FinishPartialChecksum: a TCP or UDP frame (IPv4, or IPv6 without extension headers) whose
// checksum field holds exactly the folded pseudo-header sum is what the sender's stack leaves
// for the device (CHECKSUM_PARTIAL). Finish it as the device would: the one's complement of
// the sum over the transport header and payload, the field included. Returns whether it did.
// A finished checksum that happens to equal the pseudo-header sum (1 in 65,536) is rewritten
// to the same value: the sum with the field as it is then is the pseudo-header sum plus the
// segment's, exactly what the sender summed.
static bool FinishPartialChecksum(uint8_t* f, uint32_t len) {
  if (len < 14) return false;
  const uint16_t type = static_cast<uint16_t>(f[12] << 8 | f[13]);
  uint32_t l4, l4len;
  uint8_t proto;
  uint64_t pseudo;
  if (type == 0x0800) {
    const uint8_t* ip = f + 14;
    if (len < 34 || (ip[0] >> 4) != 4) return false;
    const uint32_t hl = (ip[0] & 0x0f) * 4u;
    const uint32_t tot = static_cast<uint32_t>(ip[2] << 8 | ip[3]);
    if (hl < 20 || tot < hl || 14 + tot > len) return false;
    if ((ip[6] & 0x3f) != 0 || ip[7] != 0) return false;  // a fragment (MF or an offset)
    proto = ip[9];
    l4 = 14 + hl;
    l4len = tot - hl;
    pseudo = Sum16(ip + 12, 8);
  } else if (type == 0x86dd) {
    const uint8_t* ip = f + 14;
    if (len < 54 || (ip[0] >> 4) != 6) return false;
    l4len = static_cast<uint32_t>(ip[4] << 8 | ip[5]);
    if (54 + l4len > len) return false;
    proto = ip[6];
    l4 = 54;
    pseudo = Sum16(ip + 8, 32);
  } else {
    return false;
  }
  uint32_t at;
  if (proto == 6) {
    if (l4len < 20) return false;
    at = l4 + 16;
  } else if (proto == 17) {
    if (l4len < 8) return false;
    at = l4 + 6;
  } else {
    return false;
  }
  pseudo += proto + (l4len & 0xffff) + (l4len >> 16);
  const uint16_t field = static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
  if (field != Fold(pseudo)) return false;
  uint16_t c = static_cast<uint16_t>(~Fold(Sum16(f + l4, l4len)));
  if (c == 0 && proto == 17) c = 0xffff;  // UDP: 0 means no checksum
  f[at] = static_cast<uint8_t>(c >> 8);
  f[at + 1] = static_cast<uint8_t>(c);
  return true;
}

// xskRecv(id, meta, max, headroom) -> count | -errno
//
// Gives the chunks of the previous read back (Release), then takes up to `max` frames off the
// RX ring: frame i's metadata holds its place in the UMEM (absolute offsets into the Buffer
// umemCreate returned), the chunk HELD until the next read. The fill ring is topped up from
// the pool. A frame with less than `headroom` bytes in front of it in its chunk (the kernel
// leaves XDP_PACKET_HEADROOM, 256) is flagged truncated.
static napi_value XskRecv(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t id, max, headroom;
  int32_t* meta;
  size_t metaLen;
  if (argc < 4 || !ArgI32(env, argv[0], &id) || !ArgI32Array(env, argv[1], &meta, &metaLen) || !ArgI32(env, argv[2], &max) ||
      !ArgI32(env, argv[3], &headroom) || max < 0 || headroom < 0 || static_cast<size_t>(max) * kMetaStride > metaLen) {
    return RetI32(env, -EINVAL);
  }
  Xsk* x = Find(id);
  if (x == nullptr) return RetI32(env, -EBADF);
  Release(x);
  Ring& rx = x->rx;
  const uint32_t cons = *rx.consumer;
  const uint32_t avail = LoadAcquire(rx.producer) - cons;
  const uint32_t n = avail < static_cast<uint32_t>(max) ? avail : static_cast<uint32_t>(max);
  const xdp_desc* descs = static_cast<const xdp_desc*>(rx.ring);
  Umem* u = x->umem;
  for (uint32_t i = 0; i < n; i++) {
    const xdp_desc& d = descs[(cons + i) & rx.mask];
    const uint32_t c = static_cast<uint32_t>(d.addr / kFrameSize);
    const uint32_t at = static_cast<uint32_t>(d.addr & (kFrameSize - 1));
    const bool fits = at >= static_cast<uint32_t>(headroom) && at + d.len <= kFrameSize;
    if (x->finishCsum && fits && FinishPartialChecksum(u->base + d.addr, d.len)) x->partialCsums++;
    SetRxMeta(meta, static_cast<int32_t>(i), static_cast<int32_t>(d.addr), d.len, static_cast<int32_t>(kFrameSize - at), !fits);
    u->state[c] = kHeld;
    u->owner[c] = x->id;
    x->held.push_back(c);
  }
  if (n > 0) {
    StoreRelease(rx.consumer, cons + n);
    x->fillCount -= n;
  }
  TopUp(x);
  // Make sure the kernel has chunks to fill and is awake.
  if (x->needWakeup && (LoadAcquire(x->fill.flags) & XDP_RING_NEED_WAKEUP) != 0) {
    recvfrom(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  }
  return RetI32(env, static_cast<int32_t>(n));
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
// Posts frames [START, END) on the TX ring, then kicks the kernel if it asks for it. A frame in
// this socket's UMEM (the arena is its Buffer) that lies in a chunk a read HELD goes as it is
// (zeroCopyTx); any other frame is copied into a free chunk (copiedTx). A frame longer than a
// chunk is refused (counted as an error); when no chunk or ring slot is free after reclaiming
// completions, the rest is dropped.
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
  Umem* u = x->umem;
  const bool same = a.arena == u->base && a.arenaLen == u->len;
  Reclaim(x);
  Ring& tx = x->tx;
  xdp_desc* descs = static_cast<xdp_desc*>(tx.ring);
  const uint32_t prod = *tx.producer;
  const uint32_t ringSize = tx.mask + 1;
  uint32_t space = ringSize - (prod - LoadAcquire(tx.consumer));
  if (space == 0 && a.count > 0) {
    KickTx(x);
    Reclaim(x);
    space = ringSize - (prod - LoadAcquire(tx.consumer));
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
    const uint32_t start = static_cast<uint32_t>(m[kMetaStart]);
    const uint32_t len = static_cast<uint32_t>(m[kMetaEnd]) - start;
    if (len > kFrameSize || len == 0) {
      res[kResErrors]++;
      res[kResErrno] = EMSGSIZE;
      MarkTxFailed(a.meta, i, i + 1);
      continue;
    }
    if (posted == space) break;
    uint64_t addr;
    const uint32_t c = start / kFrameSize;
    if (same && (start + len - 1) / kFrameSize == c && u->state[c] == kHeld) {
      addr = start;  // forwarded as it lies
      x->zeroCopyTx++;
    } else {
      if (u->pool.empty()) ReclaimAll(u);
      if (u->pool.empty()) break;
      const uint32_t f = u->pool.back();
      u->pool.pop_back();
      addr = static_cast<uint64_t>(f) * kFrameSize;
      memcpy(u->base + addr, a.arena + start, len);
      x->copiedTx++;
    }
    const uint32_t chunk = static_cast<uint32_t>(addr / kFrameSize);
    u->state[chunk] = kTx;
    u->owner[chunk] = x->id;
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
  r.Set("partialChecksums", static_cast<double>(x->partialCsums));
  r.Set("umemFrames", x->frames);
  r.Set("zeroCopyTx", static_cast<double>(x->zeroCopyTx));
  r.Set("copiedTx", static_cast<double>(x->copiedTx));
  Umem* u = x->umem;
  Napi::Object um = Napi::Object::New(env);
  um.Set("id", u->id);
  um.Set("chunks", u->chunks);
  um.Set("free", static_cast<double>(u->pool.size()));
  um.Set("sockets", static_cast<double>(u->members.size()));
  r.Set("umem", um);
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
  exports.Set("umemCreate", Napi::Function::New(env, UmemCreate, "umemCreate"));
  exports.Set("umemStats", Napi::Function::New(env, UmemStats, "umemStats"));
  exports.Set("xskOpen", Napi::Function::New(env, XskOpen, "xskOpen"));
  SetRaw(env, exports, "xskClose", XskClose);
  SetRaw(env, exports, "xskRecv", XskRecv);
  SetRaw(env, exports, "xskSend", XskSend);
  SetRaw(env, exports, "xskSetPeers", XskSetPeers);
  exports.Set("xskStats", Napi::Function::New(env, XskStats, "xskStats"));
  exports.Set("xdpAttached", Napi::Function::New(env, XdpAttached, "xdpAttached"));
}

}  // namespace flatnet
