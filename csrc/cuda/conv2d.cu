// conv2d on the GPU: forward, backward-data, backward-weight and backward-bias, NCHW,
// float32/float64, with the contract and checks of cpu/conv2d.cpp (conv_pool_checks.h).
//
//   x (N,C,H,W)  weight (K,Cg,R,S)  bias (K)  out (N,K,P,Q)   G = groups, Cg = C/G, Kg = K/G
//
// The three passes are implicit GEMMs, one per group, with no im2col buffer: a block owns
// a 64x64 tile of the product and walks the reduction 16 deep at a time, gathering both
// operand slices from the NCHW tensors into shared memory with the padding, stride and
// dilation index math (taps outside the image read as 0).
//   forward          out (Kg, N*P*Q) = weight (Kg, Cg*R*S)   @ patches of x (Cg*R*S, N*P*Q)
//   backward data    dx  (Cg, N*H*W) = weight^T (Cg, Kg*R*S) @ taps of dy (Kg*R*S, N*H*W)
//   backward weight  dw  (Kg, Cg*R*S) = dy (Kg, N*P*Q)       @ patches of x^T (N*P*Q, Cg*R*S)
// Backward data is a gather, so every dx element is written once: the taps of dy that hit
// input row h are those with (h + pad_top - r*dil_h) a non-negative multiple of stride_h
// below P*stride_h (columns likewise); the others read as 0, which handles any stride.
// Backward weight has a short output and a long reduction, so the reduction is split over
// blocks; each split writes its own partial sum to workspace and a second kernel adds the
// partials in split order: deterministic, no atomics, no zeroing pass.
// Fast paths: a 1x1, stride-1, unpadded conv is already a batched GEMM (ember::cuda::matmul)
// for forward and backward data; depthwise (G == C == K) uses direct kernels, as a GEMM
// with one row per group would waste 63 of every 64 rows of its tile.
// Bias gradients and the depthwise weight gradient are per-channel sums over the batch:
// blocks reduce image ranges with warp shuffles, partials added in order by a second kernel.
#include <algorithm>
#include <climits>
#include "../conv_pool_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

template <class T> struct Accum { using type = T; };
template <> struct Accum<float> { using type = double; };  // as the CPU bias gradient

// Sizes in the index math, 32-bit where check_dims guarantees they fit: the sizes of one
// plane, one filter and the geometry. Offsets across channels and images are 64-bit.
struct ConvDims {
  int N, C, H, W, K, Cg, Kg, R, S, P, Q, RS, CRSg;
  int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
  int64_t HW, PQ;
};

ConvDims check_dims(const ConvShape& s, const ConvGeometry& g, const char* op) {
  const int64_t lim = INT_MAX;
  const int64_t Hp = s.H + g.pad_top + g.pad_bottom, Wp = s.W + g.pad_left + g.pad_right;
  EMBER_CHECK(s.N <= lim && s.C <= lim && s.K <= lim && Hp <= lim / 2 && Wp <= lim / 2 && s.H * s.W <= lim &&
                  s.P * s.Q <= lim && s.CRSg <= lim && s.Kg * s.R * s.S <= lim && g.stride_h <= lim / 2 &&
                  g.stride_w <= lim / 2 && g.dil_h <= lim / 2 && g.dil_w <= lim / 2,
              op, ": CUDA conv2d takes at most 2^31 - 1 elements per plane and per filter");
  ConvDims d;
  d.N = int(s.N), d.C = int(s.C), d.H = int(s.H), d.W = int(s.W), d.K = int(s.K), d.Cg = int(s.Cg);
  d.Kg = int(s.Kg), d.R = int(s.R), d.S = int(s.S), d.P = int(s.P), d.Q = int(s.Q);
  d.RS = int(s.R * s.S), d.CRSg = int(s.CRSg);
  d.stride_h = int(g.stride_h), d.stride_w = int(g.stride_w), d.pad_top = int(g.pad_top);
  d.pad_left = int(g.pad_left), d.dil_h = int(g.dil_h), d.dil_w = int(g.dil_w);
  d.HW = s.H * s.W, d.PQ = s.P * s.Q;
  return d;
}

