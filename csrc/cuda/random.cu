// Random numbers from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11): block c of the stream is philox(counter = offset + c, key = seed), four
// 32-bit words; thread t of a call turns block c = t into up to four outputs. Uniform floats
// take the top 24 (float) or 53 (double) bits, normals are Box-Muller pairs, integers are
// 64-bit words reduced modulo the range.
#include <cmath>

#include "cuda/iter.cuh"
#include "cuda/kernels.h"

namespace gradflow::cuda {
namespace {

struct U4 {
  uint32_t x, y, z, w;
};

__device__ __forceinline__ U4 philox(uint64_t counter, uint64_t seed) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  U4 c{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u};
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kM0, c.x), lo0 = kM0 * c.x;
    const uint32_t hi1 = __umulhi(kM1, c.z), lo1 = kM1 * c.z;
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

__device__ __forceinline__ float unit_float(uint32_t a) { return (a >> 8) * (1.0f / 16777216.0f); }

__device__ __forceinline__ double unit_double(uint32_t a, uint32_t b) {
  const uint64_t bits = (static_cast<uint64_t>(a) << 21) ^ (b >> 11);
  return static_cast<double>(bits & ((uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

template <typename T>
__global__ void random_kernel(int64_t n, Random kind, uint64_t seed, uint64_t offset, int64_t low,
                              uint64_t range, T* out) {
  constexpr int per = std::is_same_v<T, float> ? 4 : 2;  // outputs per Philox block
  const int64_t blocks = (n + per - 1) / per;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < blocks;
       c += int64_t(gridDim.x) * blockDim.x) {
    const U4 r = philox(offset + c, seed);
    T v[per];
    if constexpr (std::is_same_v<T, float>) {
      const float u[4] = {unit_float(r.x), unit_float(r.y), unit_float(r.z), unit_float(r.w)};
      if (kind == Random::uniform) {
        for (int j = 0; j < 4; ++j) v[j] = u[j];
      } else {
        for (int j = 0; j < 4; j += 2) {
          const float rad = sqrtf(-2.0f * logf(1.0f - u[j])), ang = 6.2831853071795865f * u[j + 1];
          v[j] = rad * cosf(ang);
          v[j + 1] = rad * sinf(ang);
        }
      }
    } else if constexpr (std::is_same_v<T, double>) {
      const double u0 = unit_double(r.x, r.y), u1 = unit_double(r.z, r.w);
      if (kind == Random::uniform) {
        v[0] = u0;
        v[1] = u1;
      } else {
        const double rad = sqrt(-2.0 * log(1.0 - u0)), ang = 6.283185307179586 * u1;
        v[0] = rad * cos(ang);
        v[1] = rad * sin(ang);
      }
    } else {
      const uint64_t w0 = (static_cast<uint64_t>(r.x) << 32) | r.y;
      const uint64_t w1 = (static_cast<uint64_t>(r.z) << 32) | r.w;
      if (kind == Random::integer) {
        v[0] = low + static_cast<int64_t>(w0 % range);
        v[1] = low + static_cast<int64_t>(w1 % range);
      } else {
        v[0] = static_cast<int64_t>(w0 >> 1);
        v[1] = static_cast<int64_t>(w1 >> 1);
      }
    }
    for (int j = 0; j < per; ++j)
      if (c * per + j < n) out[c * per + j] = v[j];
  }
}

}  // namespace

void random(Random kind, const DeviceArray& out, int64_t low, int64_t high) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int per = out.dtype == DType::f32 ? 4 : 2;
  const int64_t blocks = (n + per - 1) / per;
  const uint64_t seed = philox_seed(), offset = philox_take(static_cast<uint64_t>(blocks));
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  const int grid = grid_for(blocks);
  switch (out.dtype) {
    case DType::f32:
      random_kernel<float><<<grid, 256, 0, cuda_stream()>>>(
          n, kind, seed, offset, low, range, reinterpret_cast<float*>(out.data()));
      break;
    case DType::f64:
      random_kernel<double><<<grid, 256, 0, cuda_stream()>>>(
          n, kind, seed, offset, low, range, reinterpret_cast<double*>(out.data()));
      break;
    default:
      random_kernel<int64_t><<<grid, 256, 0, cuda_stream()>>>(
          n, kind, seed, offset, low, range, reinterpret_cast<int64_t*>(out.data()));
  }
  check_launch("random");
}

}  // namespace gradflow::cuda
