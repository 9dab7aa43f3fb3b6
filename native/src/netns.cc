// Network namespaces for the calling thread (setns(2) with CLONE_NEWNET). Only the calling
// thread moves: sockets and TAP devices created afterwards belong to the namespace entered,
// and keep belonging to it after the thread moves back. Used to create ports inside a
// namespace from a process that lives elsewhere (tests, the lab).
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <string>

#include "flatnet.h"

namespace flatnet {

// netnsEnter(path) -> savedFd: moves the calling thread into the namespace at `path`
// (/var/run/netns/NAME or /proc/PID/ns/net) and returns a descriptor of the one it left.
static Napi::Value NetnsEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "netnsEnter(path)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) return ThrowErrno(env, "open(/proc/thread-self/ns/net)", errno);
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(saved);
    return ThrowErrno(env, "open(netns)", e);
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(saved);
    return ThrowErrno(env, "setns", e);
  }
  close(target);
  return Napi::Number::New(env, saved);
}

// netnsRestore(savedFd): moves the thread back and closes savedFd.
static Napi::Value NetnsRestore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "netnsRestore(savedFd)").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  int saved = info[0].As<Napi::Number>().Int32Value();
  int r = setns(saved, CLONE_NEWNET);
  int e = errno;
  close(saved);
  if (r < 0) return ThrowErrno(env, "setns", e);
  return env.Undefined();
}

void RegisterNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsEnter", Napi::Function::New(env, NetnsEnter, "netnsEnter"));
  exports.Set("netnsRestore", Napi::Function::New(env, NetnsRestore, "netnsRestore"));
}

}  // namespace flatnet
