// Module entry: per-environment state, then each module's functions.
#include "flatnet.h"

namespace flatnet {

void RegisterStats(Napi::Env env, Napi::Object exports);  // stats.cc: kernel drop counters

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitState(env);
  RegisterFd(env, exports);
  RegisterTap(env, exports);
  RegisterPacket(env, exports);
  RegisterUdp(env, exports);
  RegisterPoll(env, exports);
  RegisterLink(env, exports);
  RegisterNetns(env, exports);
  RegisterStats(env, exports);
  RegisterXdp(env, exports);
  RegisterNexthop(env, exports);
  RegisterConntrack(env, exports);
  return exports;
}

}  // namespace flatnet

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return flatnet::Init(env, exports); }

NODE_API_MODULE(flatnet, InitModule)
