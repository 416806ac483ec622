// Process-wide settings of the native CPU runtime: OpenMP threads and the SIMD level.
#pragma once
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "out_of_memory.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::cpu {

void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

// The SIMD levels of the CPU kernels, lowest first: portable C++, AVX2+FMA (256-bit
// vectors), AVX-512F (512-bit vectors; the GEMM's micro-kernels only, everything else stays
// on AVX2 there).
enum class Simd { Portable, Avx2, Avx512 };

// True when this CPU runs AVX2 and FMA (checked once, at run time).
bool cpu_has_avx2_fma();
// The levels this process may run, lowest first, ["portable", "avx2+fma", "avx512"] at most:
// those of this CPU and build, up to GRADFLOW_SIMD=<level> when the environment sets it.
std::vector<std::string> simd_levels();
// The level the kernels use now, by name: the highest of simd_levels(), or lower when
// cap_simd() (for tests) says so.
std::string simd_level();
// Caps the level at `level` (a name from simd_levels(); "avx512" lifts the cap). Throws
// std::invalid_argument for any other name.
void cap_simd(const std::string& level);
bool use_avx2();
bool use_avx512();

// Measured float32 FMA peak of one core in GFLOP/s over about `seconds`, at the level in use
// (AVX-512 or AVX2 FMAs; 0 for the portable level).
double fma_peak_gflops(double seconds);

// Called once when the module loads: after fork() the child runs OpenMP on one thread,
// because libgomp's thread pool does not survive fork and would hang the child.
void install_fork_handler();

// Called once when the module loads (glibc only; GRADFLOW_KEEP_FREED_MEMORY=0 in the
// environment opts out): freed blocks of up to 32 MiB stay in the heap for the next
// allocation, and up to 512 MiB of free heap is kept, instead of going back to the kernel.
// Training frees and allocates the same activation sizes every step; with glibc's default
// thresholds every reuse faulted the pages in again (ResNet-20 at batch 32: 14 000 page faults,
// about a tenth of the step).
void keep_freed_memory();

// A zeroed workspace of n elements; throws OutOfMemory naming the bytes when it cannot be had.
// Allocate before a parallel region, never inside one.
template <typename T>
std::vector<T> workspace(int64_t n) {
  try {
    return std::vector<T>(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    throw gradflow::OutOfMemory(n * static_cast<int64_t>(sizeof(T)));
  } catch (const std::length_error&) {
    throw gradflow::OutOfMemory(n * static_cast<int64_t>(sizeof(T)));
  }
}

// An uninitialised workspace of n elements, for buffers every element of which is written
// before it is read (im2col columns): zeroing them would cost a pass over memory. Throws
// OutOfMemory like workspace(). Allocate before a parallel region, never inside one.
template <typename T>
std::unique_ptr<T[]> scratch(int64_t n) {
  try {
    return std::unique_ptr<T[]>(new T[static_cast<size_t>(n)]);
  } catch (const std::bad_alloc&) {
    throw gradflow::OutOfMemory(n * static_cast<int64_t>(sizeof(T)));
  }
}

// Runs body(thread) on `threads` OpenMP threads (inline when threads == 1). An exception
// escaping an OpenMP region would terminate the process, so the first one thrown is
// captured and rethrown on the caller after every thread has finished.
template <typename F>
void parallel_threads(int threads, F&& body) {
  if (threads <= 1) {
    body(0);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    try {
      body(tid);
    } catch (...) {
#pragma omp critical(gradflow_parallel_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace gradflow::cpu
