// im2col + GEMM convolution; see conv.h for the math, layouts and threading.
#include "cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/runtime.h"
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
#include "cpu/conv_direct.h"
#endif

namespace gradflow::cpu {

namespace {

// Target GEMM width nb*lc per chunk. Measured on Zen 5 against 1024 (AVX-512 and AVX2 GEMMs
// alike): 256 channels of 14x14 0.84-0.96x the time, other im2col layers within noise.
constexpr int64_t kChunkColumns = 512;

// x's planes are the col matrix only when the output is the size of the input: a dilated 1x1
// conv_transpose2d with output_padding asks for fewer output rows (see conv.h).
bool is_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
         g.OH == g.H && g.OW == g.W;
}

// A chunk is nb whole images or, when one image's columns would not fit the workspace cap, a
// run of lc < L output positions of one image.
struct Plan {
  int64_t nb;   // images per chunk (at most)
  int64_t lc;   // output positions per chunk (L unless images are split)
  int threads;  // > 1: each thread takes an even share of the images, chunk by chunk
  bool direct;  // 1x1 stride-1 conv, one image per chunk: x itself is the col matrix
  int64_t ws;   // workspace elements per thread: col (K, nb*lc), then Y/DY (Cog, nb*lc)
};

Plan make_plan(int64_t N, const ConvGeom& g, int64_t Cog, size_t elem) {
  const int64_t K = g.C * g.kh * g.kw, L = std::max<int64_t>(1, g.OH * g.OW);
  const int threads = get_num_threads();
  const int64_t cap = std::max<int64_t>(1, conv_workspace_bytes() / ((K + Cog) * elem));  // columns
  Plan p{};
  // Images split into column runs share their dx image (col2im adds into it): run serially.
  const bool split = L > cap / threads;
  // Threads over images when every thread gets (nearly) the same number of them; otherwise
  // chunks run one after another with the GEMM's own threads.
  const bool even = N >= threads && (N % threads == 0 || N >= 4 * threads);
  p.threads = !split && threads > 1 && even ? threads : 1;
  p.lc = split ? std::min(L, cap) : L;
  // Chunks of about kChunkColumns columns, cut so that a thread's share of the batch divides
  // into chunks of equal size.
  const int64_t share = (N + p.threads - 1) / p.threads;
  const int64_t widest = std::max<int64_t>(1, std::min(kChunkColumns, cap / threads) / L);
  const int64_t per_thread = std::max<int64_t>(1, (share + widest - 1) / widest);  // chunks
  p.nb = split ? 1 : std::max<int64_t>(1, (share + per_thread - 1) / per_thread);
  p.direct = p.nb == 1 && is_pointwise(g);
  p.ws = p.direct || N == 0 ? 0 : (K + (p.nb > 1 ? Cog : 0)) * p.nb * p.lc;
  return p;
}

// The sizes of one call: K = C*kh*kw col rows, L = OH*OW output positions, Cog output channels
// per group, HWC elements of x (dx) per image and group.
struct Sizes {
  int64_t groups, Cout, K, L, Cog, HWC;
};

Sizes sizes_of(int64_t groups, int64_t Cout, const ConvGeom& g) {
  return {groups, Cout, g.C * g.kh * g.kw, g.OH * g.OW, Cout / groups, g.C * g.H * g.W};
}

// One chunk of a plan: images [n0, n0 + nb), output positions [l0, l0 + lc), run by thread tid
// in its workspace: col (K, ld), then the side-by-side Y / DY blocks (Cog, ld), ld = nb*lc.
template <typename T>
struct Chunk {
  int64_t n0, nb, l0, lc, ld;
  T* col;
  int tid;
  T* blocks(const Sizes& s) const { return col + s.K * ld; }
};

// Runs fn(chunk) over the chunks of the plan; thread t takes images [N*t/threads,
// N*(t+1)/threads). The workspaces are allocated up front; with one thread fn's GEMMs may use
// all threads themselves.
template <typename T, typename F>
void for_each_chunk(int64_t N, int64_t L, const Plan& p, F&& fn) {
  const std::unique_ptr<T[]> buf = scratch<T>(p.threads * p.ws);
  parallel_threads(p.threads, [&](int tid) {
    const int64_t end = N * (tid + 1) / p.threads;
    for (int64_t n0 = N * tid / p.threads; n0 < end; n0 += p.nb)
      for (int64_t l0 = 0; l0 < L; l0 += p.lc) {
        const int64_t nb = std::min(p.nb, end - n0), lc = std::min(p.lc, L - l0);
        fn(Chunk<T>{n0, nb, l0, lc, nb * lc, buf.get() + tid * p.ws, tid});
      }
  });
}

// Y (Cog, nb*lc) <-> y[n0 + i, grp*Cog + o, l0 : l0 + lc]: copy the chunk's blocks of y (or dy)
// out side by side, or back.
template <typename T>
void gather_blocks(const T* y, int64_t Cout, int64_t L, int64_t nb, int64_t Cog, int64_t lc,
                   T* out) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t o = 0; o < Cog; ++o)
      std::copy(y + (i * Cout + o) * L, y + (i * Cout + o) * L + lc, out + o * nb * lc + i * lc);
}

