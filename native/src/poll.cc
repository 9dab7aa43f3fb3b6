// Readiness through libuv: one uv_poll_t per watched descriptor, on the environment's own loop.
// The JS callback runs once per wakeup (level-triggered: it runs again on the next loop turn
// while data is waiting), through napi_make_callback with an async context so that
// process.nextTick callbacks and promise reactions run after it, as for any I/O callback.
//
// Handles are identified by a small integer id, owned by the JS port that opened them:
// pollOpen -> pollStart/pollStop/pollRef -> pollClose. At environment teardown the cleanup
// hook closes whatever is left (state.cc).
#include "flatnet.h"

namespace flatnet {

struct PollHandle {
  uv_poll_t poll;
  EnvState* st = nullptr;
  int32_t id = 0;
  napi_ref cb = nullptr;
  napi_ref resource = nullptr;  // the async resource; also the callback's `this`
  napi_async_context ctx = nullptr;
};

static void OnClosed(uv_handle_t* h) {
  PollHandle* p = static_cast<PollHandle*>(h->data);
  EnvState* st = p->st;
  delete p;
  if (st->tearingDown && --st->closingPolls == 0 && st->cleanupHandle != nullptr) {
    napi_async_cleanup_hook_handle handle = st->cleanupHandle;
    st->cleanupHandle = nullptr;
    napi_remove_async_cleanup_hook(handle);
  }
}

// Releases the JS references (when JS may still be called) and closes the uv handle.
static void ClosePoll(PollHandle* p, bool releaseJs) {
  if (releaseJs) {
    if (p->cb != nullptr) napi_delete_reference(p->st->env, p->cb);
    if (p->resource != nullptr) napi_delete_reference(p->st->env, p->resource);
    if (p->ctx != nullptr) napi_async_destroy(p->st->env, p->ctx);
  }
  p->cb = nullptr;
  p->resource = nullptr;
  p->ctx = nullptr;
  uv_poll_stop(&p->poll);
  if (p->st->tearingDown) p->st->closingPolls++;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), OnClosed);
}

void CloseAllPolls(EnvState* st) {
  for (auto& kv : st->polls) ClosePoll(kv.second, false);
  st->polls.clear();
}

static void OnPoll(uv_poll_t* handle, int status, int events) {
  PollHandle* p = static_cast<PollHandle*>(handle->data);
  napi_env env = p->st->env;
  if (p->cb == nullptr) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, arg, result;
  if (napi_get_reference_value(env, p->cb, &fn) == napi_ok && fn != nullptr &&
      napi_get_reference_value(env, p->resource, &recv) == napi_ok && recv != nullptr) {
    napi_create_int32(env, status, &arg);  // 0, or a negative libuv error (the poll stopped)
    napi_status s = napi_make_callback(env, p->ctx, recv, fn, 1, &arg, &result);
    if (s == napi_pending_exception) {
      // An exception thrown by the callback goes where any I/O callback's would: to
      // process 'uncaughtException' (by default: print and exit), never silently lost.
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static PollHandle* Find(napi_env env, napi_value v) {
  int32_t id;
  if (!ArgI32(env, v, &id)) return nullptr;
  EnvState* st = GetState(env);
  auto it = st->polls.find(id);
  return it == st->polls.end() ? nullptr : it->second;
}

// pollOpen(fd, callback) -> id   (throws on failure; the poll is not started)
static Napi::Value PollOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "pollOpen(fd, callback)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  EnvState* st = GetState(env);
  int32_t fd = info[0].As<Napi::Number>().Int32Value();
  PollHandle* p = new PollHandle();
  p->st = st;
  int r = uv_poll_init(st->loop, &p->poll, fd);
  if (r < 0) {
    delete p;
    return ThrowErrno(env, "uv_poll_init", -r);
  }
  p->poll.data = p;
  napi_create_reference(env, info[1], 1, &p->cb);
  napi_value resource = Napi::Object::New(env);
  napi_value name = Napi::String::New(env, "flatnet:poll");
  napi_create_reference(env, resource, 1, &p->resource);
  napi_async_init(env, resource, name, &p->ctx);
  p->id = st->nextPollId++;
  st->polls[p->id] = p;
  return Napi::Number::New(env, p->id);
}

// pollStart(id) -> 0 | -errno
static napi_value PollStart(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  PollHandle* p = argc < 1 ? nullptr : Find(env, argv[0]);
  if (p == nullptr) return RetI32(env, -EBADF);
  return RetI32(env, uv_poll_start(&p->poll, UV_READABLE, OnPoll));
}

// pollStop(id) -> 0 | -errno
static napi_value PollStop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  PollHandle* p = argc < 1 ? nullptr : Find(env, argv[0]);
  if (p == nullptr) return RetI32(env, -EBADF);
  return RetI32(env, uv_poll_stop(&p->poll));
}

// pollRef(id, keepAlive) -> 0 | -errno: a ref'd active poll keeps the event loop alive.
static napi_value PollRef(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  PollHandle* p = argc < 2 ? nullptr : Find(env, argv[0]);
  if (p == nullptr) return RetI32(env, -EBADF);
  bool on = false;
  napi_get_value_bool(env, argv[1], &on);
  if (on) uv_ref(reinterpret_cast<uv_handle_t*>(&p->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&p->poll));
  return RetI32(env, 0);
}

// pollClose(id) -> 0 | -EBADF. Must come before the descriptor is closed.
static napi_value PollClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  PollHandle* p = argc < 1 ? nullptr : Find(env, argv[0]);
  if (p == nullptr) return RetI32(env, -EBADF);
  p->st->polls.erase(p->id);
  ClosePoll(p, true);
  return RetI32(env, 0);
}

// openPolls() -> number of poll handles open in this environment (for leak tests)
static napi_value OpenPolls(napi_env env, napi_callback_info info) {
  return RetI32(env, static_cast<int32_t>(GetState(env)->polls.size()));
}

void RegisterPoll(Napi::Env env, Napi::Object exports) {
  exports.Set("pollOpen", Napi::Function::New(env, PollOpen, "pollOpen"));
  SetRaw(env, exports, "pollStart", PollStart);
  SetRaw(env, exports, "pollStop", PollStop);
  SetRaw(env, exports, "pollRef", PollRef);
  SetRaw(env, exports, "pollClose", PollClose);
  SetRaw(env, exports, "openPolls", OpenPolls);
}

}  // namespace flatnet
