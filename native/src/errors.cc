// Errors for control calls, and argument helpers for hot calls.
#include <cstring>
#include <string>

#include "flatnet.h"

namespace flatnet {

static napi_value MakeErrnoError(napi_env env, const char* syscall, int err) {
  std::string msg = std::string(syscall) + ": " + strerror(err);
  napi_value message, error, errnoValue, syscallValue;
  napi_create_string_utf8(env, msg.c_str(), msg.size(), &message);
  napi_create_error(env, nullptr, message, &error);
  napi_create_int32(env, -err, &errnoValue);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue);
  napi_set_named_property(env, error, "errno", errnoValue);
  napi_set_named_property(env, error, "syscall", syscallValue);
  return error;
}

napi_value ThrowErrnoRaw(napi_env env, const char* syscall, int err) {
  napi_throw(env, MakeErrnoError(env, syscall, err));
  return nullptr;
}

Napi::Value ThrowErrno(Napi::Env env, const char* syscall, int err) {
  napi_throw(env, MakeErrnoError(env, syscall, err));
  return Napi::Value();
}

bool ArgI32(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

bool ArgBuffer(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool isBuffer = false;
  if (napi_is_buffer(env, v, &isBuffer) != napi_ok || !isBuffer) return false;
  void* p = nullptr;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return false;
  *data = static_cast<uint8_t*>(p);
  return true;
}

bool ArgI32Array(napi_env env, napi_value v, int32_t** data, size_t* len) {
  bool isTyped = false;
  if (napi_is_typedarray(env, v, &isTyped) != napi_ok || !isTyped) return false;
  napi_typedarray_type type;
  void* p = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &p, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_int32_array) return false;
  *data = static_cast<int32_t*>(p);
  return true;
}

napi_value RetI32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

void SetRaw(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
}

}  // namespace flatnet