template <typename T>
void scatter_blocks(const T* in, int64_t Cout, int64_t L, int64_t nb, int64_t Cog, int64_t lc,
                    T* y) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t o = 0; o < Cog; ++o)
      std::copy(in + o * nb * lc + i * lc, in + o * nb * lc + (i + 1) * lc, y + (i * Cout + o) * L);
}

// A matrix whose rows are ld elements apart.
template <typename T>
struct Mat {
  T* data;
  int64_t ld;
};

// The chunk's col matrix (K, nb*lc) of group grp: x's own planes (rows L apart) for a direct
// conv, else each image's im2col, side by side in the workspace.
template <typename T>
Mat<const T> columns(const ConvGeom& g, const Sizes& s, const Plan& p, const Chunk<T>& c,
                     const T* x, int64_t grp) {
  const T* xg = x + (c.n0 * s.groups + grp) * s.HWC;
  if (p.direct) return {xg + c.l0, s.L};
  for (int64_t i = 0; i < c.nb; ++i)
    im2col(g, xg + i * s.groups * s.HWC, c.l0, c.lc, c.col + i * c.lc, c.ld);
  return {c.col, c.ld};
}

// The chunk's dy blocks (Cog, nb*lc) of group grp: in place (rows L apart) for one image, else
// gathered side by side into the workspace.
template <typename T>
Mat<const T> dy_blocks(const Sizes& s, const Chunk<T>& c, const T* dy, int64_t grp) {
  const T* dyg = dy + (c.n0 * s.Cout + grp * s.Cog) * s.L + c.l0;
  if (c.nb == 1) return {dyg, s.L};
  gather_blocks(dyg, s.Cout, s.L, c.nb, s.Cog, c.lc, c.blocks(s));
  return {c.blocks(s), c.ld};
}

// The stride s of a conv that is the stride-1 correlation of the image's s*s phases with
// (kh/s, kw/s) taps (see gather_image), 0 for none: undilated, the same stride both ways
// dividing the kernel, natural output size.
int64_t phase_stride(const ConvGeom& g) {
  const int64_t s = g.sh;
  const bool fits = g.sw == s && g.dh == 1 && g.dw == 1 && g.kh % s == 0 && g.kw % s == 0;
  const bool natural = g.OH == (g.H + 2 * g.ph - g.kh) / s + 1 &&
                       g.OW == (g.W + 2 * g.pw - g.kw) / s + 1;
  return fits && natural ? s : 0;
}

// Where each tap of the stride-s correlation of phases lies in one output channel's weights
// (C, kh, kw): tap t = (((c*s + ri)*s + rj)*Th + i)*Tw + j of phase channel (c, ri, rj) is
// w[o, c, s*i + ri, s*j + rj] (Th = kh/s, Tw = kw/s). A table, so that no loop over the
// weights divides.
std::vector<int64_t> phase_taps(int64_t C, int64_t kh, int64_t kw, int64_t s) {
  std::vector<int64_t> at;
  at.reserve(C * kh * kw);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ri = 0; ri < s; ++ri)
      for (int64_t rj = 0; rj < s; ++rj)
        for (int64_t i = ri; i < kh; i += s)
          for (int64_t j = rj; j < kw; j += s) at.push_back((c * kh + i) * kw + j);
  return at;
}

// xq (C*s*s, Hq, Wq) = the image x (C, H, W), zero-padded by (ph, pw), split into its s*s
// phases (space to depth): xq[(c*s + ri)*s + rj, u, v] = xpad[c, s*u + ri, s*v + rj], zero
// past the padded image. With s = 1, Hq = H + 2ph and Wq = W + 2pw, the padded image.
template <typename T>
void gather_image(int64_t C, int64_t H, int64_t W, int64_t s, int64_t ph, int64_t pw,
                  int64_t Hq, int64_t Wq, const T* x, T* xq) {
  std::fill(xq, xq + C * s * s * Hq * Wq, T(0));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ri = 0; ri < s; ++ri)
      for (int64_t rj = 0; rj < s; ++rj) {
        T* plane = xq + ((c * s + ri) * s + rj) * Hq * Wq;
        // the columns v with 0 <= s*v + rj - pw < W
        const int64_t v0 = (std::max<int64_t>(0, pw - rj) + s - 1) / s;
        const int64_t v1 = std::min(Wq, (W + pw - rj + s - 1) / s);
        for (int64_t u = 0; u < Hq; ++u) {
          const int64_t h = s * u + ri - ph;
          if (h < 0 || h >= H) continue;
          const T* src = x + (c * H + h) * W + rj - pw;
          for (int64_t v = v0; v < v1; ++v) plane[u * Wq + v] = src[s * v];
        }
      }
}

