// Descriptor ownership: close() only closes descriptors this addon opened and has not closed
// yet, so a stale or foreign fd number (a port closed twice, an fd reused by Node) is answered
// with -EBADF instead of closing someone else's descriptor.
#include <unistd.h>

#include "flatnet.h"

namespace flatnet {

// close(fd) -> 0 | -EBADF
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd;
  if (argc < 1 || !ArgI32(env, argv[0], &fd)) return RetI32(env, -EINVAL);
  EnvState* st = GetState(env);
  auto it = st->fds.find(fd);
  if (it == st->fds.end()) return RetI32(env, -EBADF);
  st->fds.erase(it);
  // Linux releases the descriptor even when close() reports an error (EINTR included).
  int r = close(fd);
  return RetI32(env, r == 0 ? 0 : -errno);
}

// ownedFds() -> number of descriptors this environment's addon instance holds (for leak tests)
static napi_value OwnedFds(napi_env env, napi_callback_info info) {
  return RetI32(env, static_cast<int32_t>(GetState(env)->fds.size()));
}

void RegisterFd(Napi::Env env, Napi::Object exports) {
  SetRaw(env, exports, "close", Close);
  SetRaw(env, exports, "ownedFds", OwnedFds);
}

}  // namespace flatnet
