// flatnet addon: shared declarations.
//
// The addon does system calls, with one exception: conntrack.cc, the connection table's batch
// pre-pass (it parses a batch's packets and counts them on the JS-owned table's entries, and
// applies to a Service's packets the translation JS chose and stored with their connection; the
// table, its policy and its NAT decisions stay in JS). Two kinds of entry points:
//
//  - control calls (open, bind, ioctl, setns) throw a JS Error carrying `errno` (negative, as in
//    Node's ErrnoException) and `syscall` ("ioctl(TUNSETIFF)"); src/io/native.ts rewraps it as
//    a NativeError with the errno name as `code`;
//  - hot calls (batched read/write) take caller-owned memory (one arena Buffer + one Int32Array
//    of per-frame metadata, META_STRIDE ints per frame, as in src/buf/batch.ts), never create a
//    JS object per frame, never throw, and return a count or -errno. Bad arguments give -EINVAL.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

namespace flatnet {

// Per-frame metadata layout; must match src/buf/batch.ts (Meta, META_STRIDE, MetaFlag).
constexpr int kMetaStride = 8;
constexpr int kMetaStart = 0;
constexpr int kMetaEnd = 1;
constexpr int kMetaAddr = 2;
constexpr int kMetaPort = 3;
constexpr int kMetaGsoSize = 4;
constexpr int kMetaFlags = 5;
constexpr int kMetaAux = 6;  // UDP send of a scatter train: where its payload starts
constexpr int kMetaTos = 7;  // UDP receive: the outer IPv4 TOS byte (IP_RECVTOS); scatter train: payload bytes
constexpr int kFlagTruncated = 1;
constexpr int kFlagTxFailed = 2;  // set by a batched write on every frame it did not send
// A UDP-GSO train in pieces (udpSend): [START, END) holds the segments' headers back to back,
// each (flags >> kFlagScatterHdrShift) & 0xff bytes; the payloads lie contiguous at AUX, TOS
// bytes in all, GSO_SIZE - header bytes each (the last may be shorter).
constexpr int kFlagScatter = 4;
constexpr int kFlagScatterHdrShift = 8;

// MarkTxFailed flags frames [from, to) as not sent (errors and drops alike).
inline void MarkTxFailed(int32_t* meta, int32_t from, int32_t to) {
  for (int32_t i = from; i < to; i++) meta[static_cast<int64_t>(i) * kMetaStride + kMetaFlags] |= kFlagTxFailed;
}

// Layout of the `res` Int32Array that batched writes fill (mirrored in src/io/native.ts).
constexpr int kResErrors = 0;   // frames rejected with a hard error (skipped)
constexpr int kResDropped = 1;  // frames not taken because the queue was full (EAGAIN/ENOBUFS)
constexpr int kResErrno = 2;    // last errno seen (positive), 0 if none
constexpr int kResFlags = 3;    // kResFlagGsoEio
constexpr int kResNext = 4;     // index of the first frame not processed (== count when done)
constexpr int kResBytes = 5;    // bytes accepted (frame bytes, without vnet headers)
constexpr int kResLen = 8;
constexpr int kResFlagGsoEio = 1;

// Largest number of messages handed to one recvmmsg/sendmmsg call (the kernel caps vlen at
// UIO_MAXIOV = 1024). Longer batches are processed in chunks.
constexpr int kChunk = 1024;

struct PollHandle;
struct Scratch;  // mmsghdr/iovec/address/cmsg arrays for one chunk; see scratch.h

// Per-environment state (main thread and each worker have their own): the descriptors this
// addon opened and the poll handles it owns. An async cleanup hook closes both when the
// environment goes away, so a worker or the process can end with ports still open.
struct EnvState {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  std::unordered_set<int> fds;
  std::unordered_map<int32_t, PollHandle*> polls;
  int32_t nextPollId = 1;
  napi_async_cleanup_hook_handle cleanupHandle = nullptr;
  int closingPolls = 0;
  bool tearingDown = false;
  Scratch* scratch = nullptr;  // allocated on first batched socket call
};

EnvState* GetState(napi_env env);
void InitState(Napi::Env env);

// Registers an fd as owned by this addon (closed by close() or at environment teardown).
void TrackFd(napi_env env, int fd);

// Throws a JS Error with errno (negative) and syscall properties. Returns an empty value.
Napi::Value ThrowErrno(Napi::Env env, const char* syscall, int err);
// Same, for use from raw napi callbacks.
napi_value ThrowErrnoRaw(napi_env env, const char* syscall, int err);

// Raw-napi argument helpers for hot calls: false when the argument has the wrong type.
bool ArgI32(napi_env env, napi_value v, int32_t* out);
bool ArgBuffer(napi_env env, napi_value v, uint8_t** data, size_t* len);
bool ArgI32Array(napi_env env, napi_value v, int32_t** data, size_t* len);
napi_value RetI32(napi_env env, int32_t v);

// Each module adds its functions to `exports`.
void RegisterFd(Napi::Env env, Napi::Object exports);
void RegisterTap(Napi::Env env, Napi::Object exports);
void RegisterPacket(Napi::Env env, Napi::Object exports);
void RegisterUdp(Napi::Env env, Napi::Object exports);
void RegisterPoll(Napi::Env env, Napi::Object exports);
void RegisterLink(Napi::Env env, Napi::Object exports);
void RegisterNetns(Napi::Env env, Napi::Object exports);
void RegisterXdp(Napi::Env env, Napi::Object exports);
void RegisterNexthop(Napi::Env env, Napi::Object exports);
void RegisterConntrack(Napi::Env env, Napi::Object exports);

// Adds a raw napi callback to `exports` under `name`.
void SetRaw(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb);

// Closes every poll handle of `st` (used by the cleanup hook). Defined in poll.cc.
void CloseAllPolls(EnvState* st);

// True for errno values that mean "the kernel queue is full, try later".
inline bool IsQueueFull(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS; }
// True for errno values that make the descriptor itself unusable: stop the whole batch.
inline bool IsFatalFd(int e) { return e == EBADF || e == EBADFD || e == ENOTSOCK || e == EFAULT; }

}  // namespace flatnet
