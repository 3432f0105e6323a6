// Winograd F(4x4, 3x3) convolution, float32: forward, backward-data and backward-weight.
//
//   x (N,C,H,W)  weight (K,C,3,3)  out (N,K,P,Q)     stride 1, dilation 1, groups 1
//
// A 4x4 output tile needs 6x6 inputs; in the transform domain the 3x3 correlation becomes
// 36 independent channel contractions (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016):  Y = A^T [ sum_c (G g_kc G^T) . (B^T d_c B) ] A.
// For a block of tiles that is 36 GEMMs, M_xi (tiles, K) = V_xi (tiles, C) @ U_xi (C, K):
// 36 multiply-adds per tile and channel pair for 16 outputs, where direct convolution
// needs 16*9 = 144, so 4x fewer (3x on 14x14 images, whose 4x4 tiles overhang the edge).
//
//   forward         in = x,  U from weight               -> out
//   backward data   in = dy, U from weight rotated 180 degrees, channels swapped, padding
//                   2 - pad (a stride-1 conv's adjoint is the full correlation)  -> dx
//   backward weight dW = G^T [ sum over tiles of (B^T d B) . (A dY A^T) ] G, the same input
//                   transform with 36 GEMMs Omega_xi (K, C) += Z_xi^T (K, tiles) @ V_xi
//
// Rounding: the transforms scale values by up to ~100 and back, so float32 results carry
// a few times 1e-6 relative error instead of direct convolution's ~1e-7; like cuDNN's and
// oneDNN's Winograd kernels. float64 always takes the direct algorithms (conv2d.cpp).
//
// Work is split into bands (a run of tile rows of one image) and bands into blocks sized
// so a block's transformed tiles (36 x tiles x (C + K) floats) stay in L2; each thread
// transforms, multiplies and un-transforms its own blocks with single-threaded GEMMs.
#include "conv2d_winograd.h"
#include <immintrin.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include "dispatch.h"
#include "gemm.h"
#include "workspace.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "conv2d_winograd_loops.h"
#include "isa_instantiate.h"

namespace {

thread_local Workspace tl_u;        // transformed weights (calling thread, shared read-only)
thread_local Workspace tl_omega;    // per-thread weight-gradient sums (calling thread)
thread_local Workspace tl_v;        // V and M (or Z) of a block
thread_local Workspace tl_tile;     // one input band in channel-last order
thread_local Workspace tl_tile2;    // the weight gradient's grad_out band

// Bytes of transformed tiles a block may hold (V and M together): most of a 2 MiB L2.
constexpr int64_t kBlockBytes = 1536 * 1024;

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// Stride between the 36 transform-domain matrices of `rows` x `cols` floats. A multiple
// of 4 KiB would put the 36 rows one transform touches in the same L1 set; an odd number
// of cache lines past the matrix spreads them over 36 sets.
int64_t matrix_stride(int64_t rows, int64_t cols) { return (rows * cols + 15) / 32 * 32 + 16; }

// One conv in Winograd form: `in` (N, Ci, Hi, Wi) correlated with 3x3 filters into
// out (N, Ko, Po, Qo), the image shifted by (pt, pl) padding. Channels are padded to
// multiples of 16 (Cip, Kop) inside the transform domain.
struct Plan {
  int64_t N, Ci, Hi, Wi, Ko, Po, Qo, pt, pl;
  int64_t Cip, Kop, TH, TW;   // tiles per image: TH x TW
  int64_t band_rows, bands_per_image, max_tiles;
  Plan(int64_t N_, int64_t Ci_, int64_t Hi_, int64_t Wi_, int64_t Ko_, int64_t Po_, int64_t Qo_, int64_t pt_,
       int64_t pl_)
      : N(N_), Ci(Ci_), Hi(Hi_), Wi(Wi_), Ko(Ko_), Po(Po_), Qo(Qo_), pt(pt_), pl(pl_) {
    Cip = round16(Ci), Kop = round16(Ko);
    TH = (Po + 3) / 4, TW = (Qo + 3) / 4;
    max_tiles = std::clamp<int64_t>(kBlockBytes / (36 * (Cip + Kop) * 4), 16, 1024);
    band_rows = std::clamp<int64_t>(max_tiles / TW, 1, TH);
    bands_per_image = (TH + band_rows - 1) / band_rows;
  }
  int64_t bands() const { return N * bands_per_image; }
};

struct Band {
  int64_t n, th0, th1;
  int64_t tiles(const Plan& p) const { return (th1 - th0) * p.TW; }
};
Band band_at(const Plan& p, int64_t b) {
  const int64_t n = b / p.bands_per_image, th0 = (b % p.bands_per_image) * p.band_rows;
  return {n, th0, std::min(p.TH, th0 + p.band_rows)};
}

// Threads for a Winograd pass: all of them when there is enough work and we are not
// already inside a parallel region (then one).
int pass_threads(const Plan& p) {
  if (omp_in_parallel()) return 1;
  const int64_t macs = p.N * p.TH * p.TW * 36 * p.Cip * p.Kop;
  if (macs < (int64_t(1) << 20)) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), p.bands()));
}

