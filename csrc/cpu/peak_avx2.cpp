// The GEMM benchmark's roofline on AVX2: 256-bit float32 FMAs (see fma_peak.h).
#include "cpu/peak_avx2.h"

#include <immintrin.h>

#include "cpu/fma_peak.h"

namespace gradflow::cpu::avx2 {

double fma_peak_gflops(double seconds) {
  return fma_peak(seconds, 8, _mm256_set1_ps(0.999999f), _mm256_set1_ps(1e-7f),
                  [](__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); });
}

}  // namespace gradflow::cpu::avx2
