// Argument checks at the op boundary. A failed check throws a C++ exception that
// pybind11 turns into the Python exception named in the macro:
//   std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
//   ember::type_error -> TypeError (registered in the bindings), std::runtime_error -> RuntimeError.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include "tensor_view.h"

namespace ember {

struct type_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

namespace detail {
inline void stream_all(std::ostringstream&) {}
template <class T, class... Rest>
void stream_all(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  stream_all(os, rest...);
}
}  // namespace detail

template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::stream_all(os, args...);
  return os.str();
}

}  // namespace ember

// EMBER_CHECK(cond, "message", parts...) -> ValueError
#define EMBER_CHECK(cond, ...) \
  do { if (!(cond)) throw std::invalid_argument(::ember::str(__VA_ARGS__)); } while (0)
#define EMBER_CHECK_TYPE(cond, ...) \
  do { if (!(cond)) throw ::ember::type_error(::ember::str(__VA_ARGS__)); } while (0)
#define EMBER_CHECK_INDEX(cond, ...) \
  do { if (!(cond)) throw std::out_of_range(::ember::str(__VA_ARGS__)); } while (0)

namespace ember {

inline void check_dtype(const TensorView& t, DType want, const char* op, const char* arg) {
  EMBER_CHECK_TYPE(t.dtype == want, op, ": ", arg, " must be ", dtype_name(want), ", got ",
                   dtype_name(t.dtype));
}
inline void check_same_dtype(const TensorView& a, const TensorView& b, const char* op) {
  EMBER_CHECK_TYPE(a.dtype == b.dtype, op, ": dtypes differ (", dtype_name(a.dtype), " vs ",
                   dtype_name(b.dtype), ")");
}
inline void check_float(const TensorView& t, const char* op, const char* arg) {
  EMBER_CHECK_TYPE(t.dtype == DType::f32 || t.dtype == DType::f64, op, ": ", arg,
                   " must be float32 or float64, got ", dtype_name(t.dtype));
}
inline void check_contiguous(const TensorView& t, const char* op, const char* arg) {
  EMBER_CHECK(t.is_contiguous(), op, ": ", arg, " must be contiguous (call .contiguous())");  // empty passes
}
inline void check_ndim(const TensorView& t, int nd, const char* op, const char* arg) {
  EMBER_CHECK(t.ndim == nd, op, ": ", arg, " must be ", nd, "-D, got shape ", t.shape_str());
}
inline void check_same_shape(const TensorView& a, const TensorView& b, const char* op) {
  bool same = a.ndim == b.ndim;
  for (int i = 0; same && i < a.ndim; ++i) same = a.shape[i] == b.shape[i];
  EMBER_CHECK(same, op, ": shapes differ, ", a.shape_str(), " vs ", b.shape_str());
}

}  // namespace ember

// Run `__VA_ARGS__` with `T` bound to the C++ type of `dtype`. FLOAT: f32/f64; ALL adds i64.
#define EMBER_DISPATCH_FLOAT(dtype, op, ...)                                              \
  do {                                                                                    \
    switch (dtype) {                                                                      \
      case ::ember::DType::f32: { using T = float; __VA_ARGS__; break; }                 \
      case ::ember::DType::f64: { using T = double; __VA_ARGS__; break; }                \
      default: throw ::ember::type_error(::ember::str(op, ": expected float32 or float64, got ", \
                                                      ::ember::dtype_name(dtype)));       \
    }                                                                                     \
  } while (0)
#define EMBER_DISPATCH_ALL(dtype, op, ...)                                                \
  do {                                                                                    \
    switch (dtype) {                                                                      \
      case ::ember::DType::f32: { using T = float; __VA_ARGS__; break; }                 \
      case ::ember::DType::f64: { using T = double; __VA_ARGS__; break; }                \
      case ::ember::DType::i64: { using T = int64_t; __VA_ARGS__; break; }               \
      default: throw ::ember::type_error(::ember::str(op, ": expected float32, float64 or int64, got ", \
                                                      ::ember::dtype_name(dtype)));       \
    }                                                                                     \
  } while (0)