// The flat columns of a phase-stride conv (s > 1), which its weight gradient's GEMM reads in
// place of im2col's: per image, the Cq = C*s*s phases gathered (gather_image), Hq x Wq each
// with Hq = OH + Th - 1 and Wq = OW + Tw - 1 (Th = kh/s, Tw = kw/s), and col row
// t = (cq*Th + i)*Tw + j (tap at[t] of phase_taps) the Lq = OH*Wq elements of phase cq from
// (i, j) on: one contiguous copy, output (oh, ow) at oh*Wq + ow. The columns ow >= OW are
// garbage (the last row's run Tw - 1 elements past its phase, into the buffer's zero slack),
// and the dy blocks are zero there (dy_blocks), so they add nothing.
struct FlatPhases {
  int64_t s, Th, Tw, Hq, Wq, Lq;
  int64_t image;  // elements per gathered image, the slack of Tw - 1 included

  FlatPhases(const ConvGeom& g, int64_t s)
      : s(s), Th(g.kh / s), Tw(g.kw / s), Hq(g.OH + Th - 1), Wq(g.OW + Tw - 1), Lq(g.OH * Wq),
        image(g.C * s * s * Hq * Wq + Tw - 1) {}

  // The geometry make_plan sizes the chunks by: K col rows, Lq positions per image.
  ConvGeom plan_geometry(const ConvGeom& g) const {
    return {g.C * s * s, Hq, Wq, Th, Tw, 1, 1, 0, 0, 1, 1, g.OH, Wq};
  }

  // The chunk's col matrix (K, nb*Lq) of whole images, xq a gathered image's buffer.
  template <typename T>
  Mat<const T> columns(const ConvGeom& g, const Chunk<T>& c, const T* x, T* xq) const {
    for (int64_t n = 0; n < c.nb; ++n) {
      gather_image(g.C, g.H, g.W, s, g.ph, g.pw, Hq, Wq, x + (c.n0 + n) * g.C * g.H * g.W, xq);
      T* row = c.col + n * Lq;
      for (int64_t cq = 0; cq < g.C * s * s; ++cq)
        for (int64_t i = 0; i < Th; ++i)
          for (int64_t j = 0; j < Tw; ++j, row += c.ld)
            std::memcpy(row, xq + (cq * Hq + i) * Wq + j, Lq * sizeof(T));
    }
    return {c.col, c.ld};
  }

  // The chunk's dy blocks (Cout, nb*Lq): dy[n0 + n, o, oh, ow] at o*ld + n*Lq + oh*Wq + ow,
  // zero at the garbage columns.
  template <typename T>
  Mat<const T> dy_blocks(const ConvGeom& g, int64_t Cout, const Chunk<T>& c, const T* dy,
                         T* out) const {
    for (int64_t n = 0; n < c.nb; ++n)
      for (int64_t o = 0; o < Cout; ++o) {
        const T* src = dy + ((c.n0 + n) * Cout + o) * g.OH * g.OW;
        T* dst = out + o * c.ld + n * Lq;
        for (int64_t oh = 0; oh < g.OH; ++oh, src += g.OW, dst += Wq) {
          std::copy(src, src + g.OW, dst);
          std::fill(dst + g.OW, dst + Wq, T(0));
        }
      }
    return {out, c.ld};
  }
};

#ifdef GRADFLOW_HAVE_AVX2_KERNELS
// Direct convolution (see conv.h for when it runs): each image is copied once into a
// zero-padded buffer (split into its stride x stride phases), from which the planes kernel
// (conv_direct.h) computes 4 output channels at a time; the input gradient runs the same
// kernel over the padded dy, once per phase of dx, with the flipped, transposed kernel.

// The direct kernels of the SIMD level in use: AVX-512's 16-float vectors, or AVX2's 8.
const DirectKernels& direct_kernels() {
#ifdef GRADFLOW_HAVE_AVX512_KERNELS
  if (use_avx512()) return avx512::kDirectKernels;
#endif
  return avx2::kDirectKernels;
}

// The stride s of a conv that the direct kernels run, 0 for none: a phase stride (see
// phase_stride) whose correlation has more than one tap, on a CPU with the kernels.
int64_t direct_stride(const ConvGeom& g) {
  const int64_t s = phase_stride(g);
  return use_avx2() && s > 0 && (g.kh / s) * (g.kw / s) > 1 ? s : 0;
}

int64_t whole_blocks(int64_t channels) {
  return (channels + kDirectChannels - 1) / kDirectChannels;
}

// Whether the direct kernels run a correlation of `taps` taps (input channels x kernel) into
// `channels` output planes OH x OW laid out as `grid`: when at least half of the channels of
// its blocks of 4 and half of the grid's positions are real outputs (a flat grid pays for
// garbage columns and rounding), and a flat grid only up to the kernels' flat_taps. Measured:
// blocks of 2 or 3 channels run faster than the GEMM path, a block of 1 may not (LeNet's 5x5
// input gradient into 1 channel).
bool direct_output(int64_t taps, int64_t channels, int64_t OH, int64_t OW,
                   const DirectGrid& grid) {
  return channels > 0 && OH * OW > 0 && 2 * channels >= whole_blocks(channels) * kDirectChannels &&
         2 * OH * OW >= grid.y_plane && (!grid.flat || taps <= direct_kernels().flat_taps);
}

