// A growable scratch buffer, 64-byte aligned, that never shrinks: kernels keep one per
// thread (thread_local) so steady-state calls allocate nothing.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

namespace ember::cpu {

// std::bad_alloc (pybind11 makes it a MemoryError) that says how much was asked for.
class WorkspaceAllocError : public std::bad_alloc {
 public:
  explicit WorkspaceAllocError(size_t bytes)
      : msg_("out of memory: a kernel workspace of " + std::to_string(bytes >> 20) + " MiB could not be allocated") {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

struct Workspace {
  void* ptr = nullptr;
  size_t cap = 0;
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(ptr); }
  // At least n elements of T; the contents are not kept when it grows.
  template <class T>
  T* get(int64_t n) {
    size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T);
    if (bytes > cap) {
      std::free(ptr);
      cap = (bytes + 63) / 64 * 64;
      ptr = std::aligned_alloc(64, cap);
      if (!ptr) {
        cap = 0;
        throw WorkspaceAllocError(bytes);
      }
    }
    return static_cast<T*>(ptr);
  }
};

}  // namespace ember::cpu
