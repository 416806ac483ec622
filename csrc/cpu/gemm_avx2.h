// AVX2+FMA micro-kernels of the GEMM (csrc/cpu/gemm_avx2.cpp). Call only when use_avx2().
#pragma once
#include <cstdint>

namespace gradflow::cpu::avx2 {

// Register tiles: 6 rows x two 256-bit vectors, i.e. 6x16 floats or 6x8 doubles
// (12 accumulators + 2 B vectors + 1 broadcast A value = 15 of the 16 ymm registers).
constexpr int kGemmMR = 6;
constexpr int kGemmNRFloat = 16;
constexpr int kGemmNRDouble = 8;

// C[0:mr, 0:nr] = alpha * (A_panel @ B_panel)[0:mr, 0:nr] + beta * C (beta == 0: C is not
// read), mr <= MR, nr <= NR; nothing outside that tile of C is read or written.
// a: packed MR x kc panel (MR values per k step); b: packed kc x NR panel (NR values per k
// step, 32-byte aligned). c: row-major with row stride ldc, any alignment.
void gemm_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta, int64_t mr, int64_t nr);
void gemm_kernel(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                 double alpha, double beta, int64_t mr, int64_t nr);

// One full packed panel from R rows of x (row stride ld): dst[p*R + s] = x[s*ld + p] for
// s < R, p < kc, where R is the MR or NR of this type's AVX2 or AVX-512 tiles: 6, 12, 16 or
// 32 floats, 6, 8, 12 or 16 doubles. Used for op(A) = A and op(B) = B^T.
void pack_strided_panel(const float* x, int64_t ld, int64_t kc, int r, float* dst);
void pack_strided_panel(const double* x, int64_t ld, int64_t kc, int r, double* dst);

}  // namespace gradflow::cpu::avx2
