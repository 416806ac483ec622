// AVX2+FMA direct convolution of one image (csrc/cpu/conv_direct_avx2.cpp). Call only when
// use_avx2(); cpu/conv.cpp decides when it runs and prepares its operands.
#pragma once
#include <cstdint>

namespace gradflow::cpu::avx2 {

// Output channels per call, and output positions per vector.
constexpr int64_t kDirectChannels = 4;
constexpr int64_t kDirectWidth = 8;

// Four output planes of a stride-1, undilated correlation:
//   y[o, oh, ow] = sum_{c, i, j} w4[((c*kh + i)*kw + j)*4 + o] * xpad[c, oh + i, ow + j]
// for o < 4, oh < OH, ow < OW, with xpad (C, OH + kh - 1, OW + kw - 1) the zero-padded input
// planes, w4 the four channels' weights interleaved, y's planes OH*OW apart.
// OW must be a multiple of kDirectWidth: each output row is a run of whole vectors.
void conv_direct_planes(int64_t C, int64_t kh, int64_t kw, int64_t OH, int64_t OW,
                        const float* xpad, const float* w4, float* y);

}  // namespace gradflow::cpu::avx2