// The weights as conv_direct_planes reads them: per block of 4 of the out_ch output channels,
// for each of its taps t (input channel and kernel position, in the order the kernel reads
// them) the 4 channels' values value(o, t), a last partial block filled with zeros.
template <typename Value>
std::unique_ptr<float[]> interleave(int64_t out_ch, int64_t taps, Value&& value) {
  std::unique_ptr<float[]> w4 = scratch<float>(whole_blocks(out_ch) * kDirectChannels * taps);
  float* dst = w4.get();
  for (int64_t b = 0; b < out_ch; b += kDirectChannels)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t o = b; o < b + kDirectChannels; ++o) *dst++ = o < out_ch ? value(o, t) : 0.0f;
  return w4;
}

// The forward's weights, stride s, interleaved for the direct kernels.
std::unique_ptr<float[]> forward_weights(const float* w, int64_t Cout, int64_t C, int64_t kh,
                                         int64_t kw, int64_t s) {
  const int64_t K = C * kh * kw;
  const std::vector<int64_t> at = phase_taps(C, kh, kw, s);
  return interleave(Cout, K, [&](int64_t o, int64_t t) { return w[o * K + at[t]]; });
}

// Planes (rows x cols, packed) <-> the grid's layout (rows ld apart, planes `plane` apart).
// Into the grid, the columns past cols and the rows past the last are zero.
void to_grid(int64_t planes, int64_t rows, int64_t cols, int64_t ld, int64_t plane,
             const float* src, float* dst) {
  std::fill(dst, dst + planes * plane, 0.0f);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(src + (p * rows + r) * cols, src + (p * rows + r + 1) * cols,
                dst + p * plane + r * ld);
}

void from_grid(int64_t planes, int64_t rows, int64_t cols, int64_t ld, int64_t plane,
               const float* src, float* dst) {
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(src + p * plane + r * ld, src + p * plane + r * ld + cols,
                dst + (p * rows + r) * cols);
}

// Runs body(n, o0, count, image, stage) over the (image n, block of channels o0 .. o0 + count)
// pairs of N images and `channels` output channels, thread t taking an even share with its own
// buffer: `image_floats` for the prepared image, which load(n, image) fills when the thread
// moves to image n (its last `slack` floats stay zero), then `staged` floats of staging.
template <typename Load, typename Body>
void for_each_image_block(int64_t N, int64_t channels, int64_t image_floats, int64_t slack,
                          int64_t staged, Load&& load, Body&& body) {
  const int64_t blocks = whole_blocks(channels), pairs = N * blocks;
  if (pairs == 0) return;
  const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), pairs));
  const std::unique_ptr<float[]> buf = scratch<float>(threads * (image_floats + staged));
  parallel_threads(threads, [&](int tid) {
    float* image = buf.get() + tid * (image_floats + staged);
    float* stage = image + image_floats;
    std::fill(image + image_floats - slack, image + image_floats, 0.0f);
    int64_t loaded = -1;  // the image in the buffer
    for (int64_t q = pairs * tid / threads; q < pairs * (tid + 1) / threads; ++q) {
      const int64_t n = q / blocks, o0 = q % blocks * kDirectChannels;
      if (n != loaded) {
        load(n, image);
        loaded = n;
      }
      body(n, o0, std::min(kDirectChannels, channels - o0), image, stage);
    }
  });
}

// y (N, Cout, OH, OW) = the stride-s correlation of x (N, C, H, W), zero-padded by (ph, pw),
// with a kernel (kh, kw) interleaved into w4 for stride s, plus bias (may be null):
// OH = (H + 2ph - kh) / s + 1, likewise OW. The kernels run it as the stride-1 correlation of
// the image's C*s*s phases with (kh/s, kw/s) taps, each image gathered once per thread. A
// block of 4 whole-row planes is written straight into y; a flat grid's, or a last partial
// block's, is staged and its real outputs copied.
void direct_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t Cout, int64_t kh,
                    int64_t kw, int64_t s, int64_t ph, int64_t pw, const float* x,
                    const float* w4, const float* bias, float* y) {
  const int64_t OH = (H + 2 * ph - kh) / s + 1, OW = (W + 2 * pw - kw) / s + 1, L = OH * OW;
  const int64_t Cq = C * s * s, Th = kh / s, Tw = kw / s;
  const DirectKernels& kit = direct_kernels();
  const DirectGrid grid = tight_grid(OH, OW, Th, Tw, kit.width);
  for_each_image_block(
      N, Cout, Cq * grid.x_plane + grid.x_slack, grid.x_slack, kDirectChannels * grid.y_plane,
      [&](int64_t n, float* xp) {
        gather_image(C, H, W, s, ph, pw, OH + Th - 1, grid.Wp, x + n * C * H * W, xp);
      },
      [&](int64_t n, int64_t o0, int64_t count, const float* xp, float* yp) {
        float* yb = y + (n * Cout + o0) * L;
        const bool straight = !grid.flat && count == kDirectChannels;
        kit.planes(Cq, Th, Tw, grid, xp, w4 + o0 * Cq * Th * Tw, straight ? yb : yp);
        if (!straight) from_grid(count, OH, OW, grid.y_ld(), grid.y_plane, yp, yb);
        for (int64_t o = 0; bias != nullptr && o < count; ++o)
          std::for_each(yb + o * L, yb + (o + 1) * L, [v = bias[o0 + o]](float& e) { e += v; });
      });
}

