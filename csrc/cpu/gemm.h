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

// ------------------------------------------------------------------------------ matrix views
// A matrix as the GEMM sees it: row-major (rows x cols, row stride ld), or, when `trans`, the
// transpose of the row-major (cols x rows) matrix at data (a column-major array, e.g. x.T).
template <typename T>
struct Matrix {
  T* data;
  int64_t rows, cols, ld;
  bool trans;

  // The matrix itself, or its transpose when `transpose` (the same data, no copy).
  Matrix op(bool transpose) const {
    return transpose ? Matrix{data, cols, rows, ld, !trans} : *this;
  }
};

// c = alpha * a @ b + beta * c; a column-major c as c^T = b^T @ a^T.
template <typename T>
void gemm(const Matrix<T>& a, const Matrix<T>& b, const Matrix<T>& c, T alpha, T beta) {
  if (c.trans) return gemm(b.op(true), a.op(true), c.op(true), alpha, beta);
  gemm<T>(a.trans, b.trans, c.rows, c.cols, a.cols, alpha, a.data, a.ld, b.data, b.ld, beta,
          c.data, c.ld);
}

// c[i] = a[i] @ b[i] for i < batch into a new row-major c (batch, a.rows, b.cols); matrix i of
// a starts at a.data + i * stride_a (likewise b; stride 0 broadcasts).
template <typename T>
void gemm_batched(int64_t batch, const Matrix<T>& a, int64_t stride_a, const Matrix<T>& b,
                  int64_t stride_b, T* c) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  // A shared b and row-major a whose matrices follow each other: one (batch*m, k) @ (k, n).
  if (batch > 1 && stride_b == 0 && !a.trans && stride_a == m * a.ld)
    return gemm<T>({a.data, batch * m, k, a.ld, false}, b, {c, batch * m, n, n, false}, 1, 0);
  gemm_batched<T>(batch, a.trans, b.trans, m, n, k, T(1), a.data, a.ld, stride_a, b.data, b.ld,
                  stride_b, T(0), c, n, m * n);
}

}  // namespace gradflow::cpu