// ---- the implicit-GEMM main loop, shared by the three passes ----
//
// C (M, cols) = A (M, red) @ B (red, cols) per group. 256 threads; thread (ty, tx) =
// (tid / 16, tid % 16) accumulates rows ty + 16i and columns tx + 16j (i, j < 4): strided
// rather than adjacent, so the 16 lanes of a half-warp read 16 consecutive words of a
// B slice (no bank conflicts) and write 16 consecutive output columns (coalesced).
constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kGemmThreads = 256;
// Slices are stored k-major, a[k][m] and b[k][n]. Row length 64 + 2: a warp storing a
// k-fastest load (k = tid % 16, two m) then hits 32 distinct banks (2k + m mod 32).
constexpr int kSliceRow = kTileM + 2;

template <class T>
struct Slices {
  T a[2][kTileK][kSliceRow];
  T b[2][kTileK][kSliceRow];
};

// A Gemm problem (ForwardGemm, BackwardDataGemm, BackwardWeightGemm below) provides:
//   M, cols, red          the product's sizes per group
//   splits, split_len     the reduction cut into `splits` ranges of split_len (1 and red
//                         unless split); blockIdx.z = group * splits + split
//   kBKFastest            B's slice is gathered with k fastest across threads (else n)
//   begin(group, split, m0, n0, tid)   per-thread setup for its slots
//   fetch(k0, k_end, ra, rb)           this thread's 4 A and 4 B values of slice k0, with
//                         0 for k >= k_end. Slot j of A is (m = tid/16 + 16j, k = tid%16);
//                         of B (n = tid%64, k = tid/64 + 4j), or with kBKFastest
//                         (n = tid/16 + 16j, k = tid%16), relative to the tile's corner
//   column(n)             pointer to output (m = 0, n); rows are row_stride apart
//   bias                  per-row addend (already offset to the group) or nullptr
template <class T, class Gemm>
__global__ void __launch_bounds__(kGemmThreads) implicit_gemm(Gemm gemm) {
  __shared__ Slices<T> sm;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kTileM, n0 = int64_t(blockIdx.x) * kTileN;
  const int64_t group = blockIdx.z / gemm.splits, split = blockIdx.z % gemm.splits;
  const int64_t k_begin = split * gemm.split_len, k_end = min(gemm.red, k_begin + gemm.split_len);
  gemm.begin(group, split, m0, n0, tid);

  T ra[4], rb[4];
  auto stash = [&](int buf) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      sm.a[buf][tid % 16][tid / 16 + 16 * j] = ra[j];
      if (Gemm::kBKFastest) sm.b[buf][tid % 16][tid / 16 + 16 * j] = rb[j];
      else sm.b[buf][tid / 64 + 4 * j][tid % 64] = rb[j];
    }
  };

  T acc[4][4] = {};
  gemm.fetch(k_begin, k_end, ra, rb);
  stash(0);
  __syncthreads();
  int buf = 0;
  // Double buffering: the global loads of slice t+1 are issued before the math on slice t
  // and land in the other buffer after it; one barrier per slice separates both the
  // reads of `buf` from its next overwrite and the writes of `buf ^ 1` from their reads.
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const bool more = k0 + kTileK < k_end;
    if (more) gemm.fetch(k0 + kTileK, k_end, ra, rb);
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      T a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        a[i] = sm.a[buf][k][ty + 16 * i];
        b[i] = sm.b[buf][k][tx + 16 * i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    if (more) stash(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }

#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int64_t n = n0 + tx + 16 * j;
    if (n >= gemm.cols) continue;
    T* out = gemm.column(n);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + ty + 16 * i;
      if (m < gemm.M) out[m * gemm.row_stride] = acc[i][j] + (gemm.bias ? gemm.bias[m] : T(0));
    }
  }
}

// forward: A = weight (Kg, Cg*R*S) row-major, k = (c, r, s); B column n = (img, p, q).
template <class T>
struct ForwardGemm {
  static constexpr bool kBKFastest = false;
  const T* x;
  const T* w;
  const T* bias_all;
  T* y;
  ConvDims d;
  int64_t M, cols, red, splits, split_len, row_stride;
  // per thread
  const T* bias;
  const T* w_rows;  // weight row of slot 0
  int64_t rows_left;
  const T* x_img;   // x[img, group * Cg] of this thread's B column
  int h_base, w_base;
  bool col_ok;
  int64_t group;

