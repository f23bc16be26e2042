// Result<T>: the value of an operation that can fail in an expected way
// (bad input, a full disk, a refused connection). Broken invariants are not
// Results: they abort through MTA_PANIC.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace mta::core {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(std::string message) {
  return Error{std::move(message)};
}

[[noreturn]] inline void panic(const char* func, const char* what) {
  std::fprintf(stderr, "panic: %s: %s\n", func, what);
  std::abort();
}

}  // namespace mta::core

// Aborts loudly with the function's name when an invariant is broken.
#define MTA_PANIC(what) ::mta::core::panic(__func__, (what))
#define MTA_ASSERT(cond)                                \
  do {                                                  \
    if (!(cond)) MTA_PANIC("assertion failed: " #cond); \
  } while (0)
