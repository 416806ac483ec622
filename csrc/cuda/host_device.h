// GRADFLOW_HD marks a function compiled for both sides: on the GPU it is one thread's body of a
// kernel; on the host, tests/native/ drives the same function over every (block, thread) index
// of a launch and compares with the CPU kernels, so the index math is checked without a GPU.
// Headers that use it include only standard headers and this one (no CUDA runtime).
#pragma once

#ifdef __CUDACC__
#define GRADFLOW_HD __host__ __device__ __forceinline__
#else
#define GRADFLOW_HD inline
#endif
