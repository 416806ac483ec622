#include "cpu/elementwise.h"

#include <cmath>

namespace gradflow::cpu {

template <typename T>
void erf(const T* x, T* out, int64_t n) {
#pragma omp parallel for if (n > 32768) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = std::erf(x[i]);
}

template void erf<float>(const float*, float*, int64_t);
template void erf<double>(const double*, double*, int64_t);

}  // namespace gradflow::cpu