// block(first band, band count, tiles) over bands [b0, b1), each block at most
// max_tiles tiles (or one band).
template <class F>
void for_each_block(const Plan& p, int64_t b0, int64_t b1, F&& block) {
  int64_t start = b0, tiles = 0;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t bt = band_at(p, b).tiles(p);
    if (b > start && tiles + bt > p.max_tiles) {
      block(start, b - start, tiles);
      start = b, tiles = 0;
    }
    tiles += bt;
  }
  if (b1 > start) block(start, b1 - start, tiles);
}

// f(thread index, thread count, first band, end band) on nt threads.
template <class F>
void split_bands(const Plan& p, int nt, F&& f) {
  const int64_t NB = p.bands();
  if (nt <= 1) {
    f(0, 1, int64_t(0), NB);
    return;
  }
  parallel_region(nt, [&](int64_t t, int64_t T) { f(int(t), int(T), NB * t / T, NB * (t + 1) / T); });
}

// V (36, tiles, Cip): the input transform of every band of a block.
void transform_inputs(const float* in, const Plan& p, int64_t b0, int64_t nb, int64_t xs, float* V) {
  const int64_t Wt = 4 * p.TW + 2;
  float* xt = tl_tile.get<float>((4 * p.band_rows + 2) * Wt * p.Cip);
  int64_t t = 0;
  for (int64_t b = b0; b < b0 + nb; ++b) {
    const Band bd = band_at(p, b);
    const int64_t rows = 4 * (bd.th1 - bd.th0) + 2;
    EMBER_ISA_CALL(winograd_pack_input, in + bd.n * p.Ci * p.Hi * p.Wi, p.Ci, p.Hi, p.Wi, 4 * bd.th0 - p.pt, rows,
                   p.pl, Wt, p.Cip, xt);
    EMBER_ISA_CALL(winograd_input_transform, xt, Wt, p.Cip, bd.th1 - bd.th0, p.TW, V, xs, t);
    t += bd.tiles(p);
  }
}

// out (N, Ko, Po, Qo) = the Winograd conv of `in` with transformed weights U (36, Cip, Kop).
bool run_conv(const float* in, const float* U, const float* bias, float* out, const Plan& p) {
  std::atomic<bool> finite{true};
  split_bands(p, pass_threads(p), [&](int, int, int64_t bb0, int64_t bb1) {
    for_each_block(p, bb0, bb1, [&](int64_t b0, int64_t nb, int64_t Tb) {
      const int64_t vs = matrix_stride(Tb, p.Cip), ms = matrix_stride(Tb, p.Kop);
      float* V = tl_v.get<float>(36 * (vs + ms));
      float* M = V + 36 * vs;
      transform_inputs(in, p, b0, nb, vs, V);
      for (int xi = 0; xi < 36; ++xi)  // M_xi (Tb, Kop) = V_xi (Tb, Cip) @ U_xi (Cip, Kop)
        sgemm(false, false, Tb, p.Kop, p.Cip, 1.0f, V + xi * vs, p.Cip, U + xi * p.Cip * p.Kop, p.Kop, 0.0f,
              M + xi * ms, p.Kop);
      int64_t t = 0;
      for (int64_t b = b0; b < b0 + nb; ++b) {
        const Band bd = band_at(p, b);
        if (!EMBER_ISA_VALUE(winograd_output_transform, M, p.Kop, bd.th1 - bd.th0, p.TW, ms, t, p.Ko, p.Po, p.Qo,
                             4 * bd.th0, bias, out + bd.n * p.Ko * p.Po * p.Qo))
          finite.store(false, std::memory_order_relaxed);
        t += bd.tiles(p);
      }
    });
  });
  return finite.load();
}

// The smallest channel counts for which Winograd beats the GEMM-based algorithms
// (bench/bench_conv.py): below 16 the padding to 16 lanes wastes most of the work.
constexpr int64_t kMinChannels = 16;

}  // namespace

