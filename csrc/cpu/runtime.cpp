#include "cpu/runtime.h"

#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
#include "cpu/peak_avx2.h"
#endif

namespace gradflow::cpu {

namespace {
std::atomic<bool> g_force_portable{false};

bool env_forces_portable() {
  const char* v = std::getenv("GRADFLOW_SIMD");
  return v != nullptr && std::strcmp(v, "portable") == 0;
}

void child_after_fork() {
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
}
}  // namespace

void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

bool openmp_enabled() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

bool cpu_has_avx2_fma() {
#if defined(GRADFLOW_HAVE_AVX2_KERNELS) && (defined(__x86_64__) || defined(__i386__))
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

bool use_avx2() {
  static const bool env_portable = env_forces_portable();
  return cpu_has_avx2_fma() && !env_portable && !g_force_portable.load();
}

void force_portable_simd(bool on) { g_force_portable.store(on); }

std::string simd_level() { return use_avx2() ? "avx2+fma" : "portable"; }

double fma_peak_gflops(double seconds) {
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if (cpu_has_avx2_fma()) return avx2::fma_peak_gflops(seconds);
#endif
  (void)seconds;
  return 0.0;
}

void install_fork_handler() {
  static bool installed = false;
  if (!installed) {
    pthread_atfork(nullptr, nullptr, child_after_fork);
    installed = true;
  }
}

void keep_freed_memory() {
#ifdef __GLIBC__
  const char* env = std::getenv("GRADFLOW_KEEP_FREED_MEMORY");
  if (env != nullptr && std::strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: blocks above it are mapped anyway
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace gradflow::cpu
