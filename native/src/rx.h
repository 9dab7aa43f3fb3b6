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
}

// Validates frame i of a write list: [start - vnetHdrLen, end) inside the arena.
inline bool TxFrameOk(const int32_t* m, size_t arenaLen, int32_t vnetHdrLen) {
  int32_t start = m[kMetaStart], end = m[kMetaEnd];
  return start - vnetHdrLen >= 0 && end >= start && static_cast<size_t>(end) <= arenaLen;
}

inline void ResReset(int32_t* res) {
  for (int i = 0; i < kResLen; i++) res[i] = 0;
}

}  // namespace flatnet
