// The DLPack exchange of the CUDA arrays (csrc/cuda/dlpack_exchange.h), on the host: no pointer
// a test passes is ever dereferenced, so fake device addresses stand in for device memory.
//   - import: every accepted DLTensor gives the view (base, bytes, shape, strides, dtype) it
//     describes; every rejected one (device, dtype, lanes, ndim, negative or overflowing strides
//     and sizes, misalignment, NULL data) throws ExchangeError of the right kind, naming the op;
//   - export: the managed struct (legacy and versioned) describes the view, keeps the storage
//     alive until its deleter runs, and the deleter frees everything (ASan checks the leaks).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/dlpack_exchange.h"

namespace dl = gradflow::dlpack;
using gradflow::cuda::DType;
using Dims = std::vector<int64_t>;

namespace {

int g_failures = 0;

void expect(bool ok, const std::string& what) {
  if (ok) return;
  std::printf("FAILED: %s\n", what.c_str());
  ++g_failures;
}

constexpr dl::DLDevice kCuda0{dl::kDLCUDA, 0};
void* const kFakeData = reinterpret_cast<void*>(uintptr_t(1) << 40);  // never dereferenced

// A DLTensor over the caller's shape and strides (NULL strides when `strides` is empty).
dl::DLTensor tensor(Dims& shape, Dims& strides, dl::DLDataType dtype, uint64_t byte_offset = 0,
                    dl::DLDevice device = kCuda0, void* data = kFakeData) {
  return {data, device, static_cast<int32_t>(shape.size()), dtype,
          shape.empty() ? nullptr : shape.data(), strides.empty() ? nullptr : strides.data(),
          byte_offset};
}

// Imports t; "" when accepted, else "buffer: message" or "type: message".
std::string import_error(const dl::DLTensor& t) {
  try {
    dl::check_import(t, kCuda0, "from_dlpack");
    return "";
  } catch (const dl::ExchangeError& e) {
    return std::string(e.buffer ? "buffer: " : "type: ") + e.what();
  }
}

void expect_rejected(const dl::DLTensor& t, const std::string& kind, const std::string& words,
                     const std::string& name) {
  const std::string got = import_error(t);
  expect(got.rfind(kind + ": from_dlpack: ", 0) == 0 && got.find(words) != std::string::npos,
         name + ": expected a " + kind + " error with '" + words + "', got '" + got + "'");
}

void check_accepted_views() {
  const dl::DLDataType f32{dl::kDLFloat, 32, 1};
  Dims shape{2, 3}, none, transposed{1, 2};
  dl::ImportedView v = dl::check_import(tensor(shape, none, f32), kCuda0, "from_dlpack");
  expect(v.base == kFakeData && v.nbytes == 24 && v.strides == Dims({3, 1}) &&
             v.dtype == DType::f32, "NULL strides are row-major over 6 floats");
  v = dl::check_import(tensor(shape, transposed, f32, 8), kCuda0, "from_dlpack");
  expect(v.base == static_cast<char*>(kFakeData) + 8 && v.nbytes == 24 &&
             v.strides == Dims({1, 2}), "a transposed view from byte_offset 8");
  Dims padded{5, 1, 4}, padded_strides{8, -3, 1};  // size-1 dim: its stride never matters
  v = dl::check_import(tensor(padded, padded_strides, {dl::kDLInt, 64, 1}), kCuda0, "x");
  expect(v.nbytes == (4 * 8 + 3 + 1) * 8 && v.strides == Dims({8, 4, 1}) &&
             v.dtype == DType::i64, "a row-padded int64 view, size-1 stride normalised");
  Dims broadcast{3, 4}, zero_strides{0, 1};
  v = dl::check_import(tensor(broadcast, zero_strides, {dl::kDLBool, 8, 1}), kCuda0, "x");
  expect(v.nbytes == 4 && v.dtype == DType::b8, "a broadcast (stride 0) bool view");
  Dims scalar;
  v = dl::check_import(tensor(scalar, none, {dl::kDLFloat, 64, 1}), kCuda0, "x");
  expect(v.nbytes == 8 && v.shape.empty() && v.dtype == DType::f64, "a 0-d float64");
  Dims empty{0, 5}, wild{-7, 1 << 30};
  v = dl::check_import(tensor(empty, wild, f32, 0, kCuda0, nullptr), kCuda0, "x");
  expect(v.base == nullptr && v.nbytes == 0 && v.strides == Dims({5, 1}),
         "a zero-size tensor keeps no pointer and gets row-major strides");
}

void check_rejected_tensors() {
  const dl::DLDataType f32{dl::kDLFloat, 32, 1};
  Dims shape{2, 3}, none;
  expect_rejected(tensor(shape, none, f32, 0, {dl::kDLCPU, 0}), "buffer", "lives on cpu",
                  "a CPU tensor");
  expect_rejected(tensor(shape, none, f32, 0, {dl::kDLCUDA, 1}), "buffer", "cuda:1", "cuda:1");
  expect_rejected(tensor(shape, none, f32, 0, {dl::kDLCUDAManaged, 0}),
                  "buffer", "managed memory", "managed memory");
  expect_rejected(tensor(shape, none, {dl::kDLInt, 32, 1}), "type", "not int32", "int32");
  expect_rejected(tensor(shape, none, {dl::kDLFloat, 16, 1}), "type", "not float16", "float16");
  expect_rejected(tensor(shape, none, {dl::kDLBfloat, 16, 1}), "type", "not bfloat16", "bf16");
  expect_rejected(tensor(shape, none, {dl::kDLUInt, 8, 1}), "type", "not uint8", "uint8");
  expect_rejected(tensor(shape, none, {9, 8, 1}), "type", "code 9 of 8 bits", "unknown code");
  expect_rejected(tensor(shape, none, {dl::kDLFloat, 32, 4}), "buffer", "4 lanes", "lanes");
  Dims negative{2, -3};
  expect_rejected(tensor(negative, none, f32), "buffer", "negative dimension", "shape -3");
  Dims huge{int64_t(1) << 30, int64_t(1) << 30};
  expect_rejected(tensor(huge, none, f32), "buffer", "too large", "2^60 elements");
  Dims flipped{-3, 1};  // a flip along dim 0
  expect_rejected(tensor(shape, flipped, f32), "buffer", "are negative", "negative stride");
  Dims far{int64_t(1) << 62, 1};
  expect_rejected(tensor(shape, far, f32), "buffer", "reach past any address", "2^62 stride");
  Dims top{1, 1};
  dl::DLTensor wrap = tensor(shape, top, f32, 0, kCuda0,
                             reinterpret_cast<void*>(UINTPTR_MAX - 15));
  expect_rejected(wrap, "buffer", "past the end of the address space", "address wrap");
  expect_rejected(tensor(shape, none, f32, 2), "buffer", "not aligned", "byte_offset 2");
  expect_rejected(tensor(shape, none, f32, 0, kCuda0, nullptr), "buffer", "NULL data", "NULL");
  Dims nine(9, 1);
  expect_rejected(tensor(nine, none, f32), "buffer", "9 dims", "9 dims");
  dl::DLTensor no_shape = tensor(shape, none, f32);
  no_shape.shape = nullptr;
  expect_rejected(no_shape, "buffer", "no shape array", "NULL shape");
}

// Exports a (3, 2) view at element offset 5 of a fake storage, checks the struct, and checks
// that the storage lives exactly until the deleter runs.
template <typename Managed>
void check_export(const char* form) {
  auto storage = std::make_shared<int>(0);  // stands in for the device storage
  std::weak_ptr<int> alive = storage;
  const Dims shape{3, 2}, strides{1, 3};
  Managed* m = dl::make_export<Managed>(storage, kFakeData, 5, shape, strides, DType::f64,
                                        kCuda0, dl::kFlagIsCopied);
  storage.reset();
  const dl::DLTensor& t = m->dl_tensor;
  expect(t.data == kFakeData && t.byte_offset == 40 && t.ndim == 2 &&
             t.device.device_type == dl::kDLCUDA && t.device.device_id == 0 &&
             t.dtype.code == dl::kDLFloat && t.dtype.bits == 64 && t.dtype.lanes == 1 &&
             Dims(t.shape, t.shape + 2) == shape && Dims(t.strides, t.strides + 2) == strides,
         std::string(form) + ": the exported DLTensor describes the view");
  if constexpr (std::is_same_v<Managed, dl::DLManagedTensorVersioned>)
    expect(m->version.major == 1 && m->version.minor == 0 && m->flags == dl::kFlagIsCopied,
           "versioned: version 1.0 and the flags given");
  const dl::ImportedView back = dl::check_import(t, kCuda0, "from_dlpack");
  expect(back.base == static_cast<char*>(kFakeData) + 40 && back.strides == strides &&
             back.shape == shape && back.dtype == DType::f64 && back.nbytes == 6 * 8,
         std::string(form) + ": importing the export gives the view back");
  expect(!alive.expired(), std::string(form) + ": the storage lives while the tensor is out");
  m->deleter(m);
  expect(alive.expired(), std::string(form) + ": the deleter releases the storage");
}

}  // namespace

int main() {
  check_accepted_views();
  check_rejected_tensors();
  check_export<dl::DLManagedTensor>("legacy");
  check_export<dl::DLManagedTensorVersioned>("versioned");
  if (g_failures) {
    std::printf("%d failures\n", g_failures);
    return 1;
  }
  std::printf("dlpack: imports checked, exports described and released\n");
  return 0;
}
