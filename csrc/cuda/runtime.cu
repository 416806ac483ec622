// Runtime pieces of gradflow._cuda: errors, the stream, the caching allocator, device arrays,
// host <-> device copies and the Philox generator state. See runtime.h for the contracts.
#include <cuda_runtime.h>

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "cuda/iter.cuh"
#include "cuda/runtime.h"

namespace gradflow::cuda {

void check(int status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw CudaError(std::string("CUDA error in ") + what + ": " +
                  cudaGetErrorString(static_cast<cudaError_t>(status)));
}

void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

void* stream() {
  static cudaStream_t s = [] {
    check(cudaSetDevice(0), "cudaSetDevice");
    cudaStream_t created;
    check(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "cudaStreamCreate");
    return created;
  }();
  return s;
}

// ---------------------------------------------------------------- host waits
namespace {
std::atomic<uint64_t> g_host_waits{0}, g_device_to_host{0};

// The deferred-error code: pinned host memory mapped into the device, so a kernel's store is
// seen by the host after the next wait without a copy of its own.
int* deferred_host() {
  static int* host = [] {
    int* h = nullptr;
    stream();
    check(cudaHostAlloc(reinterpret_cast<void**>(&h), sizeof(int), cudaHostAllocMapped),
          "cudaHostAlloc");
    *h = 0;
    return h;
  }();
  return host;
}

const char* deferred_message(int code) {
  switch (code) {
    case kDeferredTargetOutOfRange:
      return "nll_loss / cross_entropy: a target class index was out of bounds (not in "
             "[0, n_classes) and not ignore_index); CUDA kernels run asynchronously, so this is "
             "reported at the first synchronisation after the call that met it";
    default:
      return "a CUDA kernel reported an error";
  }
}

// Waits for the stream; with `report`, raises a deferred error a kernel left since the last.
void wait_stream(const char* what, bool report) {
  ++g_host_waits;
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream())), what);
  if (!report) return;
  volatile int* flag = deferred_host();
  const int code = *flag;
  if (code == 0) return;
  *flag = 0;
  throw std::out_of_range(deferred_message(code));
}
}  // namespace

void synchronize() { wait_stream("synchronize", true); }

int* deferred_error_flag() {
  int* device = nullptr;
  check(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device), deferred_host(), 0),
        "cudaHostGetDevicePointer");
  return device;
}

uint64_t host_waits() { return g_host_waits.load(); }
uint64_t device_to_host_copies() { return g_device_to_host.load(); }

// ---------------------------------------------------------------- caching allocator
namespace {

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // bucket size -> cached blocks
  size_t allocated = 0, peak = 0, reserved = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: blocks may be freed during interpreter exit
  return *c;
}

size_t bucket(size_t nbytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  if (nbytes == 0) nbytes = 1;
  const size_t step = nbytes < (size_t(1) << 20) ? kSmall : kLarge;
  return (nbytes + step - 1) / step * step;
}

void release_cached(Cache& c) {
  for (auto& [size, blocks] : c.free_blocks) {
    for (void* p : blocks) {
      cudaFree(p);
      c.reserved -= size;
    }
  }
  c.free_blocks.clear();
}

}  // namespace

void* device_malloc(size_t nbytes) {
  Cache& c = cache();
  const size_t size = bucket(nbytes);
  std::lock_guard<std::mutex> lock(c.mu);
  void* p = nullptr;
  auto it = c.free_blocks.find(size);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    stream();  // makes device 0 current before the first allocation
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      wait_stream("cudaMalloc retry", false);
      release_cached(c);
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess)
      check(err, ("cudaMalloc of " + std::to_string(size) + " bytes").c_str());
    c.reserved += size;
  }
  c.allocated += size;
  if (c.allocated > c.peak) c.peak = c.allocated;
  return p;
}

void device_free(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  Cache& c = cache();
  const size_t size = bucket(nbytes);
  std::lock_guard<std::mutex> lock(c.mu);
  c.allocated -= size;
  c.free_blocks[size].push_back(ptr);
}

