// The connection table's pre-pass: a batch's packets of established connections found and
// counted on their entries in one call, before the pipeline runs the batch. The one place the
// addon parses packets and reads a table: the lookup and the counting cost 30-40 ns a packet
// in JS and about 10 here (bench/README.md, "NetworkPolicy and Services on the data path").
//
// The table is src/conntrack/table.ts: typed arrays JS owns and lays out. ctBind takes them
// once (holding a reference to each for as long as the binding lives). ctPrepass reads the
// batch's frames and, for each packet that parses as the pipeline parses it, belongs to a live
// entry and cannot change that entry's state (UDP; TCP in ESTABLISHED without SYN, FIN or
// RST), does what ConnTable.seen does: the counters, the direction flags, the expiry. The LRU
// move is left to JS (ConnTable.take, when the pipeline gets to the packet), so the LRU order
// stays the packets' order. Each packet gets a slot: its tuple node; kMiss for a TCP or UDP
// packet no live entry has (JS then skips its own lookup while it creates none,
// ConnTable.missed); or -1 for JS to do all of it. Once one packet of an entry is left to JS,
// the entry's later packets in the batch are too, so every entry sees its packets in order
// (and so its mark cannot change before JS gets to a packet this pass took: the slot also says
// which policy stages pass the packet, a reply or one of a connection that stage allowed, read
// off the mark). Everything else (create, judge, remove, the TCP state machine) stays in JS,
// the only place it is written.
//
// One rewrite too: a packet of a connection a Service translated gets the translation JS chose
// and stored with the connection (src/service/nat.ts natApply's arithmetic, the aux word) when
// JS marked the entry for it: kMarkPrepassDnat for the original direction (to the backend),
// kMarkPrepassReply for the replies (back from the ClusterIP); its slot says so (kNat) and
// the NAT stage skips it. The ingress stage's checks that read the source address (a pod's
// own; the sending peer's pod CIDR for the overlay) run after this pass on the translated
// packet, so they take the source from before it (the pod's, which this pass checked; the
// connection's tuple, FrameContext.preNatSrc); JS does not mark hairpin connections or ones on
// the overlay's UDP port, whose checks would see other addresses.
//
// It mirrors table.ts: the hash, the lookup and the easy cases of seen. test/conntrack/
// prepass.test.ts runs random batches through both ways and compares every entry and frame.
#include <memory>

#include "flatnet.h"

