// DLPack exchange of gradflow's CUDA arrays, the part that needs neither Python nor a GPU:
// checking a DLTensor a producer hands us before any of its pointers is used, and building the
// DLManagedTensor(Versioned) we hand out. bind_cuda.cpp wraps both in capsules; the host test
// tests/native/dlpack_test.cpp runs them under ASan/UBSan. See dlpack.h for the ABI and the
// ownership rules.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/dlpack.h"
#include "cuda/runtime.h"

namespace gradflow::dlpack {

// A tensor DLPack cannot exchange with gradflow. `buffer` picks Python's BufferError (the
// memory cannot be shared: device, layout, version) over TypeError (an unsupported dtype).
struct ExchangeError : std::runtime_error {
  bool buffer;
  ExchangeError(const std::string& message, bool buffer_error)
      : std::runtime_error(message), buffer(buffer_error) {}
};

// ---------------------------------------------------------------- dtypes
inline DLDataType to_dl(cuda::DType t) {
  switch (t) {
    case cuda::DType::f32: return {kDLFloat, 32, 1};
    case cuda::DType::f64: return {kDLFloat, 64, 1};
    case cuda::DType::i64: return {kDLInt, 64, 1};
    case cuda::DType::b8: return {kDLBool, 8, 1};
  }
  return {kDLFloat, 32, 1};
}

// "int32", "float16", "bfloat16", "code 9 of 8 bits": a DLDataType as an error message says it.
inline std::string dl_dtype_name(DLDataType t) {
  static const char* const kNames[] = {"int", "uint", "float", "opaque handle", "bfloat",
                                       "complex", "bool"};
  const std::string bits = std::to_string(t.bits);
  return t.code < 7 ? kNames[t.code] + bits : "code " + std::to_string(t.code) + " of " + bits +
                                                  " bits";
}

inline cuda::DType from_dl(DLDataType t, const std::string& op) {
  if (t.lanes != 1)
    throw ExchangeError(op + ": vector dtypes (" + std::to_string(t.lanes) + " lanes of " +
                            dl_dtype_name(t) + ") cannot be shared; gradflow has none", true);
  for (cuda::DType d : {cuda::DType::f32, cuda::DType::f64, cuda::DType::i64, cuda::DType::b8}) {
    const DLDataType ours = to_dl(d);
    if (ours.code == t.code && ours.bits == t.bits) return d;
  }
  throw ExchangeError(op + ": CUDA tensors hold float32, float64, int64 or bool, not " +
                          dl_dtype_name(t) + " (convert it before sharing)", false);
}

// "cpu", "cuda:1", "device type 7 id 0": a DLDevice as an error message says it.
inline std::string dl_device_name(DLDevice d) {
  const std::string id = std::to_string(d.device_id);
  switch (d.device_type) {
    case kDLCPU: return "cpu";
    case kDLCUDA: return "cuda:" + id;
    case kDLCUDAHost: return "pinned host memory (kDLCUDAHost)";
    case kDLCUDAManaged: return "CUDA managed memory (kDLCUDAManaged) of device " + id;
    default: return "device type " + std::to_string(d.device_type) + " id " + id;
  }
}

// ---------------------------------------------------------------- import
// What a checked DLTensor describes: `shape`/`strides` (in elements, all >= 0) over `nbytes`
// bytes from `base`, the address of element (0, ..., 0). Zero-size tensors get base = NULL,
// nbytes = 0 and contiguous strides.
struct ImportedView {
  void* base = nullptr;
  size_t nbytes = 0;
  std::vector<int64_t> shape, strides;
  cuda::DType dtype = cuda::DType::f32;
};

namespace detail {
[[noreturn]] inline void buffer_error(const std::string& op, const std::string& what) {
  throw ExchangeError(op + ": " + what, true);
}

inline std::string dims_str(const int64_t* v, int n) {
  std::string s = "(";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (n == 1 ? ",)" : ")");
}

// Row-major strides of `shape` (dims of size 0 count as 1).
inline std::vector<int64_t> row_major(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out(shape.size());
  int64_t s = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    out[d] = s;
    s *= shape[d] > 1 ? shape[d] : 1;
  }
  return out;
}

// The producer's strides, or row-major ones where it gave none (NULL). Dims of size 1 never
// move the address, so their strides become the row-major ones.
inline std::vector<int64_t> checked_strides(const DLTensor& t, const std::vector<int64_t>& shape,
                                            const std::string& op) {
  std::vector<int64_t> out = row_major(shape);
  for (int d = 0; t.strides != nullptr && d < t.ndim; ++d) {
    if (shape[d] <= 1) continue;
    if (t.strides[d] < 0)
      buffer_error(op, "strides " + dims_str(t.strides, t.ndim) + " of shape " +
                           dims_str(t.shape, t.ndim) + " are negative; gradflow imports "
                           "non-negative strides only");
    out[d] = t.strides[d];
  }
  return out;
}
}  // namespace detail