  __device__ void begin(int64_t grp, int64_t, int64_t m0, int64_t n0, int tid) {
    group = grp;
    bias = bias_all ? bias_all + grp * d.Kg : nullptr;
    const int64_t m = m0 + tid / 16;
    w_rows = w + (grp * d.Kg + m) * d.CRSg;
    rows_left = d.Kg - m;
    const int64_t n = min(n0 + tid % 64, cols - 1);  // past the last column: loads are skipped
    col_ok = n0 + tid % 64 < cols;
    const int64_t img = n / d.PQ;
    const int pq = int(n - img * d.PQ), p = pq / d.Q, q = pq - p * d.Q;
    x_img = x + (img * d.C + grp * d.Cg) * d.HW;
    h_base = p * d.stride_h - d.pad_top;
    w_base = q * d.stride_w - d.pad_left;
  }
  __device__ void fetch(int64_t k0, int64_t k_end, T (&ra)[4], T (&rb)[4]) const {
    const int64_t ka = k0 + threadIdx.x % 16;
#pragma unroll
    for (int j = 0; j < 4; ++j) ra[j] = (ka < k_end && 16 * j < rows_left) ? w_rows[16 * j * int64_t(d.CRSg) + ka] : T(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t kb = k0 + threadIdx.x / 64 + 4 * j;
      T v = T(0);
      if (col_ok && kb < k_end) {
        const int k = int(kb), c = k / d.RS, rs = k - c * d.RS, r = rs / d.S, s = rs - r * d.S;
        const int h = h_base + r * d.dil_h, w = w_base + s * d.dil_w;
        if (unsigned(h) < unsigned(d.H) && unsigned(w) < unsigned(d.W)) v = x_img[c * d.HW + h * d.W + w];
      }
      rb[j] = v;
    }
  }
  __device__ T* column(int64_t n) const {
    const int64_t img = n / d.PQ;
    return y + (img * d.K + group * d.Kg) * d.PQ + (n - img * d.PQ);
  }
};

// backward data: A = weight^T, A[c][k = (kout, r, s)] = w[group*Kg + kout, c, r, s];
// B column n = (img, h, w), B[k][n] = dy[img, group*Kg + kout, p, q] for the p, q that
// tap (r, s) reaches from (h, w), or 0 where there is none.
template <class T>
struct BackwardDataGemm {
  static constexpr bool kBKFastest = false;
  const T* dy;
  const T* w;
  T* dx;
  ConvDims d;
  int64_t M, cols, red, splits, split_len, row_stride;
  static constexpr const T* bias = nullptr;
  // per thread
  const T* w_cols;  // w[group*Kg, c of slot 0]
  int64_t rows_left;
  const T* dy_img;  // dy[img, group * Kg] of this thread's B column
  int h_pad, w_pad; // h + pad_top, w + pad_left
  bool col_ok;
  int64_t group;

  __device__ void begin(int64_t grp, int64_t, int64_t m0, int64_t n0, int tid) {
    group = grp;
    const int64_t c = m0 + tid / 16;
    w_cols = w + grp * d.Kg * int64_t(d.CRSg) + c * d.RS;
    rows_left = d.Cg - c;
    const int64_t n = min(n0 + tid % 64, cols - 1);  // past the last column: loads are skipped
    col_ok = n0 + tid % 64 < cols;
    const int64_t img = n / d.HW;
    const int hw = int(n - img * d.HW), h = hw / d.W, wc = hw - h * d.W;
    dy_img = dy + (img * d.K + grp * d.Kg) * d.PQ;
    h_pad = h + d.pad_top;
    w_pad = wc + d.pad_left;
  }
  __device__ void fetch(int64_t k0, int64_t k_end, T (&ra)[4], T (&rb)[4]) const {
    const int64_t ka = k0 + threadIdx.x % 16;
    const int kout_a = int(ka) / d.RS, rs_a = int(ka) - kout_a * d.RS;
#pragma unroll
    for (int j = 0; j < 4; ++j)
      ra[j] = (ka < k_end && 16 * j < rows_left) ? w_cols[kout_a * int64_t(d.CRSg) + int64_t(16 * j) * d.RS + rs_a] : T(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t kb = k0 + threadIdx.x / 64 + 4 * j;
      T v = T(0);
      if (col_ok && kb < k_end) {
        const int k = int(kb), kout = k / d.RS, rs = k - kout * d.RS, r = rs / d.S, s = rs - r * d.S;
        const int ph = h_pad - r * d.dil_h, pw = w_pad - s * d.dil_w;  // p*stride_h, q*stride_w if a tap hits
        if (ph >= 0 && pw >= 0) {
          const int p = ph / d.stride_h, q = pw / d.stride_w;
          if (p * d.stride_h == ph && q * d.stride_w == pw && p < d.P && q < d.Q)
            v = dy_img[kout * d.PQ + p * d.Q + q];
        }
      }
      rb[j] = v;
    }
  }
  __device__ T* column(int64_t n) const {
    const int64_t img = n / d.HW;
    return dx + (img * d.C + group * d.Cg) * d.HW + (n - img * d.HW);
  }
};

