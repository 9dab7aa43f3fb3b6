// Per-environment state and teardown. At environment exit (process exit, worker end) an async
// cleanup hook stops and closes every poll handle and closes every descriptor this addon still
// owns; Node keeps the loop turning until the last uv_close callback has run, so a worker's
// loop closes without open handles and the process never waits on us.
#include <unistd.h>

#include "flatnet.h"
#include "scratch.h"

namespace flatnet {

static void FinalizeState(napi_env env, void* data, void* hint) {
  EnvState* st = static_cast<EnvState*>(data);
  for (int fd : st->fds) close(fd);
  st->fds.clear();
  delete st->scratch;
  delete st;
}

static void OnCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  EnvState* st = static_cast<EnvState*>(arg);
  st->tearingDown = true;
  st->cleanupHandle = handle;
  CloseAllPolls(st);  // uv_close on each; the last close callback removes the hook
  for (int fd : st->fds) close(fd);
  st->fds.clear();
  if (st->closingPolls == 0) {
    st->cleanupHandle = nullptr;
    napi_remove_async_cleanup_hook(handle);
  }
}

void InitState(Napi::Env env) {
  EnvState* st = new EnvState();
  st->env = env;
  napi_get_uv_event_loop(env, &st->loop);
  napi_set_instance_data(env, st, FinalizeState, nullptr);
  napi_add_async_cleanup_hook(env, OnCleanup, st, nullptr);
}

EnvState* GetState(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<EnvState*>(data);
}

void TrackFd(napi_env env, int fd) { GetState(env)->fds.insert(fd); }

}  // namespace flatnet
