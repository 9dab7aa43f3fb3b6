// Per-environment scratch arrays for recvmmsg/sendmmsg: one chunk of message headers, iovecs,
// addresses and control buffers. Allocated once per environment (thread), never per call.
#pragma once

#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "flatnet.h"

namespace flatnet {

// Room for the cmsgs of one message: PACKET_AUXDATA (struct tpacket_auxdata, 20 bytes) on
// AF_PACKET receive; UDP_GRO (int) and IP_TOS (1 byte) on UDP receive; UDP_SEGMENT (uint16) on
// UDP send.
constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(struct tpacket_auxdata)) + CMSG_SPACE(sizeof(int));

// Iovecs for the pieces of scatter trains (udpSend) in one chunk of messages.
constexpr int kSgIov = 4096;

union AnyAddr {
  struct sockaddr_in in;
  struct sockaddr_ll ll;
};

struct Scratch {
  struct mmsghdr msgs[kChunk];
  struct iovec iov[kChunk];
  AnyAddr addr[kChunk];
  alignas(struct cmsghdr) unsigned char cmsg[kChunk][kCmsgSpace];
  struct iovec sg[kSgIov];  // scatter trains' pieces: header, payload, header, payload, ...
  int32_t frame[kChunk];  // frame index of each message (sends)
  uint8_t last[kChunk];   // 1 when the message is the frame's last segment (sends)
};

inline Scratch* GetScratch(napi_env env) {
  EnvState* st = GetState(env);
  if (st->scratch == nullptr) st->scratch = new Scratch();
  return st->scratch;
}

}  // namespace flatnet