// backward weight: A = dy, A[kout][k = (img, p, q)]; B[k][n = (c, r, s)] = x at the tap
// (r, s) of output (p, q). Both slices are gathered with k fastest: consecutive q are
// consecutive addresses of dy and (stride 1) of x.
template <class T>
struct BackwardWeightGemm {
  static constexpr bool kBKFastest = true;
  const T* x;
  const T* dy;
  T* partial;  // (splits, K, Cg*R*S); dw itself when splits == 1
  ConvDims d;
  int64_t M, cols, red, splits, split_len, row_stride;
  static constexpr const T* bias = nullptr;
  // per thread
  const T* dy_rows;  // dy[0, group*Kg + kout of slot 0]
  int64_t rows_left;
  const T* x_group;  // x[0, group * Cg]
  int64_t tap_offset[4];  // c*H*W of B slot j's column, or -1 past the last column
  int tap_h[4], tap_w[4];  // r*dil_h - pad_top, s*dil_w - pad_left
  T* out;

  __device__ void begin(int64_t grp, int64_t split, int64_t m0, int64_t n0, int tid) {
    const int64_t kout = m0 + tid / 16;
    dy_rows = dy + (grp * d.Kg + kout) * d.PQ;
    rows_left = d.Kg - kout;
    x_group = x + grp * d.Cg * d.HW;
    out = partial + split * int64_t(d.K) * d.CRSg + grp * d.Kg * int64_t(d.CRSg);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tid / 16 + 16 * j;
      const int crs = int(min(n, int64_t(d.CRSg) - 1)), c = crs / d.RS, rs = crs - c * d.RS, r = rs / d.S;
      tap_offset[j] = n < cols ? c * d.HW : -1;
      tap_h[j] = r * d.dil_h - d.pad_top;
      tap_w[j] = (rs - r * d.S) * d.dil_w - d.pad_left;
    }
  }
  __device__ void fetch(int64_t k0, int64_t k_end, T (&ra)[4], T (&rb)[4]) const {
    const int64_t k = k0 + threadIdx.x % 16;  // the same k for all 8 slots
    const bool k_ok = k < k_end;
    const int64_t img = k_ok ? k / d.PQ : 0;
    const int pq = k_ok ? int(k - img * d.PQ) : 0, p = pq / d.Q, q = pq - p * d.Q;
    const T* dy_k = dy_rows + img * d.K * d.PQ + pq;
#pragma unroll
    for (int j = 0; j < 4; ++j) ra[j] = (k_ok && 16 * j < rows_left) ? dy_k[16 * j * d.PQ] : T(0);
    const T* x_k = x_group + img * d.C * d.HW;
    const int hp = p * d.stride_h, wq = q * d.stride_w;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int h = hp + tap_h[j], w = wq + tap_w[j];
      rb[j] = (k_ok && tap_offset[j] >= 0 && unsigned(h) < unsigned(d.H) && unsigned(w) < unsigned(d.W))
                  ? x_k[tap_offset[j] + h * d.W + w]
                  : T(0);
    }
  }
  __device__ T* column(int64_t n) const { return out + n; }
};

