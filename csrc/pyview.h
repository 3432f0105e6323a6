// Building a TensorView from a Python array object, for the bindings only.
//   view_cpu:  a NumPy array (the CPU storage of ember.Tensor)
//   view_cuda: any object with __cuda_array_interface__ (a CuPy array)
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include "check.h"

namespace ember {
namespace py = pybind11;

inline DType dtype_from_typestr(const std::string& ts, const char* name) {
  // typestr like "<f4"; byte order must be native little-endian or "|" (not applicable).
  EMBER_CHECK_TYPE(ts.size() >= 3 && (ts[0] == '<' || ts[0] == '|' || ts[0] == '='), name,
                   ": unsupported byte order in dtype '", ts, "'");
  std::string k = ts.substr(1);
  if (k == "f4") return DType::f32;
  if (k == "f8") return DType::f64;
  if (k == "i8") return DType::i64;
  if (k == "b1") return DType::b8;
  throw type_error(str(name, ": unsupported dtype '", ts, "' (expected float32, float64, int64 or bool)"));
}

inline TensorView view_cpu(py::handle obj, const char* name, bool writable = false) {
  EMBER_CHECK_TYPE(py::isinstance<py::array>(obj), name, ": expected a NumPy array, got ",
                   std::string(py::str(py::type::of(obj))));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  TensorView v;
  py::dtype dt = arr.dtype();
  char kind = dt.kind();
  auto isz = dt.itemsize();
  if (kind == 'f' && isz == 4) v.dtype = DType::f32;
  else if (kind == 'f' && isz == 8) v.dtype = DType::f64;
  else if (kind == 'i' && isz == 8) v.dtype = DType::i64;
  else if (kind == 'b' && isz == 1) v.dtype = DType::b8;
  else throw type_error(str(name, ": unsupported dtype ", std::string(py::str(dt)),
                            " (expected float32, float64, int64 or bool)"));
  EMBER_CHECK_TYPE(dt.byteorder() != '>', name, ": big-endian arrays are not supported");
  EMBER_CHECK(arr.ndim() <= kMaxDims, name, ": at most ", kMaxDims, " dimensions, got ", arr.ndim());
  if (writable) EMBER_CHECK(arr.writeable(), name, ": output array is read-only");
  v.ndim = static_cast<int>(arr.ndim());
  v.data = const_cast<void*>(arr.data());
  EMBER_CHECK(reinterpret_cast<uintptr_t>(v.data) % isz == 0, name, ": array is not aligned to its item size");
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = arr.shape(i);
    auto st = arr.strides(i);
    EMBER_CHECK(st % isz == 0, name, ": stride ", st, " is not a multiple of the item size ", isz);
    v.strides[i] = st / isz;
  }
  return v;
}

inline TensorView view_cuda(py::handle obj, const char* name, bool writable = false) {
  EMBER_CHECK_TYPE(py::hasattr(obj, "__cuda_array_interface__"), name,
                   ": expected a CUDA array (an object with __cuda_array_interface__), got ",
                   std::string(py::str(py::type::of(obj))));
  py::dict cai = obj.attr("__cuda_array_interface__");
  TensorView v;
  v.dtype = dtype_from_typestr(py::cast<std::string>(cai["typestr"]), name);
  auto shape = py::cast<py::tuple>(cai["shape"]);
  EMBER_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), name, ": at most ", kMaxDims, " dimensions");
  v.ndim = static_cast<int>(shape.size());
  auto data = py::cast<py::tuple>(cai["data"]);
  v.data = reinterpret_cast<void*>(py::cast<uintptr_t>(data[0]));
  if (writable) EMBER_CHECK(!py::cast<bool>(data[1]), name, ": output array is read-only");
  int64_t isz = dtype_size(v.dtype);
  for (int i = 0; i < v.ndim; ++i) v.shape[i] = py::cast<int64_t>(shape[i]);
  if (cai.contains("strides") && !cai["strides"].is_none()) {
    auto st = py::cast<py::tuple>(cai["strides"]);
    for (int i = 0; i < v.ndim; ++i) {
      int64_t s = py::cast<int64_t>(st[i]);
      EMBER_CHECK(s % isz == 0, name, ": stride ", s, " is not a multiple of the item size ", isz);
      v.strides[i] = s / isz;
    }
  } else {
    int64_t s = 1;
    for (int i = v.ndim - 1; i >= 0; --i) { v.strides[i] = s; s *= v.shape[i]; }
  }
  return v;
}

// Exception types shared by both modules.
inline void register_exceptions(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const type_error& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });
}

}  // namespace ember
