// Elementwise math NumPy lacks. Contiguous input and output of n elements.
#pragma once
#include <cstdint>

namespace gradflow::cpu {

// out[i] = erf(x[i]) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt
template <typename T>
void erf(const T* x, T* out, int64_t n);

}  // namespace gradflow::cpu
