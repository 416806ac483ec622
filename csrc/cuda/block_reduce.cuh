// Warp and block reductions for any trivially copyable value (a float, a double, or a small
// struct such as a Welford state or an online-softmax (max, sum) pair) under an associative
// combine `op`. A warp combines by shuffles (the value moved as 32-bit words); a block combines
// its warps' results in shared memory, then in warp 0. Every thread of the block must call
// block_reduce (it synchronises), and blockDim.x must be a multiple of 32.
#pragma once
#include <cstring>

#include "cuda/iter.cuh"

namespace gradflow::cuda {

// v moved across the warp as 32-bit words, each through `shuffle` (an int -> int warp shuffle).
template <typename V, typename Shuffle>
__device__ __forceinline__ V shuffle_words(V v, Shuffle shuffle) {
  static_assert(sizeof(V) % 4 == 0, "warp shuffles move 32-bit words");
  constexpr int kWords = sizeof(V) / 4;
  int words[kWords];
  memcpy(words, &v, sizeof(V));
#pragma unroll
  for (int k = 0; k < kWords; ++k) words[k] = shuffle(words[k]);
  memcpy(&v, words, sizeof(V));
  return v;
}

template <typename V>
__device__ __forceinline__ V shuffle_down(V v, int delta) {
  return shuffle_words(v, [delta](int w) { return __shfl_down_sync(0xffffffffu, w, delta); });
}

template <typename V>
__device__ __forceinline__ V shuffle_xor(V v, int mask) {
  return shuffle_words(v, [mask](int w) { return __shfl_xor_sync(0xffffffffu, w, mask); });
}

// A combine function as the functor `op` that the reductions take, e.g.
// CombineWith<Welford<A>, welford_merge<A>> (the function stays host-testable).
template <typename V, V (*Combine)(V, V)>
struct CombineWith {
  __device__ V operator()(V a, V b) const { return Combine(a, b); }
};

// Lane 0 gets op over the warp's 32 values (other lanes hold partial results).
template <typename V, typename Op>
__device__ __forceinline__ V warp_reduce(V v, Op op) {
#pragma unroll
  for (int delta = 16; delta > 0; delta /= 2) v = op(v, shuffle_down(v, delta));
  return v;
}

// Every lane gets op over the warp's 32 values (a butterfly: op must be commutative).
template <typename V, typename Op>
__device__ __forceinline__ V warp_allreduce(V v, Op op) {
#pragma unroll
  for (int mask = 16; mask > 0; mask /= 2) v = op(v, shuffle_xor(v, mask));
  return v;
}

// Every thread gets op over the block's values; `identity` pads warp 0's missing lanes.
template <typename V, typename Op>
__device__ V block_reduce(V v, Op op, V identity) {
  __shared__ __align__(16) unsigned char raw[32 * sizeof(V)];
  V* warp_totals = reinterpret_cast<V*>(raw);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call's readers of warp_totals are done
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < warps ? warp_totals[lane] : identity, op);
    if (lane == 0) warp_totals[0] = v;
  }
  __syncthreads();
  return warp_totals[0];
}

}  // namespace gradflow::cuda
