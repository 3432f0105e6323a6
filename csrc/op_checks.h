// Argument checks of the core ops (elementwise, reductions, matmul), shared by the CPU
// and CUDA implementations so both reject the same mistakes with the same messages.
#pragma once
#include <algorithm>
#include <vector>
#include "check.h"

namespace ember {

inline void check_unary_args(const TensorView& a, const TensorView& out, const char* op) {
  check_same_shape(a, out, op);
  check_same_dtype(a, out, op);
}

inline void check_binary_args(const TensorView& a, const TensorView& b, const TensorView& out, const char* op,
                              bool comparison) {
  check_same_shape(a, b, op);
  check_same_shape(a, out, op);
  check_same_dtype(a, b, op);
  EMBER_CHECK_TYPE(a.dtype != DType::b8, op, ": bool tensors are not supported, convert to int64 or float");
  if (comparison) check_dtype(out, DType::b8, op, "out");
  else check_dtype(out, a.dtype, op, "out");
}

inline void check_where_args(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out) {
  check_same_shape(cond, a, "where");
  check_same_shape(a, b, "where");
  check_same_shape(a, out, "where");
  check_dtype(cond, DType::b8, "where", "condition");
  check_same_dtype(a, b, "where");
  check_same_dtype(a, out, "where");
}

// Returns which axes are reduced. `needs_identity`: max/min cannot reduce an empty axis.
inline std::vector<bool> check_reduce_args(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out,
                                           const char* op, bool needs_identity) {
  check_contiguous(out, op, "out");
  check_same_dtype(x, out, op);
  EMBER_CHECK(out.ndim == x.ndim, op, ": out must have ", x.ndim, " dims (keepdims layout)");
  std::vector<bool> red(x.ndim, false);
  for (int i = 0; i < naxes; ++i) {
    EMBER_CHECK_INDEX(axes[i] >= 0 && axes[i] < x.ndim, op, ": axis ", axes[i], " out of range for ", x.ndim, "-D input");
    EMBER_CHECK(!red[axes[i]], op, ": axis ", axes[i], " repeated");
    red[axes[i]] = true;
  }
  for (int d = 0; d < x.ndim; ++d) {
    EMBER_CHECK(out.shape[d] == (red[d] ? 1 : x.shape[d]), op, ": out shape ", out.shape_str(),
                " does not match input ", x.shape_str(), " reduced");
    EMBER_CHECK(!needs_identity || !red[d] || x.shape[d] > 0, op, ": cannot reduce over a zero-size axis ", d,
                " (max/min have no identity); input shape ", x.shape_str());
  }
  return red;
}

inline void check_arg_reduce_args(const TensorView& x, int64_t axis, const TensorView& out, const char* op) {
  EMBER_CHECK_INDEX(axis >= 0 && axis < x.ndim, op, ": axis ", axis, " out of range for ", x.ndim, "-D input");
  EMBER_CHECK(x.shape[axis] > 0, op, ": cannot take ", op, " over a zero-size axis; input shape ", x.shape_str());
  check_dtype(out, DType::i64, op, "out");
  check_contiguous(out, op, "out");
  EMBER_CHECK(out.numel() * x.shape[axis] == x.numel(), op, ": out has ", out.numel(), " elements, expected ",
              x.numel() / x.shape[axis]);
}

// matmul's operands as matrices: `o` is the index of the first matrix dim (0 for 2-D
// operands, a batch of one; 1 for 3-D), the product is (M, N) with inner size K.
struct MatmulDims {
  int o;
  int64_t M, N, K, batch;
  // Row stride. A matrix with one row may report any stride there (NumPy's size-1 dims
  // do), and it is never used: its row length stands in. A stride of 0 (a broadcast
  // column, rows all the same) is kept.
  int64_t ld(const TensorView& t) const {
    return t.shape[o] <= 1 ? std::max<int64_t>(t.shape[o + 1], 1) : t.strides[o];
  }
  // Elements between matrices of the batch; 0 broadcasts (and for 2-D operands).
  int64_t batch_stride(const TensorView& t) const { return o ? t.strides[0] : 0; }
};

// a (B,M,K) or (B,K,M) when trans_a; b (B,K,N) or (B,N,K) when trans_b; out (B,M,N).
inline MatmulDims check_matmul_args(const TensorView& a, const TensorView& b, const TensorView& out, bool trans_a,
                                    bool trans_b) {
  const char* op = "matmul";
  check_float(a, op, "a");
  check_same_dtype(a, b, op);
  check_same_dtype(a, out, op);
  EMBER_CHECK(a.ndim == b.ndim && a.ndim == out.ndim && (a.ndim == 2 || a.ndim == 3), op,
              ": a, b and out must all be 2-D or all 3-D, got ", a.shape_str(), ", ", b.shape_str(), ", ",
              out.shape_str());
  MatmulDims d;
  const int o = d.o = a.ndim - 2;
  d.M = trans_a ? a.shape[o + 1] : a.shape[o], d.K = trans_a ? a.shape[o] : a.shape[o + 1];
  const int64_t Kb = trans_b ? b.shape[o + 1] : b.shape[o];
  d.N = trans_b ? b.shape[o] : b.shape[o + 1];
  EMBER_CHECK(d.K == Kb, op, ": inner dimensions differ, ", a.shape_str(), (trans_a ? "^T" : ""), " @ ",
              b.shape_str(), (trans_b ? "^T" : ""));
  EMBER_CHECK(out.shape[o] == d.M && out.shape[o + 1] == d.N, op, ": out shape ", out.shape_str(), " expected (",
              d.M, ", ", d.N, ")");
  for (const TensorView* t : {&a, &b, &out})
    EMBER_CHECK(t->strides[o + 1] == 1 || t->shape[o + 1] <= 1 || t->numel() == 0, op,
                ": the last dim of every operand must be contiguous (stride 1), got shape ", t->shape_str());
  d.batch = o ? out.shape[0] : 1;
  if (o) {
    EMBER_CHECK((a.shape[0] == d.batch || a.strides[0] == 0) && (b.shape[0] == d.batch || b.strides[0] == 0), op,
                ": batch sizes differ, ", a.shape_str(), ", ", b.shape_str(), " -> ", out.shape_str());
    EMBER_CHECK(out.strides[0] != 0 || d.batch <= 1 || d.M * d.N == 0, op,
                ": out must not broadcast over the batch");
  }
  return d;
}

}  // namespace ember

// Run `__VA_ARGS__` with `T` bound to the C++ type of any ember dtype, bool included.
#define EMBER_DISPATCH_ANY(dtype, ...)                                         \
  do {                                                                         \
    switch (dtype) {                                                           \
      case ::ember::DType::f32: { using T = float; __VA_ARGS__; break; }      \
      case ::ember::DType::f64: { using T = double; __VA_ARGS__; break; }     \
      case ::ember::DType::i64: { using T = int64_t; __VA_ARGS__; break; }    \
      case ::ember::DType::b8: { using T = bool; __VA_ARGS__; break; }        \
    }                                                                          \
  } while (0)
