// The roofline of the GEMM benchmark, shared by the AVX2 and AVX-512 builds of it
// (peak_avx2.cpp, peak_avx512.cpp): the best rate of a dependency-free stream of FMAs on the
// calling thread, sampled for about `seconds`. Twelve independent chains cover the FMA
// pipes' latency (2 pipes x 4 cycles on Zen 3 to Zen 5 and on Intel's AVX-512 cores).
#pragma once

#include <algorithm>
#include <chrono>

namespace gradflow::cpu {

// Float32 GFLOP/s of acc = fma(acc, x, y) on vectors V of `lanes` floats (2 flops a lane).
template <typename V, typename Fma>
double fma_peak(double seconds, int lanes, V x, V y, Fma fma) {
  using clock = std::chrono::steady_clock;
  constexpr int kChains = 12;
  constexpr long kIters = 1 << 20;
  V acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = y;
  double best = 0.0;
  const auto stop = clock::now() + std::chrono::duration<double>(seconds);
  do {
    const auto t0 = clock::now();
    for (long it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
      for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], x, y);
    }
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::max(best, kIters * kChains * 2.0 * lanes / dt * 1e-9);
  } while (clock::now() < stop);
  for (int i = 0; i < kChains; ++i) {  // keep the results alive: the loop must run
    volatile V keep = acc[i];
    (void)keep;
  }
  return best;
}

}  // namespace gradflow::cpu
