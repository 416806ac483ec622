// The roofline for the GEMM benchmark: 10 independent chains of 256-bit float32 FMAs
// (2 FMA pipes x 4 cycles latency on Zen 3 need at least 8 in flight), 8 lanes x 2 flops each.
#include "cpu/peak_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace gradflow::cpu::avx2 {

double fma_peak_gflops(double seconds) {
  using clock = std::chrono::steady_clock;
  constexpr int kChains = 10;
  constexpr long kIters = 1 << 20;
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  double best = 0.0;
  const auto stop = clock::now() + std::chrono::duration<double>(seconds);
  do {
    const auto t0 = clock::now();
    for (long it = 0; it < kIters; ++it) {
#pragma GCC unroll 10
      for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, kIters * kChains * 16.0 / dt * 1e-9);
  } while (clock::now() < stop);
  // Keep the result alive so the loop is not optimised away.
  float sink[8];
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(sink, s);
  volatile float keep = sink[0];
  (void)keep;
  return best;
}

}  // namespace gradflow::cpu::avx2