// Checks every field of `t` (the producer's struct) for a gradflow array on `device`, reading
// its shape and strides arrays but never its data; throws ExchangeError naming `op`.
inline ImportedView check_import(const DLTensor& t, DLDevice device, const std::string& op) {
  using detail::buffer_error;
  if (t.device.device_type != device.device_type || t.device.device_id != device.device_id)
    buffer_error(op, "the DLPack tensor lives on " + dl_device_name(t.device) + "; gradflow "
                     "shares memory on " + dl_device_name(device) + " only");
  if (t.ndim < 0 || t.ndim > cuda::kMaxDims)
    buffer_error(op, "a DLPack tensor of " + std::to_string(t.ndim) + " dims; gradflow arrays "
                     "have 0 to " + std::to_string(cuda::kMaxDims));
  if (t.ndim > 0 && t.shape == nullptr) buffer_error(op, "the DLPack tensor has no shape array");
  ImportedView v;
  v.dtype = from_dl(t.dtype, op);
  v.shape.assign(t.shape, t.shape + t.ndim);
  __int128 numel = 1;
  for (int64_t n : v.shape) {
    if (n < 0) buffer_error(op, "negative dimension in shape " + detail::dims_str(t.shape, t.ndim));
    numel *= n;
    if (numel > (__int128(1) << 48))
      buffer_error(op, "shape " + detail::dims_str(t.shape, t.ndim) + " is too large");
  }
  if (numel == 0) {  // nothing to address: no pointer is kept
    v.strides = detail::row_major(v.shape);
    return v;
  }
  v.strides = detail::checked_strides(t, v.shape, op);
  // The last element's distance from the first, in elements; every sum stays bounded.
  const size_t item = t.dtype.bits / 8;
  __int128 last = 0;
  for (int d = 0; d < t.ndim; ++d) {
    last += __int128(v.shape[d] - 1) * v.strides[d];
    if (last > (__int128(1) << 60))
      buffer_error(op, "strides " + detail::dims_str(v.strides.data(), t.ndim) + " of shape " +
                       detail::dims_str(t.shape, t.ndim) + " reach past any address");
  }
  const __int128 first = __int128(reinterpret_cast<uintptr_t>(t.data)) + t.byte_offset;
  const __int128 nbytes = (last + 1) * item;
  if (t.data == nullptr) buffer_error(op, "the DLPack tensor has a NULL data pointer");
  if (first + nbytes > __int128(UINTPTR_MAX))
    buffer_error(op, "byte_offset " + std::to_string(t.byte_offset) + " and the strides reach "
                     "past the end of the address space");
  if (first % item != 0)
    buffer_error(op, "element (0, ...) at data + byte_offset is not aligned to its " +
                     std::to_string(item) + "-byte dtype");
  v.base = reinterpret_cast<void*>(static_cast<uintptr_t>(first));
  v.nbytes = static_cast<size_t>(nbytes);
  return v;
}

// ---------------------------------------------------------------- export
// One exported tensor: the managed struct the consumer holds, the shape and strides arrays its
// DLTensor points to, and a reference to the storage that keeps the memory alive until the
// consumer (or the unconsumed capsule) calls the deleter.
template <typename Managed>
struct ExportContext {
  Managed managed{};
  std::vector<int64_t> shape, strides;
  std::shared_ptr<const void> keep_alive;

  static void deleter(Managed* self) { delete static_cast<ExportContext*>(self->manager_ctx); }
};

// The Managed (DLManagedTensor or DLManagedTensorVersioned) describing a strided view of the
// memory at `base` on `device`: element (0, ...) at base + offset * itemsize. The caller has
// checked the view against its storage; `keep_alive` owns that storage. Versioned tensors carry
// `flags` (kFlagIsCopied for a copy made for the consumer).
template <typename Managed>
Managed* make_export(std::shared_ptr<const void> keep_alive, void* base, int64_t offset,
                     const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     cuda::DType dtype, DLDevice device, uint64_t flags) {
  auto ctx = std::make_unique<ExportContext<Managed>>();
  ctx->shape = shape;
  ctx->strides = strides;
  ctx->keep_alive = std::move(keep_alive);
  const DLDataType dl = to_dl(dtype);
  DLTensor& t = ctx->managed.dl_tensor;
  t.data = base;
  t.device = device;
  t.ndim = static_cast<int32_t>(shape.size());
  t.dtype = dl;
  t.shape = ctx->shape.data();
  t.strides = ctx->strides.data();
  t.byte_offset = static_cast<uint64_t>(offset) * (dl.bits / 8);
  if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) {
    ctx->managed.version = {kMajorVersion, kMinorVersion};
    ctx->managed.flags = flags;
  }
  ctx->managed.manager_ctx = ctx.get();
  ctx->managed.deleter = &ExportContext<Managed>::deleter;
  return &ctx.release()->managed;
}

}  // namespace gradflow::dlpack