template <class T, class Gemm>
void launch_gemm(Gemm& gemm, int64_t groups, const char* op) {
  const int64_t tiles_n = (gemm.cols + kTileN - 1) / kTileN, tiles_m = (gemm.M + kTileM - 1) / kTileM;
  EMBER_CHECK(tiles_n <= INT_MAX && tiles_m <= 65535 && groups * gemm.splits <= 65535, op,
              ": too many tiles for one CUDA grid (", tiles_n, " x ", tiles_m, " x ", groups * gemm.splits, ")");
  dim3 grid(unsigned(tiles_n), unsigned(tiles_m), unsigned(groups * gemm.splits));
  implicit_gemm<T, Gemm><<<grid, kGemmThreads, 0, current_stream()>>>(gemm);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

// Blocks that keep every SM of an H100/H200 (132) busy for a few waves.
constexpr int64_t kTargetBlocks = 132 * 4;

// out[i] = sum over s < splits of partial[s * n + i], in split order.
template <class A, class T>
__global__ void add_partials(const A* __restrict__ partial, int64_t splits, int64_t n, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    A sum = A(0);
    for (int64_t s = 0; s < splits; ++s) sum += partial[s * n + i];
    out[i] = static_cast<T>(sum);
  }
}

// ---- per-channel sums over the batch: bias gradient, depthwise weight gradient ----

template <class A>
__device__ A block_sum(A v) {
  __shared__ A warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = A(0);
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : A(0);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  return v;
}

// partial (splits, rows): block (row, split) sums term(row, img, pq) over images
// [split * imgs_per_split, ...) and pq < PQ. Warps take images, lanes positions.
template <class A, class Term>
__global__ void __launch_bounds__(kThreads) channel_sums(Term term, int64_t rows, int N, int imgs_per_split,
                                                         int64_t PQ, A* __restrict__ partial) {
  const int64_t row = blockIdx.x;
  const int img0 = blockIdx.y * imgs_per_split, img1 = min(N, img0 + imgs_per_split);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  A v = A(0);
  for (int img = img0 + warp; img < img1; img += kThreads / 32)
    for (int64_t pq = lane; pq < PQ; pq += 32) v += static_cast<A>(term(row, img, pq));
  v = block_sum(v);
  if (threadIdx.x == 0) partial[blockIdx.y * rows + row] = v;
}

// The bias gradient's term: dy (N,K,P,Q).
template <class T>
struct BiasTerm {
  const T* dy;
  int64_t K, PQ;
  __device__ T operator()(int64_t k, int img, int64_t pq) const { return dy[(img * K + k) * PQ + pq]; }
};

// The depthwise weight gradient's term for row = c*R*S + tap: dy (N,C,P,Q) times x (N,C,H,W) at the tap.
template <class T>
struct DepthwiseWeightTerm {
  const T* x;
  const T* dy;
  ConvDims d;
  __device__ T operator()(int64_t row, int img, int64_t pq64) const {
    const int c = int(row / d.RS), rs = int(row - int64_t(c) * d.RS), r = rs / d.S, s = rs - r * d.S;
    const int pq = int(pq64), p = pq / d.Q, q = pq - p * d.Q;
    const int h = p * d.stride_h - d.pad_top + r * d.dil_h, w = q * d.stride_w - d.pad_left + s * d.dil_w;
    if (unsigned(h) >= unsigned(d.H) || unsigned(w) >= unsigned(d.W)) return T(0);
    const int64_t plane = int64_t(img) * d.C + c;
    return dy[plane * d.PQ + pq] * x[plane * d.HW + h * d.W + w];
  }
};

