// One operand of a strided batched GEMM (gemm.cu), plain C++ so that host code and tests can
// describe a batch too. Matrix p of a batch of `count` with `inner` matrices per outer step is
//   ptr + (p / inner) * outer_stride + (p % inner) * inner_stride,
// row-major with rows `ld` elements apart: a two-level batch, e.g. (image, group) of a conv.
#pragma once
#include <cstdint>

namespace gradflow::cuda {

template <typename T>
struct MatrixBatch {
  T* ptr;
  int64_t ld;            // elements between rows
  int64_t outer_stride;  // elements between matrices p and p + inner
  int64_t inner_stride;  // elements between matrices p and p + 1 within one outer step
};

}  // namespace gradflow::cuda
