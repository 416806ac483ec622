// General matrix multiply on row-major matrices:
//   C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C[m, n],  op(X) = X or X^T.
// lda, ldb, ldc are row strides in elements (A is m x k, or k x m when trans_a).
// beta == 0 overwrites C without reading it (NaNs in C do not propagate).
#pragma once
#include <cstdint>

namespace gradflow::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// `batch` independent products; matrix i starts at a + i*stride_a (likewise b, c).
template <typename T>
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                  T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                  int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c);

}  // namespace gradflow::cpu
