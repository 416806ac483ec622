// The host side of a CUDA launch, for the tests in this folder: calls body(i) for every index
// i that thread t of block b visits in a grid-stride loop over [0, n) with `grid` blocks of
// `block` threads, and checks that every index is visited exactly once.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

template <typename F>
void simulate_each(int64_t n, int64_t grid, int64_t block, F&& body) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (int64_t b = 0; b < grid; ++b)
    for (int64_t t = 0; t < block; ++t)
      for (int64_t i = b * block + t; i < n; i += grid * block) {
        ++seen[static_cast<size_t>(i)];
        body(i);
      }
  for (int64_t i = 0; i < n; ++i)
    if (seen[static_cast<size_t>(i)] != 1) {
      std::printf("index %lld visited %d times\n", static_cast<long long>(i),
                  seen[static_cast<size_t>(i)]);
      std::exit(1);
    }
}

// Bit-for-bit equality that counts two NaNs as equal.
template <typename T>
bool same(T a, T b) {
  return (a != a && b != b) || a == b;
}

inline int g_failures = 0;

inline void fail_case(const char* what, const char* shape) {
  if (++g_failures <= 20) std::printf("FAIL %s: %s\n", what, shape);
}
