// The one exception a native kernel throws when its workspace cannot be allocated; the
// bindings (bind_util.h: run_nogil) turn it into a Python MemoryError naming the op.
#pragma once
#include <cstdint>
#include <new>

namespace gradflow {

class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(int64_t bytes) : bytes_(bytes) {}
  int64_t bytes() const { return bytes_; }
  const char* what() const noexcept override { return "gradflow: workspace allocation failed"; }

 private:
  int64_t bytes_;
};

}  // namespace gradflow