bool winograd_applies(int64_t C, int64_t K, int64_t R, int64_t S, const ConvGeometry& g) {
  if (R != 3 || S != 3 || g.groups != 1) return false;
  if (g.stride_h != 1 || g.stride_w != 1 || g.dil_h != 1 || g.dil_w != 1) return false;
  // The backward-data pass pads by 2 - pad on each side.
  for (int64_t pad : {g.pad_top, g.pad_bottom, g.pad_left, g.pad_right})
    if (pad > 2) return false;
  return C >= kMinChannels && K >= kMinChannels;
}

bool winograd_forward(const float* x, const float* w, const float* bias, float* y, const WinogradShape& s) {
  const Plan p(s.N, s.C, s.H, s.W, s.K, s.P, s.Q, s.pad_top, s.pad_left);
  float* U = tl_u.get<float>(36 * p.Cip * p.Kop);
  EMBER_ISA_CALL(winograd_weight_transform, w, s.C, s.K, false, p.Cip, p.Kop, U);
  return run_conv(x, U, bias, y, p);
}

bool winograd_backward_data(const float* dy, const float* w, float* dx, const WinogradShape& s) {
  const Plan p(s.N, s.K, s.P, s.Q, s.C, s.H, s.W, 2 - s.pad_top, 2 - s.pad_left);
  float* U = tl_u.get<float>(36 * p.Cip * p.Kop);
  EMBER_ISA_CALL(winograd_weight_transform, w, s.K, s.C, true, p.Cip, p.Kop, U);
  return run_conv(dy, U, nullptr, dx, p);
}

void winograd_backward_weight(const float* x, const float* dy, float* dw, const WinogradShape& s) {
  const Plan p(s.N, s.C, s.H, s.W, s.K, s.P, s.Q, s.pad_top, s.pad_left);
  const int nt = pass_threads(p);
  const int64_t OM = 36 * p.Kop * p.Cip;
  // Omega stored (36, Cip, Kop) when Kop <= Cip, else (36, Kop, Cip): the larger channel
  // count is the GEMM's rows, so its B panels are few and its transposed A is read in place.
  const bool c_rows = p.Kop <= p.Cip;
  float* omega = tl_omega.get<float>(nt * OM);
  split_bands(p, nt, [&](int t, int, int64_t bb0, int64_t bb1) {
    float* om = omega + t * OM;
    std::memset(om, 0, sizeof(float) * OM);
    for_each_block(p, bb0, bb1, [&](int64_t b0, int64_t nb, int64_t Tb) {
      const int64_t vs = matrix_stride(Tb, p.Cip), zs = matrix_stride(Tb, p.Kop);
      float* V = tl_v.get<float>(36 * (vs + zs));
      float* Z = V + 36 * vs;
      transform_inputs(x, p, b0, nb, vs, V);
      float* dyt = tl_tile2.get<float>(4 * p.band_rows * 4 * p.TW * p.Kop);
      int64_t tile = 0;
      for (int64_t b = b0; b < b0 + nb; ++b) {
        const Band bd = band_at(p, b);
        const int64_t rows = 4 * (bd.th1 - bd.th0);
        EMBER_ISA_CALL(winograd_pack_input, dy + bd.n * s.K * s.P * s.Q, s.K, s.P, s.Q, 4 * bd.th0, rows, int64_t(0),
                       4 * p.TW, p.Kop, dyt);
        EMBER_ISA_CALL(winograd_grad_transform, dyt, p.Kop, bd.th1 - bd.th0, p.TW, Z, zs, tile);
        tile += bd.tiles(p);
      }
      // Omega_xi += the product of Z_xi (Tb, Kop) and V_xi (Tb, Cip) over the tiles
      for (int xi = 0; xi < 36; ++xi) {
        const float* z = Z + xi * zs;
        const float* v = V + xi * vs;
        float* o = om + xi * p.Kop * p.Cip;
        if (c_rows) sgemm(true, false, p.Cip, p.Kop, Tb, 1.0f, v, p.Cip, z, p.Kop, 1.0f, o, p.Kop);  // (Cip, Kop)
        else sgemm(true, false, p.Kop, p.Cip, Tb, 1.0f, z, p.Kop, v, p.Cip, 1.0f, o, p.Cip);         // (Kop, Cip)
      }
    });
  });
  for (int t = 1; t < nt; ++t)
    for (int64_t i = 0; i < OM; ++i) omega[i] += omega[t * OM + i];
  EMBER_ISA_CALL(winograd_weight_grad_finish, omega, s.K, s.C, p.Kop, p.Cip, c_rows ? int64_t(1) : p.Cip,
                 c_rows ? p.Kop : int64_t(1), dw);
}

}  // namespace ember::cpu