// The rows (or columns) m of dy whose phase-r outputs land in dx: with h + p = s*m + r,
// 0 <= h < H for m in [m0, m0 + count).
struct PhaseRange {
  int64_t m0, count;
};

PhaseRange phase_range(int64_t H, int64_t p, int64_t s, int64_t r) {
  const int64_t m0 = (std::max<int64_t>(p - r, 0) + s - 1) / s, m1 = (H + p - r + s - 1) / s;
  return {m0, std::max<int64_t>(m1 - m0, 0)};
}

// The input gradient's direct condition, judged on its largest phase.
bool direct_input_output(int64_t Cout, const ConvGeom& g, int64_t s) {
  const PhaseRange r = phase_range(g.H, g.ph, s, 0), c = phase_range(g.W, g.pw, s, 0);
  return direct_output(Cout * g.kh * g.kw / (s * s), g.C, r.count, c.count,
                       tight_grid(r.count, c.count, g.kh / s, g.kw / s, direct_kernels().width));
}

// dx (N, C, H, W) of a conv of stride s whose kernel s divides (Th = kh/s, Tw = kw/s). With
// h + ph = s*m + rh and w + pw = s*m' + rw,
//   dx[c, h, w] = sum_{o, i, j} dyp[o, m + i, m' + j] * w[o, c, s*(Th-1-i) + rh, s*(Tw-1-j) + rw]
// where dyp is dy with Th - 1 zero rows above and Tw - 1 zero columns left: per phase
// (rh, rw) a stride-1 correlation of the one padded dy, over the window of (m, m') that lands
// in dx (s = 1: the correlation of dy with the flipped kernel). The buffer holds dyp from the
// lowest window's first row and column on. Threads share the (image, block of 4 channels)
// pairs (for_each_image_block); each computes its block's s*s phases and scatters them.
void direct_input_gradient(int64_t N, int64_t Cout, const ConvGeom& g, int64_t s,
                           const float* dy, const float* w, float* dx) {
  const int64_t C = g.C, Th = g.kh / s, Tw = g.kw / s, HW = g.H * g.W;
  std::vector<PhaseRange> rows, cols;
  for (int64_t r = 0; r < s; ++r) {
    rows.push_back(phase_range(g.H, g.ph, s, r));
    cols.push_back(phase_range(g.W, g.pw, s, r));
  }
  // Phase r's window starts at m0 >= m0 of phase s - 1, and ends by the end of phase 0's.
  const int64_t top = rows[s - 1].m0, left = cols[s - 1].m0;
  const int64_t Hb = rows[0].m0 + rows[0].count + Th - 1 - top;
  const int64_t Wb = cols[0].m0 + cols[0].count + Tw - 1 - left, plane = Hb * Wb;
  const int64_t taps = Cout * Th * Tw;
  const DirectKernels& kit = direct_kernels();
  std::vector<std::unique_ptr<float[]>> w4;  // per phase (rh, rw)
  std::vector<int64_t> at(taps);  // tap t = (o*Th + i)*Tw + j: w[o, 0, ...] flipped, phase's
  for (int64_t rh = 0; rh < s; ++rh)
    for (int64_t rw = 0; rw < s; ++rw) {
      for (int64_t o = 0, t = 0; o < Cout; ++o)
        for (int64_t i = 0; i < Th; ++i)
          for (int64_t j = 0; j < Tw; ++j, ++t)
            at[t] = (o * C * g.kh + s * (Th - 1 - i) + rh) * g.kw + s * (Tw - 1 - j) + rw;
      const int64_t kernel = g.kh * g.kw;
      w4.push_back(
          interleave(C, taps, [&](int64_t c, int64_t t) { return w[at[t] + c * kernel]; }));
    }
  // The staging buffer holds the largest phase; the slack covers every window's reads.
  int64_t staged = 0;
  for (const PhaseRange& r : rows)
    for (const PhaseRange& c : cols)
      staged = std::max(staged,
                        direct_grid(r.count, c.count, Tw, Wb, plane, kit.width).y_plane);
  const int64_t slack = kit.width + Tw + Wb;
  for_each_image_block(
      N, C, Cout * plane + slack, slack, kDirectChannels * staged,
      [&](int64_t n, float* dyp) {
        gather_image(Cout, g.OH, g.OW, 1, Th - 1 - top, Tw - 1 - left, Hb, Wb,
                     dy + n * Cout * g.OH * g.OW, dyp);
      },
      [&](int64_t n, int64_t c0, int64_t count, const float* dyp, float* yp) {
        float* dxb = dx + (n * C + c0) * HW;
        for (int64_t rh = 0; rh < s; ++rh)
          for (int64_t rw = 0; rw < s; ++rw) {
            const PhaseRange r = rows[rh], c = cols[rw];
            if (r.count == 0 || c.count == 0) continue;
            const DirectGrid grid = direct_grid(r.count, c.count, Tw, Wb, plane, kit.width);
            // Stride 1, whole rows, a full block: the phase is dx's planes themselves.
            const bool straight = s == 1 && !grid.flat && count == kDirectChannels;
            kit.planes(Cout, Th, Tw, grid, dyp + (r.m0 - top) * Wb + c.m0 - left,
                       w4[rh * s + rw].get() + c0 * taps, straight ? dxb : yp);
            if (straight) continue;
            for (int64_t o = 0; o < count; ++o)
              for (int64_t m = 0; m < r.count; ++m) {
                const float* src = yp + o * grid.y_plane + m * grid.y_ld();
                float* dst = dxb + o * HW + (s * (r.m0 + m) + rh - g.ph) * g.W +
                             s * c.m0 + rw - g.pw;
                for (int64_t v = 0; v < c.count; ++v) dst[s * v] = src[v];
              }
          }
      });
}