namespace flatnet {
namespace {

constexpr int32_t kNil = -1;
constexpr int kHeld = 64;            // connections one batch may leave to JS before the rest of it goes there too
constexpr int32_t kTouch = 1 << 30;  // an out slot's bit: the entry moves to the LRU tail when JS takes the packet
constexpr int32_t kNat = 1 << 29;    // an out slot's bit: the packet was translated here (table.ts PREPASS_NAT)
constexpr int32_t kMiss = -2;        // an out slot: a TCP or UDP packet whose tuple has no live connection (table.ts PREPASS_MISS)
constexpr int32_t kMarkPolicy = 1 | 2;     // an entry's mark bits: this node's egress (1), ingress (2) policy stage allowed it (table.ts MARK_POLICY_EGRESS, MARK_POLICY_INGRESS)
constexpr int kPassShift = 27;             // an out slot's bits 27-28: the packet is a reply or its entry has that policy bit (table.ts PREPASS_PASS_EGRESS, PREPASS_PASS_INGRESS)
constexpr int32_t kMarkPrepassDnat = 8;    // an entry's mark bit: its original direction may be rewritten here (table.ts MARK_PREPASS_DNAT)
constexpr int32_t kMarkPrepassReply = 16;  // an entry's mark bit: its replies may be rewritten here (table.ts MARK_PREPASS_REPLY)
constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kSctp = 132;
constexpr uint8_t kSeenReply = 1, kAssured = 2;
constexpr uint8_t kEstablished = 3;            // TcpState.ESTABLISHED
constexpr uint8_t kTcpSynFinRst = 0x02 | 0x01 | 0x04;
constexpr uint8_t kTrackedTcpFlags = 0x01 | 0x02 | 0x04 | 0x10;  // TRACKED_TCP_FLAGS

// The order ctBind takes its typed arrays in (table.ts bind()).
enum Arr {
  kSrc, kDst, kPorts, kNext, kPackets, kBytes, kProto, kState, kFlags, kExpires,
  kBuckets, kTimeouts, kMarks, kAux, kArrCount
};

struct Table {
  napi_ref refs[kArrCount] = {};
  int32_t* src = nullptr;
  int32_t* dst = nullptr;
  int32_t* ports = nullptr;
  int32_t* next = nullptr;
  double* packets = nullptr;
  double* bytes = nullptr;
  uint8_t* proto = nullptr;
  uint8_t* state = nullptr;
  uint8_t* flags = nullptr;
  double* expires = nullptr;
  int32_t* buckets = nullptr;
  double* timeouts = nullptr;  // [udp, udpStream, tcpEstablished]
  int32_t* marks = nullptr;    // per entry (ConnTable.mark)
  int32_t* aux = nullptr;      // per tuple node: a translated connection's checksum changes (nat.ts natSums)
  uint32_t mask = 0;
  uint32_t seed = 0;
};

void FinalizeTable(napi_env env, void* data, void* hint) {
  Table* t = static_cast<Table*>(data);
  for (napi_ref r : t->refs)
    if (r != nullptr) napi_delete_reference(env, r);
  delete t;
}

inline uint32_t Hash(const Table& t, uint32_t proto, uint32_t src, uint32_t dst, uint32_t ports) {
  uint32_t h = (src ^ t.seed) * 0x85ebca6bu;
  h = (h ^ (h >> 13) ^ dst) * 0xc2b2ae35u;
  h = (h ^ (h >> 16) ^ ports) * 0x27d4eb2fu;
  h ^= proto + (h >> 15);
  h *= 0x165667b1u;
  return (h ^ (h >> 16)) & t.mask;
}

// Lookup: table.ts lookup (the live node of the tuple, or -1).
inline int32_t Lookup(const Table& t, uint8_t proto, int32_t src, int32_t dst, int32_t ports, double now) {
  for (int32_t n = t.buckets[Hash(t, proto, static_cast<uint32_t>(src), static_cast<uint32_t>(dst), static_cast<uint32_t>(ports))]; n != kNil; n = t.next[n]) {
    if (t.src[n] == src && t.dst[n] == dst && t.ports[n] == ports && t.proto[n >> 1] == proto)
      return t.expires[n >> 1] > now ? n : kNil;
  }
  return kNil;
}

// Seen: table.ts seen for the packets this pass takes (UDP; TCP ESTABLISHED without SYN/FIN/RST),
// but for the LRU move: true when the expiry moved, and with it the entry's place in the LRU
// list, which JS makes when it takes the packet (ConnTable.take), in the batch's order.
inline bool Seen(Table& t, int32_t n, uint8_t proto, uint32_t len, double now) {
  const int32_t e = n >> 1;
  const bool reply = (n & 1) != 0;
  t.packets[n] += 1;
  t.bytes[n] += len;
  uint8_t f = t.flags[e];
  if (reply) f |= kSeenReply;
  double timeout;
  if (proto == kTcp) {
    f |= kAssured;
    timeout = t.timeouts[2];
  } else {
    if ((f & kSeenReply) != 0 && !reply) f |= kAssured;
    timeout = (f & kAssured) != 0 ? t.timeouts[1] : t.timeouts[0];
  }
  t.flags[e] = f;
  const double exp = now + timeout;
  if (t.expires[e] == exp) return false;
  t.expires[e] = exp;
  return true;
}

inline uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Packet: what the pipeline's parse and the stages' tuple() read of an Ethernet frame at
// [s, e): false when the frame is not a valid IPv4 packet (the pipeline drops or passes it
// untracked; this pass leaves it alone).
struct Packet {
  uint8_t proto;
  uint8_t tcpFlags;
  bool hasPorts;  // the first 4 transport bytes were read (not a later fragment, not cut short)
  uint16_t flagsFrag;  // the IPv4 flags and fragment offset
  int32_t src, dst, ports;
  uint32_t len;
  int64_t l3, l4;  // offsets in the arena: the IPv4 header, the transport header
};

inline bool Parse(const uint8_t* a, int64_t s, int64_t e, Packet* p) {
  if (e - s < 14 + 20 || Be16(a + s + 12) != 0x0800) return false;
  const uint8_t* ip = a + s + 14;
  const int64_t avail = e - s - 14;
  const uint32_t hl = (ip[0] & 0x0f) << 2, tot = Be16(ip + 2);
  if ((ip[0] >> 4) != 4 || hl < 20 || tot > avail || tot < hl) return false;
  p->proto = ip[9];
  p->src = static_cast<int32_t>(Be32(ip + 12));
  p->dst = static_cast<int32_t>(Be32(ip + 16));
  p->len = tot;
  p->ports = 0;
  p->tcpFlags = 0;
  p->hasPorts = false;
  p->flagsFrag = Be16(ip + 6);
  p->l3 = s + 14;
  p->l4 = s + 14 + hl;
  if ((p->flagsFrag & 0x1fff) != 0) return true;  // a later fragment: no transport header
  const uint8_t* l4 = ip + hl;
  const uint32_t room = tot - hl;
  if (p->proto == kTcp || p->proto == kUdp || p->proto == kSctp) {
    if (room < 4) return true;
    p->hasPorts = true;
    p->ports = static_cast<int32_t>(Be32(l4));
    if (p->proto == kTcp && room >= 14) p->tcpFlags = l4[13] & kTrackedTcpFlags;
  } else if (p->proto == kIcmp && room >= 8 && (l4[0] == 8 || l4[0] == 0)) {
    p->ports = static_cast<int32_t>(uint32_t(Be16(l4 + 4)) << 16);
  }
  return true;
}

inline void Put32(uint8_t* p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
inline void Put16(uint8_t* p, uint32_t v) { p[0] = static_cast<uint8_t>(v >> 8); p[1] = static_cast<uint8_t>(v); }
inline uint32_t Neg16(uint32_t w) { return ~w & 0xffff; }
inline uint32_t Fold2(uint32_t s) {
  s = (s >> 16) + (s & 0xffff);
  return (s >> 16) + (s & 0xffff);
}

// Translate: nat.ts natApply for a TCP or UDP packet `p` of tuple node `n` of a translated
// connection (either direction): the addresses and ports the other tuple answers to, the checksums
// changed by the node's stored sums (the IPv4 header's in the high half, the transport's in the
// low half). `partial`: the frame's checksum is left to the device (CHECKSUM_PARTIAL): the
// field holds the pseudo-header sum, which only the addresses change.
inline void Translate(const Table& t, uint8_t* a, const Packet& p, int32_t n, bool partial) {
  const int32_t o = n ^ 1;
  const uint32_t sums = static_cast<uint32_t>(t.aux[n]), ipd = sums >> 16;
  const uint32_t rp = static_cast<uint32_t>(t.ports[o]);
  uint8_t* ip = a + p.l3;
  Put16(ip + 10, Neg16(Fold2(Neg16(Be16(ip + 10)) + ipd)));
  Put32(ip + 12, static_cast<uint32_t>(t.dst[o]));
  Put32(ip + 16, static_cast<uint32_t>(t.src[o]));
  uint8_t* l4 = a + p.l4;
  Put32(l4, (rp << 16) | (rp >> 16));  // the other tuple's ports, swapped
  const int64_t at = p.l4 + (p.proto == kTcp ? 16 : 6);
  if (at + 2 > p.l3 + p.len) return;
  const uint32_t old = Be16(a + at);
  if (p.proto == kUdp && old == 0) return;  // no UDP checksum: none to keep
  uint32_t s;
  if (partial) {
    s = Fold2(old + ipd);
  } else {
    s = Neg16(Fold2(Neg16(old) + (sums & 0xffff)));
    if (p.proto == kUdp && s == 0) s = 0xffff;
  }
  Put16(a + at, s);
}

// PartialInner: the overlay ingress stage's offloadState test (ingress-overlay.ts), on the
// packet as it arrived: a TCP or UDP checksum field equal to the pseudo-header sum is partial
// (a peer's kernel left it to a device with checksum offload). Not for a fragment or a zero field.
inline bool PartialInner(const uint8_t* a, const Packet& p) {
  if ((p.flagsFrag & 0x3fff) != 0) return false;
  const uint32_t room = p.len - static_cast<uint32_t>(p.l4 - p.l3);
  int64_t at;
  if (p.proto == kTcp && room >= 20) at = 16;
  else if (p.proto == kUdp && room >= 8) at = 6;
  else return false;
  const uint32_t field = Be16(a + p.l4 + at);
  if (field == 0) return false;
  const uint32_t src = static_cast<uint32_t>(p.src), dst = static_cast<uint32_t>(p.dst);
  uint32_t ps = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + p.proto + room;
  ps = (ps >> 16) + (ps & 0xffff);
  return field == (ps >> 16) + (ps & 0xffff);
}

// ctBind(src, dst, ports, next, packets, bytes, proto, state, flags, expires, buckets, timeouts,
//   marks, aux, seed) -> an external for ctPrepass. Throws EINVAL on a wrong array.
napi_value CtBind(napi_env env, napi_callback_info info) {
  size_t argc = kArrCount + 1;
  napi_value argv[kArrCount + 1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < kArrCount + 1) return ThrowErrnoRaw(env, "ctBind", EINVAL);
  auto t = std::make_unique<Table>();
  static const napi_typedarray_type want[kArrCount] = {
      napi_int32_array, napi_int32_array, napi_int32_array, napi_int32_array, napi_float64_array,
      napi_float64_array, napi_uint8_array, napi_uint8_array, napi_uint8_array, napi_float64_array,
      napi_int32_array, napi_float64_array, napi_int32_array, napi_int32_array};
  void* data[kArrCount];
  size_t len[kArrCount];
  for (int i = 0; i < kArrCount; i++) {
    bool isTyped = false;
    napi_typedarray_type type;
    if (napi_is_typedarray(env, argv[i], &isTyped) != napi_ok || !isTyped ||
        napi_get_typedarray_info(env, argv[i], &type, &len[i], &data[i], nullptr, nullptr) != napi_ok || type != want[i])
      return ThrowErrnoRaw(env, "ctBind", EINVAL);
  }
  const size_t cap = len[kProto];
  size_t nb = len[kBuckets];
  if (cap == 0 || len[kSrc] != cap * 2 || len[kDst] != cap * 2 || len[kPorts] != cap * 2 || len[kNext] != cap * 2 ||
      len[kPackets] != cap * 2 || len[kBytes] != cap * 2 || len[kState] != cap || len[kFlags] != cap ||
      len[kExpires] != cap || len[kMarks] != cap || len[kAux] != cap * 2 ||
      len[kTimeouts] != 3 || nb == 0 || (nb & (nb - 1)) != 0)
    return ThrowErrnoRaw(env, "ctBind", EINVAL);
  uint32_t seed;
  if (napi_get_value_uint32(env, argv[kArrCount], &seed) != napi_ok) return ThrowErrnoRaw(env, "ctBind", EINVAL);
  for (int i = 0; i < kArrCount; i++) napi_create_reference(env, argv[i], 1, &t->refs[i]);
  t->src = static_cast<int32_t*>(data[kSrc]);
  t->dst = static_cast<int32_t*>(data[kDst]);
  t->ports = static_cast<int32_t*>(data[kPorts]);
  t->next = static_cast<int32_t*>(data[kNext]);
  t->packets = static_cast<double*>(data[kPackets]);
  t->bytes = static_cast<double*>(data[kBytes]);
  t->proto = static_cast<uint8_t*>(data[kProto]);
  t->state = static_cast<uint8_t*>(data[kState]);
  t->flags = static_cast<uint8_t*>(data[kFlags]);
  t->expires = static_cast<double*>(data[kExpires]);
  t->buckets = static_cast<int32_t*>(data[kBuckets]);
  t->timeouts = static_cast<double*>(data[kTimeouts]);
  t->marks = static_cast<int32_t*>(data[kMarks]);
  t->aux = static_cast<int32_t*>(data[kAux]);
  t->mask = static_cast<uint32_t>(nb - 1);
  t->seed = seed;
  napi_value ext;
  Table* raw = t.release();
  if (napi_create_external(env, raw, FinalizeTable, nullptr, &ext) != napi_ok) {
    FinalizeTable(env, raw, nullptr);
    return ThrowErrnoRaw(env, "ctBind", ENOMEM);
  }
  return ext;
}

// Where a frame's inner Ethernet header is, by the port's framing (ctPrepass's `framing`).
enum Framing : int32_t {
  kPod = 0,        // a pod's (or the host's) frame: the Ethernet header at START
  kVxlanUdp = 1,   // the overlay socket's UDP payload: the VXLAN header at START
  kVxlanFrame = 2  // a whole underlay frame: Ethernet, IPv4, UDP, VXLAN
};

// Inner: the offset of the inner Ethernet header of the VXLAN datagram at [s, e) of `framing`,
// or -1 when the VXLAN header is not one the overlay's codec takes for `vni` (the I flag alone,
// reserved bits clear: Linux's and the codec's default; a laxer configuration leaves more
// frames to JS, never fewer).
inline int64_t Inner(const uint8_t* a, int64_t s, int64_t e, int32_t framing, uint32_t vni) {
  int64_t v = s;
  if (framing == kVxlanFrame) {
    if (e - s < 14 + 20 + 8 || Be16(a + s + 12) != 0x0800) return -1;
    const uint8_t* ip = a + s + 14;
    const uint32_t hl = (ip[0] & 0x0f) << 2;
    if ((ip[0] >> 4) != 4 || hl < 20 || ip[9] != kUdp || (Be16(ip + 6) & 0x3fff) != 0) return -1;
    v = s + 14 + hl + 8;
  }
  if (e - v < 8) return -1;
  const uint8_t* x = a + v;
  if (x[0] != 0x08 || x[1] != 0 || x[2] != 0 || x[3] != 0 || x[7] != 0 || ((uint32_t(x[4]) << 16) | (uint32_t(x[5]) << 8) | x[6]) != vni) return -1;
  return v + 8;
}

// Packets: how many packets processBatch loads from the (untruncated) frame `m`: one, or for an
// overlay frame read with UDP GRO, one per GSO_SIZE bytes (none when it is empty).
inline int64_t Packets(const int32_t* m, int32_t framing) {
  const int64_t s = m[kMetaStart], e = m[kMetaEnd], g = framing == kPod ? 0 : m[kMetaGsoSize];
  if (g <= 0) return 1;
  return e > s ? (e - s + g - 1) / g : 0;
}

// ctPrepass(table, arena, meta, n, now, framing, vni, podIp, vlen, out, room) -> how many
// packets it took, or -EINVAL / -ENOSPC (out too short); 0 when `room` (free entries) is below
// the batch's packets. Frames [0, n) of the batch, one `out` slot per packet in the order the
// pipeline loads them: none for a TRUNCATED frame, one per datagram of an overlay frame read
// with UDP GRO (GSO_SIZE bytes each), one for any other frame; every slot is written when it
// returns 0 or more: the node a packet was taken on (with the bits above), kMiss for a TCP or
// UDP packet whose tuple has no live connection, -1 for the rest. podIp != 0: a packet whose
// source is another address is left alone (the ingress stage drops it as spoofed). vlen: the
// length of the virtio-net header in front of each pod frame (0: none), whose NEEDS_CSUM flag
// says the frame's checksum is partial (for Translate).
napi_value CtPrepass(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  void* ext = nullptr;
  uint8_t* arena;
  size_t arenaLen, metaLen, outLen;
  int32_t *meta, *out, n, framing, vni, podIp, vlen, room;
  double now;
  if (argc < 11 || napi_get_value_external(env, argv[0], &ext) != napi_ok || !ArgBuffer(env, argv[1], &arena, &arenaLen) ||
      !ArgI32Array(env, argv[2], &meta, &metaLen) || !ArgI32(env, argv[3], &n) || napi_get_value_double(env, argv[4], &now) != napi_ok ||
      !ArgI32(env, argv[5], &framing) || !ArgI32(env, argv[6], &vni) || !ArgI32(env, argv[7], &podIp) || !ArgI32(env, argv[8], &vlen) ||
      !ArgI32Array(env, argv[9], &out, &outLen) || !ArgI32(env, argv[10], &room) ||
      n < 0 || framing < kPod || framing > kVxlanFrame || vlen < 0 || (vlen != 0 && framing != kPod) || static_cast<size_t>(n) * kMetaStride > metaLen)
    return RetI32(env, -EINVAL);
  Table& t = *static_cast<Table*>(ext);
  // The slots first, all -1; a frame's slot gets its node once its packet is taken.
  size_t slots = 0;
  for (int32_t i = 0; i < n; i++) {
    const int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
    if ((m[kMetaFlags] & kFlagTruncated) == 0) slots += Packets(m, framing);
  }
  if (slots > outLen) return RetI32(env, -ENOSPC);
  for (size_t k = 0; k < slots; k++) out[k] = kNil;
  // Fewer free entries than packets: a new connection of this batch might need an entry
  // evicted (ConnTable.makeRoom), and that choice depends on the LRU order and flags this pass
  // would change ahead of the packets before it. Not run then: the batch goes to JS in order.
  if (slots > static_cast<size_t>(room)) return RetI32(env, 0);
  // Entries a packet of this batch left to JS: their later packets go to JS too.
  int32_t held[kHeld];
  int nheld = 0;
  int32_t taken = 0;
  size_t k = 0;
  for (int32_t i = 0; i < n; i++) {
    const int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
    if ((m[kMetaFlags] & kFlagTruncated) != 0) continue;
    const int64_t s0 = m[kMetaStart], e0 = m[kMetaEnd], g = framing == kPod ? 0 : m[kMetaGsoSize];
    const int64_t count = Packets(m, framing);
    if (s0 < 0 || e0 > static_cast<int64_t>(arenaLen) || s0 > e0) {
      k += count;
      continue;
    }
    // One packet per frame, or per datagram of a UDP GRO read (as processBatch loads them).
    for (int64_t d = 0; d < count; d++) {
      const size_t slot = k++;
      const int64_t ds = s0 + d * g, de = g > 0 && ds + g < e0 ? ds + g : e0;
      const int64_t s = framing == kPod ? ds : Inner(arena, ds, de, framing, static_cast<uint32_t>(vni));
      Packet p;
      if (s >= 0 && Parse(arena, s, de, &p) && (podIp == 0 || p.src == podIp)) {
        const int32_t node = Lookup(t, p.proto, p.src, p.dst, p.ports, now);
        if (node == kNil) {
          // No connection: the stages need not look for one (ConnTable.missed says until when).
          if (p.hasPorts && (p.proto == kTcp || p.proto == kUdp)) out[slot] = kMiss;
        } else {
          const int32_t ent = node >> 1;
          bool isHeld = false;
          for (int h = 0; h < nheld && !isHeld; h++) isHeld = held[h] == ent;
          const bool easy = p.proto == kUdp || (p.proto == kTcp && t.state[ent] == kEstablished && (p.tcpFlags & kTcpSynFinRst) == 0);
          if (isHeld) {
            // a packet of this connection went to JS earlier in the batch: so do the rest
          } else if (easy) {
            int32_t v = Seen(t, node, p.proto, p.len, now) ? node | kTouch : node;
            // Whether each policy stage passes it as it is (enforcer.ts): a reply, or a
            // connection that stage allowed.
            v |= ((node & 1) != 0 ? kMarkPolicy : t.marks[ent] & kMarkPolicy) << kPassShift;
            // A Service's packet, to its backend or back from it: translated here (see the top).
            if ((t.marks[ent] & ((node & 1) == 0 ? kMarkPrepassDnat : kMarkPrepassReply)) != 0 && p.hasPorts && (vlen == 0 || s >= vlen)) {
              const bool partial = framing == kPod ? vlen != 0 && (arena[s - vlen] & 1) != 0  // VIRTIO_NET_HDR_F_NEEDS_CSUM
                                                   : PartialInner(arena, p);
              Translate(t, arena, p, node, partial);
              v |= kNat;
            }
            out[slot] = v;
            taken++;
          } else if (nheld < kHeld) {
            held[nheld++] = ent;
          } else {
            return RetI32(env, taken);  // no room to remember one more: the rest go to JS (their slots are -1)
          }
        }
      }
    }
  }
  return RetI32(env, taken);
}

}  // namespace

void RegisterConntrack(Napi::Env env, Napi::Object exports) {
  SetRaw(env, exports, "ctBind", CtBind);
  SetRaw(env, exports, "ctPrepass", CtPrepass);
}

}  // namespace flatnet
