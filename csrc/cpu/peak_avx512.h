// Measured FMA throughput of one core (csrc/cpu/peak_avx512.cpp). Call only when
// use_avx512().
#pragma once

namespace gradflow::cpu::avx512 {

// Best float32 GFLOP/s (an FMA counts 2 flops) of a dependency-free stream of 512-bit FMAs
// on the calling thread, sampled for about `seconds`.
double fma_peak_gflops(double seconds);

}  // namespace gradflow::cpu::avx512