// A strided direct weight gradient runs up to this many taps (C*kh*kw; k4 s2 measured on
// AVX-512: 48 to 256 taps ran in 0.33-0.82x the GEMM path's time, 512 in 1.4-1.75x).
constexpr int64_t kStridedWeightTaps = 288;

// dw (Cout, C, kh, kw) of a conv of stride s on the direct path, as the weight gradient of the
// forward's stride-1 correlation of the image's s*s phases with (kh/s, kw/s) taps: the batch in
// runs of images whose gathered copies (and, on a flat grid or with a last block of fewer than
// 4 channels, dy staged in the grid's layout, its block filled up with zero planes) fit the
// workspace cap; per run, thread t takes an even share of the (block of 4 output channels,
// group of taps) pairs, each summed over the run's images, so no two threads write the same
// entries of dw. Sums of a partial block, or over phases (s > 1), go to a staging dw first, and
// only the real rows, each tap in its place in w, to dw.
void direct_weight_gradient(int64_t N, int64_t Cout, const ConvGeom& g, int64_t s,
                            const float* x, const float* dy, float* dw) {
  const int64_t Cq = g.C * s * s, Th = g.kh / s, Tw = g.kw / s;
  const int64_t K = Cq * Th * Tw, L = g.OH * g.OW, image = g.C * g.H * g.W;
  const DirectKernels& kit = direct_kernels();
  const DirectGrid grid = tight_grid(g.OH, g.OW, Th, Tw, kit.width);
  const int64_t padded = Cq * grid.x_plane + grid.x_slack;
  const int64_t blocks = whole_blocks(Cout), Cout4 = blocks * kDirectChannels;
  const bool stage = grid.flat || Cout4 != Cout;  // dy copied into the grid's layout
  const int64_t dy_plane = stage ? grid.y_plane : L, dy_image = (stage ? Cout4 : Cout) * dy_plane;
  const int64_t per_image = padded + (stage ? dy_image : 0);
  const int64_t tap_groups = (K + kit.taps - 1) / kit.taps;
  const int64_t pairs = blocks * tap_groups;
  const bool reorder = Cout4 != Cout || s > 1;
  std::vector<float> staging = workspace<float>(reorder ? Cout4 * K : 0);
  float* sums = reorder ? staging.data() : dw;
  std::fill(sums, sums + Cout4 * K, 0.0f);
  if (N > 0 && pairs > 0) {
    const int64_t run = std::clamp<int64_t>(
        conv_workspace_bytes() / (per_image * static_cast<int64_t>(sizeof(float))), 1, N);
    const int threads = static_cast<int>(std::min<int64_t>(get_num_threads(), pairs));
    const std::unique_ptr<float[]> buf = scratch<float>(run * per_image);
    float* staged_dy = buf.get() + run * padded;
    for (int64_t n0 = 0; n0 < N; n0 += run) {
      const int64_t nb = std::min(run, N - n0);
      parallel_threads(threads, [&](int tid) {
        for (int64_t n = nb * tid / threads; n < nb * (tid + 1) / threads; ++n) {
          float* xp = buf.get() + n * padded;
          gather_image(g.C, g.H, g.W, s, g.ph, g.pw, g.OH + Th - 1, grid.Wp,
                       x + (n0 + n) * image, xp);
          std::fill(xp + padded - grid.x_slack, xp + padded, 0.0f);
          if (!stage) continue;
          float* dyn = staged_dy + n * dy_image;
          to_grid(Cout, g.OH, g.OW, grid.y_ld(), grid.y_plane, dy + (n0 + n) * Cout * L, dyn);
          std::fill(dyn + Cout * dy_plane, dyn + dy_image, 0.0f);
        }
      });
      const float* dy_run = stage ? staged_dy : dy + n0 * Cout * L;
      parallel_threads(threads, [&](int tid) {
        for (int64_t q = pairs * tid / threads; q < pairs * (tid + 1) / threads; ++q) {
          const int64_t b = q / tap_groups, t0 = q % tap_groups * kit.taps;
          kit.weight(nb, Cq, Th, Tw, grid, buf.get(), padded,
                     dy_run + b * kDirectChannels * dy_plane, dy_image, t0,
                     std::min(kit.taps, K - t0), sums + b * kDirectChannels * K);
        }
      });
    }
  }
  if (!reorder) return;
  const std::vector<int64_t> at = phase_taps(g.C, g.kh, g.kw, s);
  for (int64_t o = 0; o < Cout; ++o)
    for (int64_t t = 0; t < K; ++t) dw[o * K + at[t]] = sums[o * K + t];
}
#endif

}  // namespace

