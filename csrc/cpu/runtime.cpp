#include "cpu/runtime.h"

#include <pthread.h>

#include <algorithm>
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
#ifdef GRADFLOW_HAVE_AVX512_KERNELS
#include "cpu/peak_avx512.h"
#endif

namespace gradflow::cpu {

namespace {
// Simd's names, indexed by level.
const char* const kSimdNames[] = {"portable", "avx2+fma", "avx512"};
constexpr int kTopLevel = static_cast<int>(Simd::Avx512);

int level_of(const std::string& name) {
  for (int i = 0; i <= kTopLevel; ++i)
    if (name == kSimdNames[i]) return i;
  return -1;
}

// The highest level this CPU and build run (AVX-512 kernels also use AVX2 ones).
int cpu_level() {
  static const int level = [] {
#if defined(GRADFLOW_HAVE_AVX512_KERNELS) && (defined(__x86_64__) || defined(__i386__))
    if (cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f")) return kTopLevel;
#endif
    return static_cast<int>(cpu_has_avx2_fma() ? Simd::Avx2 : Simd::Portable);
  }();
  return level;
}

// GRADFLOW_SIMD=<level name> caps the level for the whole process (an unknown name is ignored).
int env_cap() {
  const char* v = std::getenv("GRADFLOW_SIMD");
  const int level = v != nullptr ? level_of(v) : -1;
  return level >= 0 ? level : kTopLevel;
}

// The highest level this process may use: the CPU's, capped by GRADFLOW_SIMD.
int process_level() {
  static const int level = std::min(cpu_level(), env_cap());
  return level;
}

std::atomic<int> g_cap{kTopLevel};

int level_in_use() { return std::min(process_level(), g_cap.load(std::memory_order_relaxed)); }

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

std::vector<std::string> simd_levels() { return {kSimdNames, kSimdNames + process_level() + 1}; }

std::string simd_level() { return kSimdNames[level_in_use()]; }

void cap_simd(const std::string& level) {
  const int cap = level_of(level);
  if (cap < 0)
    throw std::invalid_argument("cap_simd: unknown SIMD level '" + level +
                                "' (expected portable, avx2+fma or avx512)");
  g_cap.store(cap);
}

bool use_avx2() { return level_in_use() >= static_cast<int>(Simd::Avx2); }
bool use_avx512() { return level_in_use() >= static_cast<int>(Simd::Avx512); }

double fma_peak_gflops(double seconds) {
#ifdef GRADFLOW_HAVE_AVX512_KERNELS
  if (use_avx512()) return avx512::fma_peak_gflops(seconds);
#endif
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if (use_avx2()) return avx2::fma_peak_gflops(seconds);
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