size_t memory_allocated() { std::lock_guard<std::mutex> l(cache().mu); return cache().allocated; }
size_t max_memory_allocated() { std::lock_guard<std::mutex> l(cache().mu); return cache().peak; }
size_t memory_reserved() { std::lock_guard<std::mutex> l(cache().mu); return cache().reserved; }

void reset_peak_memory_stats() {
  std::lock_guard<std::mutex> l(cache().mu);
  cache().peak = cache().allocated;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.free_blocks.empty()) return;
  // Kernels queued earlier may still use a cached block: let them finish before cudaFree.
  wait_stream("empty_cache", false);
  release_cached(c);
}

// ---------------------------------------------------------------- device arrays
size_t itemsize(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::b8: return 1;
  }
  return 1;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "?";
}

Storage::Storage(size_t n) : ptr(device_malloc(n)), nbytes(n) {}
Storage::Storage(void* external, size_t n, std::function<void()> release_external)
    : ptr(external), nbytes(n), release(std::move(release_external)) {}
Storage::~Storage() {
  if (release)
    release();
  else
    device_free(ptr, nbytes);
}

int64_t DeviceArray::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

bool DeviceArray::is_contiguous() const {
  int64_t expected = 1;
  for (int d = ndim() - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return numel() == 0;
    expected *= shape[d];
  }
  return true;
}

char* DeviceArray::data() const {
  return static_cast<char*>(storage->ptr) + offset * static_cast<int64_t>(itemsize(dtype));
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d] > 0 ? shape[d] : 1;
  }
  return strides;
}

DeviceArray empty(const std::vector<int64_t>& shape, DType dtype) {
  DeviceArray a;
  a.shape = shape;
  a.strides = contiguous_strides(shape);
  a.dtype = dtype;
  a.storage = std::make_shared<Storage>(static_cast<size_t>(a.numel()) * itemsize(dtype));
  return a;
}

void copy_to_device(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream());
  check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s), "copy to device");
  wait_stream("copy to device", true);  // the host buffer may go away next
}

void copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  cudaStream_t s = static_cast<cudaStream_t>(stream());
  ++g_device_to_host;
  check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s), "copy to host");
  wait_stream("copy to host", true);
}

// ---------------------------------------------------------------- index error flag
int* error_flag() {
  static int* flag = [] {
    int* f = nullptr;  // cudaMalloc, not the cache: it lives for the whole process
    stream();
    check(cudaMalloc(&f, sizeof(int)), "cudaMalloc");
    check(cudaMemsetAsync(f, 0, sizeof(int), static_cast<cudaStream_t>(stream())), "memset");
    return f;
  }();
  return flag;
}

bool take_error_flag() {
  int host = 0;
  copy_to_host(&host, error_flag(), sizeof(int));
  if (host != 0)
    check(cudaMemsetAsync(error_flag(), 0, sizeof(int), static_cast<cudaStream_t>(stream())),
          "memset");
  return host != 0;
}

// ---------------------------------------------------------------- events
Event::Event() {
  stream();  // makes device 0 current
  cudaEvent_t e;
  check(cudaEventCreate(&e), "cudaEventCreate");
  event_ = e;
}

Event::~Event() { cudaEventDestroy(static_cast<cudaEvent_t>(event_)); }

void Event::record() {
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream())),
        "cudaEventRecord");
}

void Event::synchronize() {
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cudaEventSynchronize");
}

float Event::elapsed_ms(const Event& end) const {
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(event_),
                             static_cast<cudaEvent_t>(end.event_)),
        "cudaEventElapsedTime");
  return ms;
}

// ---------------------------------------------------------------- random numbers
namespace {
uint64_t g_seed = 0, g_offset = 0;
std::mutex g_rng_mu;
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> l(g_rng_mu);
  g_seed = seed;
  g_offset = 0;
}

uint64_t philox_seed() {
  std::lock_guard<std::mutex> l(g_rng_mu);
  return g_seed;
}

uint64_t philox_take(uint64_t blocks) {
  std::lock_guard<std::mutex> l(g_rng_mu);
  uint64_t first = g_offset;
  g_offset += blocks;
  return first;
}

}  // namespace gradflow::cuda