template <typename T>
void conv2d_forward(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g, const T* x,
                    const T* w, const T* bias, T* y) {
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if constexpr (std::is_same_v<T, float>) {
    const int64_t s = direct_stride(g);
    if (groups == 1 && s > 0 &&
        direct_output(g.C * g.kh * g.kw, Cout, g.OH, g.OW,
                      tight_grid(g.OH, g.OW, g.kh / s, g.kw / s, direct_kernels().width))) {
      direct_forward(N, g.C, g.H, g.W, Cout, g.kh, g.kw, s, g.ph, g.pw, x,
                         forward_weights(w, Cout, g.C, g.kh, g.kw, s).get(), bias, y);
      return;
    }
  }
#endif
  const Sizes s = sizes_of(groups, Cout, g);
  const Plan p = make_plan(N, g, s.Cog, sizeof(T));
  for_each_chunk<T>(N, s.L, p, [&](const Chunk<T>& c) {
    for (int64_t grp = 0; grp < groups; ++grp) {
      const Mat<const T> col = columns(g, s, p, c, x, grp);
      const T* wg = w + grp * s.Cog * s.K;
      T* yg = y + (c.n0 * Cout + grp * s.Cog) * s.L + c.l0;  // (Cog, lc) block, rows L apart
      if (c.nb == 1) {
        gemm<T>(false, false, s.Cog, c.lc, s.K, T(1), wg, s.K, col.data, col.ld, T(0), yg, s.L);
        continue;
      }
      gemm<T>(false, false, s.Cog, c.ld, s.K, T(1), wg, s.K, col.data, col.ld, T(0),
              c.blocks(s), c.ld);
      scatter_blocks(c.blocks(s), Cout, s.L, c.nb, s.Cog, c.lc, yg);
    }
    if (bias == nullptr) return;
    for (int64_t i = 0; i < c.nb; ++i)
      for (int64_t o = 0; o < Cout; ++o) {
        T* row = y + ((c.n0 + i) * Cout + o) * s.L + c.l0;
        std::for_each(row, row + c.lc, [v = bias[o]](T& e) { e += v; });
      }
  });
}

