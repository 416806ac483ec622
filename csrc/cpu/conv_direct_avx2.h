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

// Taps per call of the weight gradient.
constexpr int64_t kDirectTaps = 3;

// The weight gradient of the same correlation, for 4 output channels and `count` <= 3 taps
// t0, t0 + 1, ... (tap t = (c*kh + i)*kw + j, of K = C*kh*kw), summed over nb images:
//   dw[o*K + t] += sum_{n, oh, ow} dy[n*dy_image + o*OH*OW + oh*OW + ow] * xpad_n[c, oh + i, ow + j]
// with the nb padded images (C, OH + kh - 1, OW + kw - 1) x_image apart. OW % kDirectWidth == 0.
void conv_direct_weight(int64_t nb, int64_t C, int64_t kh, int64_t kw, int64_t OH, int64_t OW,
                        const float* xpad, int64_t x_image, const float* dy, int64_t dy_image,
                        int64_t t0, int64_t count, float* dw);

}  // namespace gradflow::cpu::avx2