// out (rows) = the batch sums of term, split over images so that rows * splits fills the GPU.
template <class T, class Term>
void sum_channels(const Term& term, int64_t rows, int64_t N, int64_t PQ, T* out, const char* op) {
  using A = typename Accum<T>::type;
  EMBER_CHECK(rows <= INT_MAX && N <= INT_MAX, op, ": too many channels or images for one CUDA grid");
  const int64_t want = std::clamp<int64_t>((kTargetBlocks + rows - 1) / rows, 1, std::min<int64_t>(N, 65535));
  const int64_t per = (N + want - 1) / want, splits = (N + per - 1) / per;
  A* partial = static_cast<A*>(workspace(0, sizeof(A) * rows * splits));
  cudaStream_t stream = current_stream();
  channel_sums<A, Term><<<dim3(unsigned(rows), unsigned(splits)), kThreads, 0, stream>>>(term, rows, int(N), int(per),
                                                                                         PQ, partial);
  EMBER_CUDA_LAUNCH_CHECK(op);
  add_partials<A, T><<<blocks_for(rows), kThreads, 0, stream>>>(partial, splits, rows, out);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

// ---- depthwise (G == C == K): one thread per output element ----

// x (N,C,H,W), w (C,1,R,S), bias (C) or null -> y (N,C,P,Q)
template <class T>
__global__ void depthwise_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                  T* __restrict__ y, ConvDims d) {
  const int64_t total = int64_t(d.N) * d.C * d.PQ;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.PQ;
    const int pq = int(i - plane * d.PQ), p = pq / d.Q, q = pq - p * d.Q, c = int(plane % d.C);
    const T* xp = x + plane * d.HW;
    const T* wc = w + int64_t(c) * d.RS;
    const int h0 = p * d.stride_h - d.pad_top, w0 = q * d.stride_w - d.pad_left;
    T acc = T(0);
    for (int r = 0; r < d.R; ++r) {
      const int h = h0 + r * d.dil_h;
      if (unsigned(h) >= unsigned(d.H)) continue;
      for (int s = 0; s < d.S; ++s) {
        const int wi = w0 + s * d.dil_w;
        if (unsigned(wi) < unsigned(d.W)) acc += wc[r * d.S + s] * xp[h * d.W + wi];
      }
    }
    y[i] = acc + (bias ? bias[c] : T(0));
  }
}

// dy (N,C,P,Q), w (C,1,R,S) -> dx (N,C,H,W): each dx element gathers the outputs its taps reach.
template <class T>
__global__ void depthwise_backward_data(const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,
                                        ConvDims d) {
  const int64_t total = int64_t(d.N) * d.C * d.HW;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.HW;
    const int hw = int(i - plane * d.HW), h = hw / d.W, wc = hw - h * d.W, c = int(plane % d.C);
    const T* dyp = dy + plane * d.PQ;
    const T* wk = w + int64_t(c) * d.RS;
    T acc = T(0);
    for (int r = 0; r < d.R; ++r) {
      const int ph = h + d.pad_top - r * d.dil_h;  // p * stride_h when tap r of row p hits h
      if (ph < 0) break;  // ph falls as r grows
      const int p = ph / d.stride_h;
      if (p * d.stride_h != ph || p >= d.P) continue;
      for (int s = 0; s < d.S; ++s) {
        const int pw = wc + d.pad_left - s * d.dil_w;
        if (pw < 0) break;
        const int q = pw / d.stride_w;
        if (q * d.stride_w == pw && q < d.Q) acc += wk[r * d.S + s] * dyp[p * d.Q + q];
      }
    }
    dx[i] = acc;
  }
}

bool is_depthwise(const ConvShape& s) { return s.G > 1 && s.G == s.C && s.G == s.K; }

// 1x1, stride 1, no padding: out[n] = W @ x[n] as (Kg, Cg) @ (Cg, H*W) per group.
bool is_pointwise(const ConvShape& s, const ConvGeometry& g) {
  return s.R == 1 && s.S == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_bottom == 0 &&
         g.pad_left == 0 && g.pad_right == 0 && s.Cg > 0 && s.Kg > 0 && s.N <= 65535;
}

// A (batch, rows, cols) view of `data` with the given strides, for matmul.
TensorView matrix_view(void* data, DType dtype, int64_t batch, int64_t rows, int64_t cols, int64_t batch_stride,
                       int64_t row_stride) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = 3;
  v.shape[0] = batch, v.shape[1] = rows, v.shape[2] = cols;
  v.strides[0] = batch_stride, v.strides[1] = row_stride, v.strides[2] = 1;
  return v;
}