template <typename T>
void conv2d_backward_input(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                           const T* dy, const T* w, T* dx) {
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if constexpr (std::is_same_v<T, float>) {
    const int64_t s = direct_stride(g);
    if (groups == 1 && s > 0 && direct_input_output(Cout, g, s)) {
      direct_input_gradient(N, Cout, g, s, dy, w, dx);
      return;
    }
  }
#endif
  const Sizes s = sizes_of(groups, Cout, g);
  const Plan p = make_plan(N, g, s.Cog, sizeof(T));
  for_each_chunk<T>(N, s.L, p, [&](const Chunk<T>& c) {
    for (int64_t grp = 0; grp < groups; ++grp) {
      const Mat<const T> dyb = dy_blocks(s, c, dy, grp);
      T* dxg = dx + (c.n0 * groups + grp) * s.HWC;
      // A direct conv's col is dx itself; otherwise col2im adds the col matrix into dx.
      const Mat<T> col = p.direct ? Mat<T>{dxg + c.l0, s.L} : Mat<T>{c.col, c.ld};
      gemm<T>(true, false, s.K, c.ld, s.Cog, T(1), w + grp * s.Cog * s.K, s.K, dyb.data, dyb.ld,
              T(0), col.data, col.ld);
      if (p.direct) continue;
      for (int64_t i = 0; i < c.nb; ++i) {
        T* dxi = dxg + i * groups * s.HWC;
        if (c.l0 == 0) std::fill(dxi, dxi + s.HWC, T(0));
        col2im(g, c.col + i * c.lc, c.l0, c.lc, c.ld, dxi);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                            const T* x, const T* dy, T* dw) {
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if constexpr (std::is_same_v<T, float>) {
    const int64_t s = direct_stride(g), taps = g.C * g.kh * g.kw;
    if (groups == 1 && s > 0 &&
        taps <= (s == 1 ? direct_kernels().weight_taps : kStridedWeightTaps) &&
        direct_output(taps, Cout, g.OH, g.OW,
                      tight_grid(g.OH, g.OW, g.kh / s, g.kw / s, direct_kernels().width))) {
      direct_weight_gradient(N, Cout, g, s, x, dy, dw);
      return;
    }
  }
#endif
  const Sizes s = sizes_of(groups, Cout, g);
  const int64_t K = s.K, Cog = s.Cog;
  // A phase-stride conv (s > 1) of more than one tap per phase runs on flat phase columns
  // (FlatPhases) when its chunks hold whole images (with one tap, the strided im2col is a
  // single gather and runs faster): its col rows, and so acc's, are then in phase_taps' order.
  const int64_t ps = groups == 1 ? phase_stride(g) : 0;
  const FlatPhases fp(g, std::max<int64_t>(ps, 1));
  const Plan pq = make_plan(N, fp.plan_geometry(g), Cog, sizeof(T));
  const bool phased = ps > 1 && fp.Th * fp.Tw > 1 && pq.lc == fp.Lq;
  const Plan p = phased ? pq : make_plan(N, g, Cog, sizeof(T));
  const std::vector<int64_t> at = phased ? phase_taps(g.C, g.kh, g.kw, ps) : std::vector<int64_t>{};
  // Per thread: a gathered image, its slack zero, then the chunk's dy blocks.
  const int64_t own = phased ? fp.image + Cog * p.nb * fp.Lq : 0;
  const std::unique_ptr<T[]> phase_buf = scratch<T>(p.threads * own);
  for (int t = 0; phased && t < p.threads; ++t)
    std::fill_n(phase_buf.get() + t * own + fp.image - (fp.Tw - 1), fp.Tw - 1, T(0));
  // Each thread accumulates dw[grp]^T = col @ DY^T (K x Cog per group) into its own slice:
  // with the long nb*lc dimension as the GEMM's k and the wide K as its m, this runs far
  // faster than DY @ col^T when Cog is small. The slices are summed and transposed at the end.
  const std::unique_ptr<T[]> acc_t = scratch<T>(p.threads * Cout * K);
  std::vector<char> touched(p.threads, 0);
  for_each_chunk<T>(N, phased ? fp.Lq : s.L, p, [&](const Chunk<T>& c) {
    T* acc = acc_t.get() + c.tid * Cout * K;
    const T beta = touched[c.tid] ? T(1) : T(0);
    touched[c.tid] = 1;
    T* mine = phase_buf.get() + c.tid * own;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const Mat<const T> col = phased ? fp.columns(g, c, x, mine) : columns(g, s, p, c, x, grp);
      const Mat<const T> dyb =
          phased ? fp.dy_blocks(g, Cout, c, dy, mine + fp.image) : dy_blocks(s, c, dy, grp);
      gemm<T>(false, true, K, Cog, c.ld, T(1), col.data, col.ld, dyb.data, dyb.ld, beta,
              acc + grp * K * Cog, Cog);
    }
  });
  // dw[grp, o, kk] = sum over threads of acc[grp, kk, o], in tiles so that both the reads and
  // the writes stay within a few cache lines.
  constexpr int64_t kTile = 32;
  std::fill(dw, dw + Cout * K, T(0));
  for (int t = 0; t < p.threads; ++t) {
    if (!touched[t]) continue;
    for (int64_t grp = 0; grp < groups; ++grp) {
      const T* acc = acc_t.get() + t * Cout * K + grp * K * Cog;
      T* dwg = dw + grp * Cog * K;
      for (int64_t k0 = 0; k0 < K; k0 += kTile)
        for (int64_t o0 = 0; o0 < Cog; o0 += kTile)
          for (int64_t o = o0; o < std::min(Cog, o0 + kTile); ++o)
            for (int64_t kk = k0; kk < std::min(K, k0 + kTile); ++kk)
              dwg[o * K + (phased ? at[kk] : kk)] += acc[kk * Cog + o];
    }
  }
}

template <typename T>
void channel_sum(int64_t N, int64_t C, int64_t L, const T* dy, T* db) {
#pragma omp parallel for schedule(static) if (C * N * L > 32768)
  for (int64_t c = 0; c < C; ++c) {
    T s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* row = dy + (n * C + c) * L;
      for (int64_t l = 0; l < L; ++l) s += row[l];
    }
    db[c] = s;
  }
}

GRADFLOW_INSTANTIATE_CONV(float)
GRADFLOW_INSTANTIATE_CONV(double)

}  // namespace gradflow::cpu
