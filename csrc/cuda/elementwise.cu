// Elementwise kernels on the GPU: the same ops, names and checks as cpu/elementwise.cpp.
// Operands share one shape (Python broadcasts with stride-0 views); the launch helpers
// (contiguous with 128-bit accesses, or strided) are in elementwise.cuh.
#include <cmath>
#include "../ops.h"
#include "../op_checks.h"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {
namespace {

struct Add { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> __device__ T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> __device__ T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> __device__ T operator()(T a, T b) const { return a / b; } };
struct Maximum { template <class T> __device__ T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a > b ? a : b)); } };
struct Minimum { template <class T> __device__ T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a < b ? a : b)); } };
struct Pow { template <class T> __device__ T operator()(T a, T b) const { return static_cast<T>(::pow(a, b)); } };
struct Eq { template <class T> __device__ bool operator()(T a, T b) const { return a == b; } };
struct Ne { template <class T> __device__ bool operator()(T a, T b) const { return a != b; } };
struct Lt { template <class T> __device__ bool operator()(T a, T b) const { return a < b; } };
struct Le { template <class T> __device__ bool operator()(T a, T b) const { return a <= b; } };
struct Gt { template <class T> __device__ bool operator()(T a, T b) const { return a > b; } };
struct Ge { template <class T> __device__ bool operator()(T a, T b) const { return a >= b; } };
struct Neg { template <class T> __device__ T operator()(T a) const { return -a; } };
struct Abs { template <class T> __device__ T operator()(T a) const { return a < T(0) ? -a : (a == T(0) ? T(0) : a); } };
struct Sqrt { template <class T> __device__ T operator()(T a) const { return ::sqrt(a); } };
struct Exp { template <class T> __device__ T operator()(T a) const { return ::exp(a); } };
struct Log { template <class T> __device__ T operator()(T a) const { return ::log(a); } };
template <class T> struct PowScalar { T p; __device__ T operator()(T a) const { return ::pow(a, p); } };
template <class T> struct Square { __device__ T operator()(T a) const { return a * a; } };
template <class From, class To> struct Cast { __device__ To operator()(From a) const { return static_cast<To>(a); } };

template <class T>
__global__ void where_strided(StridedLayout<4> L, const bool* c, const T* a, const T* b, T* o) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < L.numel; i += int64_t(gridDim.x) * blockDim.x)
    o[offset_of(L, 3, i)] = c[offset_of(L, 0, i)] ? a[offset_of(L, 1, i)] : b[offset_of(L, 2, i)];
}

template <class Op>
void arith(const TensorView& a, const TensorView& b, const TensorView& out, const char* name) {
  check_binary_args(a, b, out, name, false);
  EMBER_DISPATCH_ALL(a.dtype, name, run_binary<Op, T, T>(a, b, out, Op{}, name));
}
template <class Op>
void compare(const TensorView& a, const TensorView& b, const TensorView& out, const char* name) {
  check_binary_args(a, b, out, name, true);
  EMBER_DISPATCH_ALL(a.dtype, name, run_binary<Op, T, bool>(a, b, out, Op{}, name));
}
template <class Op>
void float_unary(const TensorView& a, const TensorView& out, const char* name) {
  check_unary_args(a, out, name);
  EMBER_DISPATCH_FLOAT(a.dtype, name, run_unary<Op, T, T>(a, out, Op{}, name));
}

}  // namespace

void add(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Add>(a, b, out, "add"); }
void sub(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Sub>(a, b, out, "sub"); }
void mul(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Mul>(a, b, out, "mul"); }
void maximum(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Maximum>(a, b, out, "maximum"); }
void minimum(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Minimum>(a, b, out, "minimum"); }
void div(const TensorView& a, const TensorView& b, const TensorView& out) {
  check_binary_args(a, b, out, "div", false);
  EMBER_DISPATCH_FLOAT(a.dtype, "div", run_binary<Div, T, T>(a, b, out, Div{}, "div"));
}
void pow(const TensorView& a, const TensorView& b, const TensorView& out) {
  check_binary_args(a, b, out, "pow", false);
  EMBER_DISPATCH_FLOAT(a.dtype, "pow", run_binary<Pow, T, T>(a, b, out, Pow{}, "pow"));
}
void eq(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Eq>(a, b, out, "eq"); }
void ne(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Ne>(a, b, out, "ne"); }
void lt(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Lt>(a, b, out, "lt"); }
void le(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Le>(a, b, out, "le"); }
void gt(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Gt>(a, b, out, "gt"); }
void ge(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Ge>(a, b, out, "ge"); }

void neg(const TensorView& a, const TensorView& out) {
  check_unary_args(a, out, "neg");
  EMBER_DISPATCH_ALL(a.dtype, "neg", run_unary<Neg, T, T>(a, out, Neg{}, "neg"));
}
void abs(const TensorView& a, const TensorView& out) {
  check_unary_args(a, out, "abs");
  EMBER_DISPATCH_ALL(a.dtype, "abs", run_unary<Abs, T, T>(a, out, Abs{}, "abs"));
}
void exp(const TensorView& a, const TensorView& out) { float_unary<Exp>(a, out, "exp"); }
void log(const TensorView& a, const TensorView& out) { float_unary<Log>(a, out, "log"); }
void sqrt(const TensorView& a, const TensorView& out) { float_unary<Sqrt>(a, out, "sqrt"); }

void pow_scalar(const TensorView& a, double p, const TensorView& out) {
  check_unary_args(a, out, "pow");
  EMBER_DISPATCH_FLOAT(a.dtype, "pow", {
    if (p == 2.0) run_unary<Square<T>, T, T>(a, out, Square<T>{}, "pow");
    else run_unary<PowScalar<T>, T, T>(a, out, PowScalar<T>{static_cast<T>(p)}, "pow");
  });
}

void where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out) {
  check_where_args(cond, a, b, out);
  StridedLayout<4> L({&cond, &a, &b, &out});
  if (L.numel == 0) return;
  EMBER_DISPATCH_ANY(a.dtype, {
    where_strided<<<blocks_for(L.numel), kThreads, 0, current_stream()>>>(L, cond.ptr<bool>(), a.ptr<T>(), b.ptr<T>(), out.ptr<T>());
  });
  EMBER_CUDA_LAUNCH_CHECK("where");
}

void copy(const TensorView& src, const TensorView& dst) {
  check_same_shape(src, dst, "copy");
  EMBER_DISPATCH_ANY(src.dtype, using From = T;
                     EMBER_DISPATCH_ANY(dst.dtype, run_unary<Cast<From, T>, From, T>(src, dst, {}, "copy")));
}

}  // namespace ember::cuda
