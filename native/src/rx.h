// Receive-side helpers shared by the TAP, AF_PACKET and UDP readers.
#pragma once

#include "flatnet.h"

namespace flatnet {

// Checks that `max` slots of `slotSize` bytes fit in the arena and their metadata in `meta`,
// and that the headroom leaves room for the vnet header before and at least one byte after.
inline bool RxGeometryOk(size_t arenaLen, size_t metaLen, int32_t slotSize, int32_t headroom,
                         int32_t max, int32_t vnetHdrLen) {
  if (slotSize <= 0 || headroom < 0 || vnetHdrLen < 0 || max < 0) return false;
  if (headroom < vnetHdrLen || headroom >= slotSize) return false;
  if (static_cast<int64_t>(max) * slotSize > static_cast<int64_t>(arenaLen)) return false;
  if (static_cast<int64_t>(max) * kMetaStride > static_cast<int64_t>(metaLen)) return false;
  return true;
}

// Fills frame i's metadata after a receive of `got` bytes (frame bytes, without any vnet
// header) into a window of `room` bytes starting at `start`.
inline void SetRxMeta(int32_t* meta, int32_t i, int32_t start, int64_t got, int32_t room,
                      bool truncated) {
  int32_t* m = meta + static_cast<int64_t>(i) * kMetaStride;
  int32_t len = got > room ? room : static_cast<int32_t>(got < 0 ? 0 : got);
  m[kMetaStart] = start;
  m[kMetaEnd] = start + len;
  m[kMetaAddr] = 0;
  m[kMetaPort] = 0;
  m[kMetaGsoSize] = 0;
  m[kMetaFlags] = (truncated || got > room) ? kFlagTruncated : 0;
  m[kMetaTos] = 0;
}

// Validates frame i of a write list: [start - vnetHdrLen, end) inside the arena.
inline bool TxFrameOk(const int32_t* m, size_t arenaLen, int32_t vnetHdrLen) {
  int32_t start = m[kMetaStart], end = m[kMetaEnd];
  return start - vnetHdrLen >= 0 && end >= start && static_cast<size_t>(end) <= arenaLen;
}

inline void ResReset(int32_t* res) {
  for (int i = 0; i < kResLen; i++) res[i] = 0;
}


// The arguments of a batched read: (fd, arena, slotSize, headroom, meta, max[, vnetHdrLen]).
struct RxArgs {
  int32_t fd = -1, slotSize = 0, headroom = 0, max = 0, vnetHdrLen = 0;
  uint8_t* arena = nullptr;
  size_t arenaLen = 0, metaLen = 0;
  int32_t* meta = nullptr;
};

// Reads and checks a batched read's arguments (types, then RxGeometryOk). `withVnet`: a seventh
// argument carries vnetHdrLen (TAP, AF_PACKET); without it the header length is 0 (UDP).
inline bool ParseRxArgs(napi_env env, napi_callback_info info, bool withVnet, RxArgs* a) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  const size_t need = withVnet ? 7 : 6;
  if (argc < need || !ArgI32(env, argv[0], &a->fd) || !ArgBuffer(env, argv[1], &a->arena, &a->arenaLen) ||
      !ArgI32(env, argv[2], &a->slotSize) || !ArgI32(env, argv[3], &a->headroom) ||
      !ArgI32Array(env, argv[4], &a->meta, &a->metaLen) || !ArgI32(env, argv[5], &a->max) ||
      (withVnet && !ArgI32(env, argv[6], &a->vnetHdrLen))) {
    return false;
  }
  return RxGeometryOk(a->arenaLen, a->metaLen, a->slotSize, a->headroom, a->max, a->vnetHdrLen);
}

// The arguments of a batched frame write: (fd, arena, meta, count, vnetHdrLen, res).
struct TxArgs {
  int32_t fd = -1, count = 0, vnetHdrLen = 0;
  uint8_t* arena = nullptr;
  size_t arenaLen = 0, metaLen = 0, resLen = 0;
  int32_t *meta = nullptr, *res = nullptr;
};

// Reads and checks a batched frame write's arguments: `count` frames of metadata in `meta`, a
// `res` of at least kResLen ints, non-negative count and header length.
inline bool ParseTxArgs(napi_env env, napi_callback_info info, TxArgs* a) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  return argc >= 6 && ArgI32(env, argv[0], &a->fd) && ArgBuffer(env, argv[1], &a->arena, &a->arenaLen) &&
         ArgI32Array(env, argv[2], &a->meta, &a->metaLen) && ArgI32(env, argv[3], &a->count) &&
         ArgI32(env, argv[4], &a->vnetHdrLen) && ArgI32Array(env, argv[5], &a->res, &a->resLen) &&
         a->resLen >= static_cast<size_t>(kResLen) && a->count >= 0 && a->vnetHdrLen >= 0 &&
         static_cast<int64_t>(a->count) * kMetaStride <= static_cast<int64_t>(a->metaLen);
}

}  // namespace flatnet
