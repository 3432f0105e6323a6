// Elementwise kernels: binary arithmetic and comparisons, unary math, where, copy/cast.
//
// All operands have one shape (Python broadcasts with stride-0 views first); any
// strides are allowed, and the output may alias an input (in-place ops).
//   a, b: (*shape) T    out: (*shape) T, or bool for comparisons
#include <cmath>
#include <cstdint>
#include "../ops.h"
#include "../check.h"
#include "../op_checks.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {
namespace {

// ---- the operations, one functor each ----
struct Add { template <class T> T operator()(T a, T b) const { return a + b; } };
struct Sub { template <class T> T operator()(T a, T b) const { return a - b; } };
struct Mul { template <class T> T operator()(T a, T b) const { return a * b; } };
struct Div { template <class T> T operator()(T a, T b) const { return a / b; } };
// maximum/minimum propagate NaN, as torch.maximum and np.maximum do.
struct Maximum { template <class T> T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a > b ? a : b)); } };
struct Minimum { template <class T> T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a < b ? a : b)); } };
struct Pow { template <class T> T operator()(T a, T b) const { return static_cast<T>(std::pow(a, b)); } };
struct Eq { template <class T> bool operator()(T a, T b) const { return a == b; } };
struct Ne { template <class T> bool operator()(T a, T b) const { return a != b; } };
struct Lt { template <class T> bool operator()(T a, T b) const { return a < b; } };
struct Le { template <class T> bool operator()(T a, T b) const { return a <= b; } };
struct Gt { template <class T> bool operator()(T a, T b) const { return a > b; } };
struct Ge { template <class T> bool operator()(T a, T b) const { return a >= b; } };

struct Neg { template <class T> T operator()(T a) const { return -a; } };
struct Abs { template <class T> T operator()(T a) const { return a < T(0) ? -a : (a == T(0) ? T(0) : a); } };
struct Sqrt {
  float operator()(float a) const { return __builtin_sqrtf(a); }
  double operator()(double a) const { return __builtin_sqrt(a); }
};
template <class T>
struct PowScalar {
  T p;
  T operator()(T a) const { return static_cast<T>(std::pow(a, p)); }
};
template <class T> struct Square { T operator()(T a) const { return a * a; } };
template <class T> struct Reciprocal { T operator()(T a) const { return T(1) / a; } };
template <class From, class To> struct Cast { To operator()(From a) const { return static_cast<To>(a); } };

}  // namespace

// ---- the loops, compiled once per ISA ----
#define EMBER_ISA_LOOPS "elementwise_loops.h"
#include "isa_instantiate.h"

namespace {

template <class Op, class T, class R>
void run_binary(const TensorView& a, const TensorView& b, const TensorView& out, Op op) {
  StridedLoop<3> L({&a, &b, &out});
  const T* pa = a.ptr<T>();
  const T* pb = b.ptr<T>();
  R* po = out.ptr<R>();
  EMBER_ISA_CALL(binary_loop, L, pa, pb, po, op);
}

template <class Op, class T, class R>
void run_unary(const TensorView& a, const TensorView& out, Op op) {
  StridedLoop<2> L({&a, &out});
  EMBER_ISA_CALL(unary_loop, L, a.ptr<T>(), out.ptr<R>(), op);
}

template <class Op>
void arith(const TensorView& a, const TensorView& b, const TensorView& out, const char* name) {
  check_binary_args(a, b, out, name, false);
  EMBER_DISPATCH_ALL(a.dtype, name, run_binary<Op, T, T>(a, b, out, Op{}));
}

template <class Op>
void compare(const TensorView& a, const TensorView& b, const TensorView& out, const char* name) {
  check_binary_args(a, b, out, name, true);
  EMBER_DISPATCH_ALL(a.dtype, name, run_binary<Op, T, bool>(a, b, out, Op{}));
}

template <class Op>
void float_unary(const TensorView& a, const TensorView& out, const char* name) {
  check_unary_args(a, out, name);
  EMBER_DISPATCH_FLOAT(a.dtype, name, run_unary<Op, T, T>(a, out, Op{}));
}

}  // namespace

