// AVX-512F micro-kernels of the GEMM (csrc/cpu/gemm_avx512.cpp). Call only when use_avx512().
// The packing routines are AVX2's (avx2::pack_strided_panel takes these widths too).
#pragma once
#include <cstdint>

namespace gradflow::cpu::avx512 {

// Register tiles: 12 rows x two 512-bit vectors, i.e. 12x32 floats or 12x16 doubles
// (24 accumulators + 2 B vectors + 1 broadcast A value = 27 of the 32 zmm registers).
constexpr int kGemmMR = 12;
constexpr int kGemmNRFloat = 32;
constexpr int kGemmNRDouble = 16;

// The contract of avx2::gemm_kernel for these tiles: C[0:mr, 0:nr] = alpha * (A_panel @
// B_panel)[0:mr, 0:nr] + beta * C (beta == 0: C is not read), mr <= MR, nr <= NR; nothing
// outside that tile of C is read or written. a: packed MR x kc panel; b: packed kc x NR panel.
void gemm_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta, int64_t mr, int64_t nr);
void gemm_kernel(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                 double alpha, double beta, int64_t mr, int64_t nr);

}  // namespace gradflow::cpu::avx512