// y (N,K,P,Q) = bias[k] everywhere, before a GEMM that adds into it.
template <class T>
__global__ void fill_bias(const T* __restrict__ bias, int64_t K, int64_t PQ, int64_t total, T* __restrict__ y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bias[(i / PQ) % K];
}

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView* bv, const TensorView& yv,
                  const ConvShape& s, const ConvGeometry& g, const char* op) {
  const ConvDims d = check_dims(s, g, op);
  const T* bias = bv ? bv->ptr<T>() : nullptr;
  T* y = yv.ptr<T>();
  const int64_t total = s.N * s.K * s.P * s.Q;
  if (total == 0) return;
  cudaStream_t stream = current_stream();
  if (is_depthwise(s)) {
    depthwise_forward<T><<<blocks_for(total), kThreads, 0, stream>>>(xv.ptr<T>(), wv.ptr<T>(), bias, y, d);
    EMBER_CUDA_LAUNCH_CHECK(op);
    return;
  }
  if (is_pointwise(s, g)) {
    if (bias) {
      fill_bias<T><<<blocks_for(total), kThreads, 0, stream>>>(bias, s.K, d.PQ, total, y);
      EMBER_CUDA_LAUNCH_CHECK(op);
    }
    for (int64_t grp = 0; grp < s.G; ++grp) {
      TensorView a = matrix_view(wv.ptr<T>() + grp * s.Kg * s.Cg, xv.dtype, 1, s.Kg, s.Cg, 0, s.Cg);
      TensorView b = matrix_view(xv.ptr<T>() + grp * s.Cg * d.HW, xv.dtype, s.N, s.Cg, d.HW, s.C * d.HW, d.HW);
      TensorView c = matrix_view(y + grp * s.Kg * d.PQ, xv.dtype, s.N, s.Kg, d.PQ, s.K * d.PQ, d.PQ);
      matmul(a, b, c, false, false, 1.0, bias ? 1.0 : 0.0);
    }
    return;
  }
  ForwardGemm<T> gemm{};
  gemm.x = xv.ptr<T>(), gemm.w = wv.ptr<T>(), gemm.bias_all = bias, gemm.y = y, gemm.d = d;
  gemm.M = s.Kg, gemm.cols = s.N * d.PQ, gemm.red = s.CRSg, gemm.splits = 1, gemm.split_len = s.CRSg;
  gemm.row_stride = d.PQ;
  launch_gemm<T>(gemm, s.G, op);
}

template <class T>
void backward_data_impl(const TensorView& dyv, const TensorView& wv, const TensorView& dxv, const ConvShape& s,
                        const ConvGeometry& g, const char* op) {
  const ConvDims d = check_dims(s, g, op);
  T* dx = dxv.ptr<T>();
  const int64_t total = s.N * s.C * d.HW;
  if (total == 0) return;
  cudaStream_t stream = current_stream();
  if (is_depthwise(s)) {
    depthwise_backward_data<T><<<blocks_for(total), kThreads, 0, stream>>>(dyv.ptr<T>(), wv.ptr<T>(), dx, d);
    EMBER_CUDA_LAUNCH_CHECK(op);
    return;
  }
  if (is_pointwise(s, g)) {
    // dx[n] (Cg, H*W) = W^T (Cg, Kg) @ dy[n] (Kg, H*W), per group
    for (int64_t grp = 0; grp < s.G; ++grp) {
      TensorView a = matrix_view(wv.ptr<T>() + grp * s.Kg * s.Cg, dxv.dtype, 1, s.Kg, s.Cg, 0, s.Cg);
      TensorView b = matrix_view(dyv.ptr<T>() + grp * s.Kg * d.PQ, dxv.dtype, s.N, s.Kg, d.PQ, s.K * d.PQ, d.PQ);
      TensorView c = matrix_view(dx + grp * s.Cg * d.HW, dxv.dtype, s.N, s.Cg, d.HW, s.C * d.HW, d.HW);
      matmul(a, b, c, true, false, 1.0, 0.0);
    }
    return;
  }
  BackwardDataGemm<T> gemm{};
  gemm.dy = dyv.ptr<T>(), gemm.w = wv.ptr<T>(), gemm.dx = dx, gemm.d = d;
  gemm.M = s.Cg, gemm.cols = s.N * d.HW, gemm.red = s.Kg * d.RS, gemm.splits = 1, gemm.split_len = gemm.red;
  gemm.row_stride = d.HW;
  launch_gemm<T>(gemm, s.G, op);
}