void add(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Add>(a, b, out, "add"); }
void sub(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Sub>(a, b, out, "sub"); }
void mul(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Mul>(a, b, out, "mul"); }
void maximum(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Maximum>(a, b, out, "maximum"); }
void minimum(const TensorView& a, const TensorView& b, const TensorView& out) { arith<Minimum>(a, b, out, "minimum"); }

void div(const TensorView& a, const TensorView& b, const TensorView& out) {
  check_binary_args(a, b, out, "div", false);
  // True division only; integer tensors are promoted to float by the caller.
  EMBER_DISPATCH_FLOAT(a.dtype, "div", run_binary<Div, T, T>(a, b, out, Div{}));
}
void pow(const TensorView& a, const TensorView& b, const TensorView& out) {
  check_binary_args(a, b, out, "pow", false);
  EMBER_DISPATCH_FLOAT(a.dtype, "pow", run_binary<Pow, T, T>(a, b, out, Pow{}));
}

void eq(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Eq>(a, b, out, "eq"); }
void ne(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Ne>(a, b, out, "ne"); }
void lt(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Lt>(a, b, out, "lt"); }
void le(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Le>(a, b, out, "le"); }
void gt(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Gt>(a, b, out, "gt"); }
void ge(const TensorView& a, const TensorView& b, const TensorView& out) { compare<Ge>(a, b, out, "ge"); }

void neg(const TensorView& a, const TensorView& out) {
  check_unary_args(a, out, "neg");
  EMBER_DISPATCH_ALL(a.dtype, "neg", run_unary<Neg, T, T>(a, out, Neg{}));
}
void abs(const TensorView& a, const TensorView& out) {
  check_unary_args(a, out, "abs");
  EMBER_DISPATCH_ALL(a.dtype, "abs", run_unary<Abs, T, T>(a, out, Abs{}));
}
#define EMBER_ISA_UNARY(name, loop)                                                      \
  void name(const TensorView& a, const TensorView& out) {                              \
    check_unary_args(a, out, #name);                                                    \
    StridedLoop<2> L({&a, &out});                                                      \
    EMBER_DISPATCH_FLOAT(a.dtype, #name, {                                             \
      EMBER_ISA_CALL(loop, L, a.ptr<T>(), out.ptr<T>());                                              \
    });                                                                                \
  }
EMBER_ISA_UNARY(exp, exp_loop)
EMBER_ISA_UNARY(log, log_loop)
#undef EMBER_ISA_UNARY
void sqrt(const TensorView& a, const TensorView& out) { float_unary<Sqrt>(a, out, "sqrt"); }

void pow_scalar(const TensorView& a, double p, const TensorView& out) {
  check_unary_args(a, out, "pow");
  EMBER_DISPATCH_FLOAT(a.dtype, "pow", {
    // The common exponents get exact, vectorizable forms.
    if (p == 2.0) run_unary<Square<T>, T, T>(a, out, Square<T>{});
    else if (p == 1.0) run_unary<Cast<T, T>, T, T>(a, out, Cast<T, T>{});
    else if (p == 0.5) run_unary<Sqrt, T, T>(a, out, Sqrt{});
    else if (p == -1.0) run_unary<Reciprocal<T>, T, T>(a, out, Reciprocal<T>{});
    else run_unary<PowScalar<T>, T, T>(a, out, PowScalar<T>{static_cast<T>(p)});
  });
}

void where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out) {
  check_where_args(cond, a, b, out);
  EMBER_DISPATCH_ANY(a.dtype, {
    StridedLoop<4> L({&cond, &a, &b, &out});
    EMBER_ISA_CALL(where_loop, L, cond.ptr<bool>(), a.ptr<T>(), b.ptr<T>(), out.ptr<T>());
  });
}

void copy(const TensorView& src, const TensorView& dst) {
  check_same_shape(src, dst, "copy");
  EMBER_DISPATCH_ANY(src.dtype, using From = T;
                     EMBER_DISPATCH_ANY(dst.dtype, run_unary<Cast<From, T>, From, T>(src, dst, {})));
}

}  // namespace ember::cpu
