// ember._C: the CPU backend. Every function takes NumPy arrays (outputs included,
// allocated by Python), checks them, releases the GIL and runs a kernel from csrc/cpu/.
// bind_cuda.cpp exposes the same names over CuPy arrays.
#include <omp.h>
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "cpu/dispatch.h"
#include "ops.h"
#include "bind_common.h"
#include "philox.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

namespace {

TensorView in(py::handle h, const char* name) { return view_cpu(h, name, false); }
TensorView out(py::handle h, const char* name) { return view_cpu(h, name, true); }
void def_binary(py::module_& m, const char* name, BinaryFn fn) { ember::def_binary<CpuViews>(m, name, fn); }
void def_unary(py::module_& m, const char* name, UnaryFn fn) { ember::def_unary<CpuViews>(m, name, fn); }

cpu::Isa parse_isa(const std::string& s) {
  if (s == "scalar") return cpu::Isa::scalar;
  if (s == "avx2") return cpu::Isa::avx2;
  if (s == "avx512") return cpu::Isa::avx512;
  throw std::invalid_argument("unknown CPU path '" + s + "' (expected 'scalar', 'avx2' or 'avx512')");
}

// Training allocates and frees the same large activations every step. glibc serves
// blocks above its mmap threshold with fresh mmaps, so each step page-faults (and the
// kernel zeroes) every activation again: ~5,000 faults per LeNet step at batch 256.
// Keeping large blocks in the heap makes steady-state steps fault-free; freed memory
// then stays with the process. EMBER_KEEP_MALLOC=1 leaves glibc's defaults alone.
void tune_malloc() {
#ifdef __GLIBC__
  const char* keep = std::getenv("EMBER_KEEP_MALLOC");
  if (keep && *keep && *keep != '0') return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ember CPU kernels";
  register_exceptions(m);
  tune_malloc();

  // ---- runtime ----
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: expected a positive thread count, got " + std::to_string(n));
    omp_set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", [] { return omp_get_max_threads(); });
  m.def("cpu_isa", [] { return std::string(cpu::isa_name(cpu::isa())); }, "The SIMD path kernels use now.");
  m.def("best_cpu_isa", [] { return std::string(cpu::isa_name(cpu::best_isa())); });
  m.attr("cuda_build") = EMBER_CUDA_BUILD;  // "built", "disabled" (EMBER_CUDA=OFF) or "no-nvcc"
  m.def("set_cpu_isa", [](const std::string& s) { cpu::set_isa(parse_isa(s)); }, py::arg("isa"),
        "Force a SIMD path ('scalar', 'avx2', 'avx512'); refuses one the CPU lacks.");

  // ---- elementwise, reductions, gemm (shared with ember._cuda, see bind_common.h) ----
  EMBER_DEF_CORE_OPS(CpuViews, m, cpu);

  // ---- conv2d ----
  // geometry: (stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w, groups)
  auto conv_geometry = [](const std::vector<int64_t>& v) {
    if (v.size() != 9) throw std::invalid_argument("conv2d: geometry must have 9 entries, got " + std::to_string(v.size()));
    cpu::ConvGeometry g;
    g.stride_h = v[0], g.stride_w = v[1], g.pad_top = v[2], g.pad_bottom = v[3], g.pad_left = v[4];
    g.pad_right = v[5], g.dil_h = v[6], g.dil_w = v[7], g.groups = v[8];
    return g;
  };
  m.def("conv2d_forward", [conv_geometry](py::handle x, py::handle w, py::handle b, py::handle o, std::vector<int64_t> geo) {
    auto vx = in(x, "x"), vw = in(w, "weight"), vo = out(o, "out");
    TensorView vb;
    bool has_bias = !b.is_none();
    if (has_bias) vb = in(b, "bias");
    auto g = conv_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::conv2d_forward(vx, vw, has_bias ? &vb : nullptr, vo, g);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("geometry"));
  m.def("conv2d_backward_data", [conv_geometry](py::handle dy, py::handle w, py::handle dx, std::vector<int64_t> geo) {
    auto vdy = in(dy, "grad_out"), vw = in(w, "weight"), vdx = out(dx, "grad_x");
    auto g = conv_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::conv2d_backward_data(vdy, vw, vdx, g);
  }, py::arg("grad_out"), py::arg("weight"), py::arg("grad_x"), py::arg("geometry"));
  m.def("conv2d_backward_weight", [conv_geometry](py::handle x, py::handle dy, py::handle dw, std::vector<int64_t> geo) {
    auto vx = in(x, "x"), vdy = in(dy, "grad_out"), vdw = out(dw, "grad_weight");
    auto g = conv_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::conv2d_backward_weight(vx, vdy, vdw, g);
  }, py::arg("x"), py::arg("grad_out"), py::arg("grad_weight"), py::arg("geometry"));
  m.def("conv2d_backward_bias", [](py::handle dy, py::handle db) {
    auto vdy = in(dy, "grad_out"), vdb = out(db, "grad_bias");
    py::gil_scoped_release nogil;
    cpu::conv2d_backward_bias(vdy, vdb);
  }, py::arg("grad_out"), py::arg("grad_bias"));

  // ---- pooling ----
  // geometry: (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, ceil_mode)
  auto pool_geometry = [](const std::vector<int64_t>& v) {
    if (v.size() != 7) throw std::invalid_argument("pool2d: geometry must have 7 entries, got " + std::to_string(v.size()));
    cpu::PoolGeometry g;
    g.kernel_h = v[0], g.kernel_w = v[1], g.stride_h = v[2], g.stride_w = v[3], g.pad_h = v[4], g.pad_w = v[5];
    g.ceil_mode = v[6] != 0;
    return g;
  };
  m.def("max_pool2d_forward", [pool_geometry](py::handle x, py::handle o, py::handle idx, std::vector<int64_t> geo) {
    auto vx = in(x, "x"), vo = out(o, "out");
    TensorView vi;
    bool has_idx = !idx.is_none();
    if (has_idx) vi = out(idx, "indices");
    auto g = pool_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::max_pool2d_forward(vx, vo, has_idx ? &vi : nullptr, g);
  }, py::arg("x"), py::arg("out"), py::arg("indices"), py::arg("geometry"));
  m.def("max_pool2d_backward", [](py::handle dy, py::handle idx, py::handle dx) {
    auto vdy = in(dy, "grad_out"), vi = in(idx, "indices"), vdx = out(dx, "grad_x");
    py::gil_scoped_release nogil;
    cpu::max_pool2d_backward(vdy, vi, vdx);
  }, py::arg("grad_out"), py::arg("indices"), py::arg("grad_x"));
  m.def("avg_pool2d_forward", [pool_geometry](py::handle x, py::handle o, std::vector<int64_t> geo, bool cip) {
    auto vx = in(x, "x"), vo = out(o, "out");
    auto g = pool_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::avg_pool2d_forward(vx, vo, g, cip);
  }, py::arg("x"), py::arg("out"), py::arg("geometry"), py::arg("count_include_pad"));
  m.def("avg_pool2d_backward", [pool_geometry](py::handle dy, py::handle dx, std::vector<int64_t> geo, bool cip) {
    auto vdy = in(dy, "grad_out"), vdx = out(dx, "grad_x");
    auto g = pool_geometry(geo);
    py::gil_scoped_release nogil;
    cpu::avg_pool2d_backward(vdy, vdx, g, cip);
  }, py::arg("grad_out"), py::arg("grad_x"), py::arg("geometry"), py::arg("count_include_pad"));
  m.def("adaptive_avg_pool2d_forward", [](py::handle x, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::adaptive_avg_pool2d_forward(vx, vo);
  }, py::arg("x"), py::arg("out"));
  m.def("adaptive_avg_pool2d_backward", [](py::handle dy, py::handle dx) {
    auto vdy = in(dy, "grad_out"), vdx = out(dx, "grad_x");
    py::gil_scoped_release nogil;
    cpu::adaptive_avg_pool2d_backward(vdy, vdx);
  }, py::arg("grad_out"), py::arg("grad_x"));

  // ---- batch norm ----
  // None for an optional operand becomes an empty view (the kernels' "absent").
  auto opt_in = [](py::handle h, const char* name) { return h.is_none() ? TensorView{} : in(h, name); };
  auto opt_out = [](py::handle h, const char* name) { return h.is_none() ? TensorView{} : out(h, name); };
  m.def("batch_norm_forward", [opt_in, opt_out](py::handle x, py::handle weight, py::handle bias, py::handle running_mean,
                                                py::handle running_var, py::handle o, py::handle save_mean,
                                                py::handle save_invstd, bool training, double momentum, double eps) {
    auto vx = in(x, "input"), vw = opt_in(weight, "weight"), vb = opt_in(bias, "bias");
    auto vrm = opt_out(running_mean, "running_mean"), vrv = opt_out(running_var, "running_var");
    auto vo = out(o, "out"), vsm = out(save_mean, "save_mean"), vsi = out(save_invstd, "save_invstd");
    py::gil_scoped_release nogil;
    cpu::batch_norm_forward(vx, vw, vb, vrm, vrv, vo, vsm, vsi, training, momentum, eps);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
     py::arg("out"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"), py::arg("momentum"),
     py::arg("eps"));
  m.def("batch_norm_backward", [opt_in, opt_out](py::handle grad_out, py::handle x, py::handle save_mean,
                                                 py::handle save_invstd, py::handle weight, bool training,
                                                 py::handle grad_input, py::handle grad_weight, py::handle grad_bias) {
    auto vg = in(grad_out, "grad_output"), vx = in(x, "input"), vsm = in(save_mean, "save_mean");
    auto vsi = in(save_invstd, "save_invstd"), vw = opt_in(weight, "weight");
    auto vgi = opt_out(grad_input, "grad_input"), vgw = opt_out(grad_weight, "grad_weight");
    auto vgb = opt_out(grad_bias, "grad_bias");
    py::gil_scoped_release nogil;
    cpu::batch_norm_backward(vg, vx, vsm, vsi, vw, training, vgi, vgw, vgb);
  }, py::arg("grad_output"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("weight"),
     py::arg("training"), py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"));

  // ---- dropout ----
  m.def("dropout_forward", [opt_out](py::handle x, double p, uint64_t seed, uint64_t offset, py::handle o,
                                     py::handle mask) {
    auto vx = in(x, "input"), vo = out(o, "out"), vm = opt_out(mask, "mask");
    py::gil_scoped_release nogil;
    cpu::dropout_forward(vx, p, seed, offset, vo, vm);
  }, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("offset"), py::arg("out"), py::arg("mask"));
  m.def("dropout_backward", [](py::handle g, py::handle mask, double p, py::handle gi) {
    auto vg = in(g, "grad"), vm = in(mask, "mask"), vgi = out(gi, "grad_input");
    py::gil_scoped_release nogil;
    cpu::dropout_backward(vg, vm, p, vgi);
  }, py::arg("grad"), py::arg("mask"), py::arg("p"), py::arg("grad_input"));
  m.def("philox4x32_10", [](std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
    auto b = philox::philox4x32_10(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
    return std::array<uint32_t, 4>{b.v[0], b.v[1], b.v[2], b.v[3]};
  }, py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (csrc/philox.h), for known-answer tests.");

  // ---- activations and softmax ----
  def_unary(m, "relu", cpu::relu);
  def_unary(m, "sigmoid", cpu::sigmoid);
  def_unary(m, "tanh", cpu::tanh);
  for (auto [name, fn] : {std::pair{"relu_backward", cpu::relu_backward},
                          std::pair{"sigmoid_backward", cpu::sigmoid_backward},
                          std::pair{"tanh_backward", cpu::tanh_backward}}) {
    m.def(name, [fn = fn](py::handle g, py::handle y, py::handle gx) {
      auto vg = in(g, "grad"), vy = in(y, "output"), vgx = out(gx, "grad_input");
      py::gil_scoped_release nogil;
      fn(vg, vy, vgx);
    }, py::arg("grad"), py::arg("output"), py::arg("grad_input"));
  }
  m.def("leaky_relu", [](py::handle x, double slope, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::leaky_relu(vx, slope, vo);
  }, py::arg("x"), py::arg("negative_slope"), py::arg("out"));
  m.def("leaky_relu_backward", [](py::handle g, py::handle x, double slope, py::handle gx) {
    auto vg = in(g, "grad"), vx = in(x, "input"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::leaky_relu_backward(vg, vx, slope, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("negative_slope"), py::arg("grad_input"));
  m.def("gelu", [](py::handle x, bool approximate_tanh, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::gelu(vx, approximate_tanh, vo);
  }, py::arg("x"), py::arg("approximate_tanh"), py::arg("out"));
  m.def("gelu_backward", [](py::handle g, py::handle x, bool approximate_tanh, py::handle gx) {
    auto vg = in(g, "grad"), vx = in(x, "input"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::gelu_backward(vg, vx, approximate_tanh, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("approximate_tanh"), py::arg("grad_input"));
  for (auto [name, fn] : {std::pair{"softmax", cpu::softmax}, std::pair{"log_softmax", cpu::log_softmax}}) {
    m.def(name, [fn = fn](py::handle x, int64_t dim, py::handle o) {
      auto vx = in(x, "x"), vo = out(o, "out");
      py::gil_scoped_release nogil;
      fn(vx, dim, vo);
    }, py::arg("x"), py::arg("dim"), py::arg("out"));
  }
  for (auto [name, fn] : {std::pair{"softmax_backward", cpu::softmax_backward},
                          std::pair{"log_softmax_backward", cpu::log_softmax_backward}}) {
    m.def(name, [fn = fn](py::handle g, py::handle y, int64_t dim, py::handle gx) {
      auto vg = in(g, "grad"), vy = in(y, "output"), vgx = out(gx, "grad_input");
      py::gil_scoped_release nogil;
      fn(vg, vy, dim, vgx);
    }, py::arg("grad"), py::arg("output"), py::arg("dim"), py::arg("grad_input"));
  }

  // ---- losses ----
  // An optional tensor argument: None -> nullptr.
  auto opt_ptr = [](py::handle h, const char* name, TensorView& v) -> const TensorView* {
    if (h.is_none()) return nullptr;
    v = in(h, name);
    return &v;
  };
  m.def("cross_entropy", [opt_ptr](py::handle x, py::handle t, py::handle w, int64_t ignore_index,
                                  double label_smoothing, py::handle loss, py::handle stats, py::handle wsum) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vl = out(loss, "loss"), vs = out(stats, "stats"),
         vws = out(wsum, "weight_sum");
    const TensorView* pw = opt_ptr(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::cross_entropy(vx, vt, pw, ignore_index, label_smoothing, vl, vs, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
     py::arg("loss"), py::arg("stats"), py::arg("weight_sum"));
  m.def("cross_entropy_backward", [opt_ptr](py::handle x, py::handle t, py::handle w, py::handle stats, py::handle g,
                                           int64_t ignore_index, double label_smoothing, py::handle gx) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vs = in(stats, "stats"), vg = in(g, "grad"),
         vgx = out(gx, "grad_input");
    const TensorView* pw = opt_ptr(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::cross_entropy_backward(vx, vt, pw, vs, vg, ignore_index, label_smoothing, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("stats"), py::arg("grad"),
     py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("grad_input"));
  m.def("nll_loss", [opt_ptr](py::handle x, py::handle t, py::handle w, int64_t ignore_index, py::handle loss,
                             py::handle wsum) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vl = out(loss, "loss"), vws = out(wsum, "weight_sum");
    const TensorView* pw = opt_ptr(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::nll_loss(vx, vt, pw, ignore_index, vl, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("loss"),
     py::arg("weight_sum"));
  m.def("nll_loss_backward", [opt_ptr](py::handle t, py::handle w, py::handle g, int64_t ignore_index, py::handle gx) {
    TensorView vw;
    auto vt = in(t, "target"), vg = in(g, "grad"), vgx = out(gx, "grad_input");
    const TensorView* pw = opt_ptr(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::nll_loss_backward(vt, pw, vg, ignore_index, vgx);
  }, py::arg("target"), py::arg("weight"), py::arg("grad"), py::arg("ignore_index"), py::arg("grad_input"));
  m.def("mse_loss", [](py::handle x, py::handle t, py::handle o) {
    auto vx = in(x, "input"), vt = in(t, "target"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::mse_loss(vx, vt, vo);
  }, py::arg("input"), py::arg("target"), py::arg("out"));
  m.def("mse_loss_backward", [](py::handle x, py::handle t, py::handle g, double scale, py::handle gx) {
    auto vx = in(x, "input"), vt = in(t, "target"), vg = in(g, "grad"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::mse_loss_backward(vx, vt, vg, scale, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("grad"), py::arg("scale"), py::arg("grad_input"));
  m.def("binary_cross_entropy_with_logits", [](py::handle x, py::handle t, py::handle w, py::handle pw, py::handle o) {
    auto vx = in(x, "input"), vt = in(t, "target"), vw = in(w, "weight"), vpw = in(pw, "pos_weight"),
         vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::binary_cross_entropy_with_logits(vx, vt, vw, vpw, vo);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("out"));
  m.def("binary_cross_entropy_with_logits_backward", [](py::handle x, py::handle t, py::handle w, py::handle pw,
                                                        py::handle g, double scale, py::handle gx, py::handle gt) {
    auto vx = in(x, "input"), vt = in(t, "target"), vw = in(w, "weight"), vpw = in(pw, "pos_weight"),
         vg = in(g, "grad"), vgx = out(gx, "grad_input");
    TensorView vgt;
    const TensorView* pgt = nullptr;
    if (!gt.is_none()) { vgt = out(gt, "grad_target"); pgt = &vgt; }
    py::gil_scoped_release nogil;
    cpu::binary_cross_entropy_with_logits_backward(vx, vt, vw, vpw, vg, scale, vgx, pgt);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("grad"),
     py::arg("scale"), py::arg("grad_input"), py::arg("grad_target"));

  // ---- optimizer updates ----
  m.def("sgd_step", [opt_out](py::handle param, py::handle grad, py::handle buf, double lr, double momentum,
                              double dampening, bool nesterov, double weight_decay, bool first_step) {
    auto vp = out(param, "param"), vg = in(grad, "grad"), vb = opt_out(buf, "momentum_buf");
    py::gil_scoped_release nogil;
    cpu::sgd_step(vp, vg, vb, lr, momentum, dampening, nesterov, weight_decay, first_step);
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("lr"), py::arg("momentum"),
     py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"));
  m.def("adam_step", [opt_out](py::handle param, py::handle grad, py::handle exp_avg, py::handle exp_avg_sq,
                               py::handle max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2,
                               double eps, double weight_decay, bool amsgrad, bool decoupled_weight_decay) {
    auto vp = out(param, "param"), vg = in(grad, "grad"), vm = out(exp_avg, "exp_avg");
    auto vv = out(exp_avg_sq, "exp_avg_sq"), vmax = opt_out(max_exp_avg_sq, "max_exp_avg_sq");
    py::gil_scoped_release nogil;
    cpu::adam_step(vp, vg, vm, vv, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
     py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("decoupled_weight_decay"));
}
