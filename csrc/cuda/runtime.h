// The CUDA runtime side of gradflow._cuda: error handling, the one stream, the caching
// allocator, device arrays and the random-number generator state. Plain C++ (no pybind11,
// no CUDA syntax), so both the .cu files and bind_cuda.cpp include it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradflow::cuda {

// A CUDA runtime failure; the message is CUDA's own, prefixed by where it happened.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws CudaError when `status` (a cudaError_t) is not cudaSuccess.
void check(int status, const char* what);
// Throws CudaError when the last kernel launch failed.
void check_launch(const char* kernel);

// The stream every kernel and copy of the module runs on (created on first use).
void* stream();
// Waits for the stream, then raises (std::out_of_range) a deferred error a kernel reported.
void synchronize();

// Deferred errors: a kernel that meets bad data it cannot report at once (a class index out of
// range) stores its code here, and the next host wait (synchronize, a copy) raises it, as
// CUDA's device-side asserts surface at the next synchronisation, without a wait per call.
constexpr int kDeferredTargetOutOfRange = 1;
int* deferred_error_flag();  // the device's pointer to the code

// Counters for tests: host waits on the stream (each synchronisation) and device-to-host copies.
uint64_t host_waits();
uint64_t device_to_host_copies();

// ---------------------------------------------------------------- caching allocator
// Blocks are rounded up to a size bucket (512 B steps below 1 MiB, 2 MiB steps above) and,
// when freed, kept on that bucket's free list for the next request of the same bucket. All
// work runs on one stream, so a block freed by the host can be handed out again at once:
// later kernels are ordered after earlier ones that still use it.
void* device_malloc(size_t nbytes);
void device_free(void* ptr, size_t nbytes);
size_t memory_allocated();      // bytes in live blocks (bucket sizes)
size_t max_memory_allocated();  // peak of memory_allocated since start or the last reset
size_t memory_reserved();       // bytes held from cudaMalloc, live and cached
void reset_peak_memory_stats();
void empty_cache();             // cudaFree every cached (not live) block

// ---------------------------------------------------------------- device arrays
enum class DType : int { f32 = 0, f64 = 1, i64 = 2, b8 = 3 };
size_t itemsize(DType t);
const char* dtype_name(DType t);

// A block of device memory; returned to the allocator when the last array using it dies.
// Memory another library owns (a DLPack import) is never the allocator's: its storage calls
// `release` instead.
struct Storage {
  void* ptr = nullptr;
  size_t nbytes = 0;
  std::function<void()> release;
  explicit Storage(size_t n);
  Storage(void* external, size_t n, std::function<void()> release_external);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

constexpr int kMaxDims = 8;

// A strided view of a Storage: element (i0, i1, ...) lives at
// storage + (offset + sum_d i_d * strides[d]) * itemsize. Strides are in elements and may be
// zero (broadcast) or negative (flip).
struct DeviceArray {
  std::shared_ptr<Storage> storage;
  std::vector<int64_t> shape, strides;
  int64_t offset = 0;
  DType dtype = DType::f32;

  int64_t numel() const;
  int ndim() const { return static_cast<int>(shape.size()); }
  bool is_contiguous() const;  // C order (dims of size 1 ignored)
  char* data() const;          // address of element (0, ..., 0)
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);
DeviceArray empty(const std::vector<int64_t>& shape, DType dtype);

// Host <-> device copies of C-contiguous data; both wait for the copy to finish.
void copy_to_device(void* dst, const void* src, size_t nbytes);
void copy_to_host(void* dst, const void* src, size_t nbytes);

// ---------------------------------------------------------------- events
// A CUDA event for timing the work queued on the module's stream, as torch.cuda.Event.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record();       // marks the point after the work queued so far
  void synchronize();  // waits until the stream has reached the recorded point
  // Milliseconds from this event to `end`; both recorded, end reached (else CudaError).
  float elapsed_ms(const Event& end) const;

 private:
  void* event_ = nullptr;  // cudaEvent_t
};

// ---------------------------------------------------------------- random numbers
// Counter-based: every draw is Philox4x32-10(counter, key = seed); `philox_offset` counts
// the 128-bit blocks handed out so far, so a seed and a sequence of calls fix the values.
void manual_seed(uint64_t seed);
uint64_t philox_seed();
uint64_t philox_take(uint64_t blocks);  // returns the first counter, advances the offset

}  // namespace gradflow::cuda
