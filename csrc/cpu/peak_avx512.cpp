// The GEMM benchmark's roofline on AVX-512: 512-bit float32 FMAs (see fma_peak.h).
#include "cpu/peak_avx512.h"

#include <immintrin.h>

#include "cpu/fma_peak.h"

namespace gradflow::cpu::avx512 {

double fma_peak_gflops(double seconds) {
  return fma_peak(seconds, 16, _mm512_set1_ps(0.999999f), _mm512_set1_ps(1e-7f),
                  [](__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); });
}

}  // namespace gradflow::cpu::avx512
