// Process-wide settings of the native CPU runtime: OpenMP threads and the SIMD level.
#pragma once
#include <string>

namespace gradflow::cpu {

void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

// True when this CPU runs AVX2 and FMA (checked once, at run time).
bool cpu_has_avx2_fma();
// "avx2+fma" or "portable": the level the kernels use now. GRADFLOW_SIMD=portable in the
// environment, or force_portable_simd(true), selects the portable code paths (for tests).
std::string simd_level();
bool use_avx2();
void force_portable_simd(bool on);

// Called once when the module loads: after fork() the child runs OpenMP on one thread,
// because libgomp's thread pool does not survive fork and would hang the child.
void install_fork_handler();

}  // namespace gradflow::cpu