template <class T>
void backward_weight_impl(const TensorView& xv, const TensorView& dyv, const TensorView& dwv, const ConvShape& s,
                          const ConvGeometry& g, const char* op) {
  const ConvDims d = check_dims(s, g, op);
  T* dw = dwv.ptr<T>();
  const int64_t wn = s.K * s.CRSg;
  if (wn == 0) return;
  cudaStream_t stream = current_stream();
  const int64_t red = s.N * d.PQ;
  if (red == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(T) * wn, stream));
    return;
  }
  if (is_depthwise(s)) {
    sum_channels<T>(DepthwiseWeightTerm<T>{xv.ptr<T>(), dyv.ptr<T>(), d}, s.C * d.RS, s.N, d.PQ, dw, op);
    return;
  }
  BackwardWeightGemm<T> gemm{};
  gemm.x = xv.ptr<T>(), gemm.dy = dyv.ptr<T>(), gemm.d = d;
  gemm.M = s.Kg, gemm.cols = s.CRSg, gemm.red = red, gemm.row_stride = s.CRSg;
  // Split the reduction until the grid fills the GPU, keeping >= 8 slices per split.
  const int64_t tiles = (s.CRSg + kTileN - 1) / kTileN * ((s.Kg + kTileM - 1) / kTileM) * s.G;
  const int64_t slices = (red + kTileK - 1) / kTileK;
  const int64_t want = std::clamp<int64_t>((kTargetBlocks + tiles - 1) / tiles, 1,
                                           std::max<int64_t>(1, std::min<int64_t>(slices / 8, 65535 / s.G)));
  gemm.split_len = (slices + want - 1) / want * kTileK;
  gemm.splits = (red + gemm.split_len - 1) / gemm.split_len;
  gemm.partial = gemm.splits == 1 ? dw : static_cast<T*>(workspace(0, sizeof(T) * gemm.splits * wn));
  launch_gemm<T>(gemm, s.G, op);
  if (gemm.splits > 1) {
    add_partials<T, T><<<blocks_for(wn), kThreads, 0, stream>>>(gemm.partial, gemm.splits, wn, dw);
    EMBER_CUDA_LAUNCH_CHECK(op);
  }
}

template <class T>
void backward_bias_impl(const TensorView& dyv, const TensorView& dbv, const char* op) {
  const int64_t N = dyv.shape[0], K = dyv.shape[1], PQ = dyv.shape[2] * dyv.shape[3];
  if (K == 0) return;
  if (N * PQ == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(dbv.data, 0, sizeof(T) * K, current_stream()));
    return;
  }
  sum_channels<T>(BiasTerm<T>{dyv.ptr<T>(), K, PQ}, K, N, PQ, dbv.ptr<T>(), op);
}

}  // namespace

void conv2d_forward(const TensorView& x, const TensorView& weight, const TensorView* bias, const TensorView& out,
                    const ConvGeometry& g) {
  const char* op = "conv2d";
  const ConvShape s = check_conv(x, weight, out, g, op, "out");
  if (bias) check_conv_bias(x, *bias, s.K, op);
  EMBER_DISPATCH_FLOAT(x.dtype, op, forward_impl<T>(x, weight, bias, out, s, g, op));
}

void conv2d_backward_data(const TensorView& grad_out, const TensorView& weight, const TensorView& grad_x,
                          const ConvGeometry& g) {
  const char* op = "conv2d_backward_data";
  const ConvShape s = check_conv(grad_x, weight, grad_out, g, op, "grad_out");
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op, backward_data_impl<T>(grad_out, weight, grad_x, s, g, op));
}

void conv2d_backward_weight(const TensorView& x, const TensorView& grad_out, const TensorView& grad_weight,
                            const ConvGeometry& g) {
  const char* op = "conv2d_backward_weight";
  const ConvShape s = check_conv(x, grad_weight, grad_out, g, op, "grad_out");
  EMBER_DISPATCH_FLOAT(x.dtype, op, backward_weight_impl<T>(x, grad_out, grad_weight, s, g, op));
}

void conv2d_backward_bias(const TensorView& grad_out, const TensorView& grad_bias) {
  const char* op = "conv2d_backward_bias";
  check_conv_backward_bias(grad_out, grad_bias, op);
  EMBER_DISPATCH_FLOAT(grad_out.dtype, op, backward_bias_impl<T>(grad_out, grad_bias, op));
}

}  // namespace ember::cuda
