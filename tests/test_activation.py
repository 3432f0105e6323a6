"""Activations and softmax: float32 kernels against the float64 reference (ulp-level on
dense grids, tails included), every SIMD path, odd and empty shapes, non-contiguous
inputs, NaN/inf, float64 gradient checks, and argument errors."""
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import assert_close, device_tensor, gradcheck, on_device, to_host

_C = ember._C


def ulp_error(actual, expected):
    """|actual - expected| in units of the float32 spacing at expected (denormal spacing
    below the normal range), elementwise."""
    expected = np.asarray(expected, np.float64)
    spacing = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
    return np.abs(np.asarray(actual, np.float64) - expected) / np.maximum(spacing, 2.0 ** -149)


def dense_grid(lo, hi, n=200_001):
    x = np.linspace(lo, hi, n).astype(np.float32)
    extra = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 1e-7, -1e-7, 0.5, -0.5, 0.625, -0.625, 0.6249,
                      -100, 100, -88.5, 88.5, -87, -20, 20, -10, 10, -9, 9, -13.9, -14.2], np.float32)
    return np.concatenate([x, extra])


FWD = {
    "sigmoid": (lambda t: F.sigmoid(t), ref.sigmoid, 3.0),
    "tanh": (lambda t: F.tanh(t), ref.tanh, 2.0),
    "gelu": (lambda t: F.gelu(t), ref.gelu, 5.0),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda x: ref.gelu(x, "tanh"), 5.0),
}


@pytest.mark.parametrize("name", list(FWD))
def test_forward_ulp_dense_grid(name, isa, device):
    fn, reference, max_ulp = FWD[name]
    x = dense_grid(-30, 30)
    y = fn(device_tensor(x, device)).numpy(force=True)
    err = ulp_error(y, reference(x))
    worst = int(np.argmax(err))
    assert err[worst] <= max_ulp, f"{name} on {isa}: {err[worst]:.2f} ulp at x={x[worst]!r}"


def test_tails_exact_values(isa, device):
    x = ember.tensor([-100.0, -20.0, 20.0, -10.0, 100.0], dtype=ember.float32, device=device)
    s = F.sigmoid(x).numpy(force=True)
    assert s[0] > 0 and ulp_error(s[0], 1 / (1 + np.exp(100.0))) <= 2  # 3.7e-44, a denormal
    t = F.tanh(x).numpy(force=True)
    assert t[1] == -1.0 and t[2] == 1.0
    g = F.gelu(x).numpy(force=True)
    assert g[3] < 0 and ulp_error(g[3], ref.gelu(np.float32(-10.0))) <= 4  # -7.6e-23, not 0
    assert g[4] == 100.0 and g[0] == 0.0
    gt = F.gelu(x, approximate="tanh").numpy(force=True)
    assert gt[3] < 0 and ulp_error(gt[3], ref.gelu(np.float32(-10.0), "tanh")) <= 4


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_tail_and_clamp_points(approximate, isa, device):
    # The erf form's rational erfcx(|x|/sqrt 2) is clamped at |x| = 15 and its exp(-x^2/2)
    # at x^2/2 = 150; results below 2^-126 (x < -13.2) are denormals, rounded once.
    x = np.concatenate([np.linspace(-14.6, -3, 100_001), np.linspace(14, 16, 1001),
                        [-15.0, 15.0, -14.999, 14.999, -17.3, 17.3, 1e20, -1e20, 3e38, -3e38]]).astype(np.float32)
    y = F.gelu(device_tensor(x, device), approximate=approximate).numpy(force=True)
    err = ulp_error(y, ref.gelu(x, approximate))
    worst = int(np.argmax(err))
    assert err[worst] <= 5.0, f"{err[worst]:.2f} ulp at x={x[worst]!r}"


def test_relu_leaky_exact(isa, device):
    x = dense_grid(-5, 5, 10_001)
    np.testing.assert_array_equal(F.relu(device_tensor(x, device)).numpy(force=True), ref.relu(x).astype(np.float32))
    np.testing.assert_array_equal(F.leaky_relu(device_tensor(x, device), 0.2).numpy(force=True),
                                  (np.where(x > 0, x, x * np.float32(0.2))))


def test_float64_matches_reference(device):
    x = np.linspace(-40, 40, 4001)
    t = device_tensor(x, device)
    for name, (fn, reference, _) in FWD.items():  # rtol: x / sqrt(2) rounds, the gelu tail scales that by x^2
        np.testing.assert_allclose(fn(t).numpy(force=True), reference(x), rtol=1e-11, atol=1e-300, err_msg=name)


def test_nan_and_inf_propagate(isa, device):
    x = ember.tensor([np.nan, np.inf, -np.inf, 1.0], dtype=ember.float32, device=device)
    assert np.isnan(F.relu(x).numpy(force=True)[0]) and F.relu(x).numpy(force=True)[1] == np.inf and F.relu(x).numpy(force=True)[2] == 0
    assert np.isnan(F.leaky_relu(x).numpy(force=True)[0])
    np.testing.assert_array_equal(F.sigmoid(x).numpy(force=True)[:3], [np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(F.tanh(x).numpy(force=True)[:3], [np.nan, 1.0, -1.0])
    g = F.gelu(x).numpy(force=True)
    assert np.isnan(g[0]) and g[1] == np.inf and np.isnan(g[2])  # -inf * Phi(-inf) = -inf * 0, as PyTorch
    gt = F.gelu(x, approximate="tanh").numpy(force=True)
    assert np.isnan(gt[0]) and gt[1] == np.inf and np.isnan(gt[2])


# ---------------------------------------------------------------- backward kernels

BWD = {  # name: (forward fn, kernel, saved = "input" | "output", reference backward)
    "relu": (F.relu, lambda K, g, s, gx: K.relu_backward(g, s, gx), "output", ref.relu_backward),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda K, g, s, gx: K.leaky_relu_backward(g, s, 0.1, gx), "input",
                   lambda g, x: ref.leaky_relu_backward(g, x, 0.1)),
    "sigmoid": (F.sigmoid, lambda K, g, s, gx: K.sigmoid_backward(g, s, gx), "output", ref.sigmoid_backward),
    "tanh": (F.tanh, lambda K, g, s, gx: K.tanh_backward(g, s, gx), "output", ref.tanh_backward),
    "gelu": (F.gelu, lambda K, g, s, gx: K.gelu_backward(g, s, False, gx), "input", ref.gelu_backward),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda K, g, s, gx: K.gelu_backward(g, s, True, gx),
                  "input", lambda g, x: ref.gelu_backward(g, x, "tanh")),
}


@pytest.mark.parametrize("name", list(BWD))
def test_backward_kernel_matches_reference(name, isa, device):
    fwd, kernel, saved, reference = BWD[name]
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-12, 12, 20_001), rng.standard_normal(1001) * 3]).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    s = x if saved == "input" else fwd(device_tensor(x, device)).numpy(force=True)
    gx = on_device(np.empty_like(x), device)
    kernel(ember._backend.kernels(device), on_device(g, device), on_device(s, device), gx)
    gx = to_host(gx)
    expected = reference(g.astype(np.float64), s.astype(np.float64))
    np.testing.assert_allclose(gx, expected, rtol=3e-6, atol=3e-7 * np.abs(g).max())


@pytest.mark.parametrize("name", list(BWD))
def test_autograd_uses_kernel_gradient(name):
    fwd, _, _, _ = BWD[name]
    x = ember.tensor(np.linspace(-3, 3, 11) + 0.05, dtype=ember.float64, requires_grad=True)
    gradcheck(fwd, [x])


@pytest.mark.parametrize("name", list(BWD))
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (13, 17), (0, 5), (3, 1, 5)])
def test_odd_and_empty_shapes(name, shape):
    fwd = BWD[name][0]
    x = ember.randn(*shape, requires_grad=True)
    y = fwd(x)
    assert y.shape == shape and y.dtype == ember.float32
    y.sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("name", list(FWD) + ["relu", "leaky_relu"])
def test_non_contiguous_input(name, isa):
    fn = FWD[name][0] if name in FWD else BWD[name][0]
    base = np.random.default_rng(2).standard_normal((9, 14)).astype(np.float32) * 4
    view = base[::2, 1::3].T  # strided and transposed
    out = fn(ember.from_numpy(view)).numpy()
    expected = fn(ember.from_numpy(np.ascontiguousarray(view))).numpy()
    np.testing.assert_array_equal(out, expected)
    x = ember.tensor(base.astype(np.float64), requires_grad=True)
    gradcheck(lambda t: fn(t[::2, 1::3].T), [x])


def test_tensor_methods():
    x = ember.randn(3, 4)
    np.testing.assert_array_equal(x.relu().numpy(), F.relu(x).numpy())
    np.testing.assert_array_equal(x.sigmoid().numpy(), F.sigmoid(x).numpy())
    np.testing.assert_array_equal(x.tanh().numpy(), F.tanh(x).numpy())
    np.testing.assert_array_equal(x.softmax(0).numpy(), F.softmax(x, 0).numpy())
    np.testing.assert_array_equal(x.log_softmax(-1).numpy(), F.log_softmax(x, -1).numpy())


def test_integer_inputs():
    i = ember.tensor([-1, 0, 2])
    np.testing.assert_allclose(F.sigmoid(i).numpy(), ref.sigmoid(np.array([-1.0, 0.0, 2.0])), rtol=1e-6)
    with pytest.raises(TypeError, match="relu: expected a float32 or float64 tensor, got int64"):
        F.relu(i)
    with pytest.raises(TypeError, match="softmax: expected a float32 or float64"):
        F.softmax(i, 0)


def test_inplace():
    x = ember.tensor([-1.0, 2.0])
    y = F.relu(x, inplace=True)
    assert y is x and x.tolist() == [0.0, 2.0]
    F.leaky_relu(x := ember.tensor([-1.0, 2.0]), 0.5, inplace=True)
    assert x.tolist() == [-0.5, 2.0]
    with pytest.raises(RuntimeError, match="in-place activations are supported only under no_grad"):
        F.relu(ember.tensor([1.0], requires_grad=True), inplace=True)


# ---------------------------------------------------------------- softmax


@pytest.mark.parametrize("shape", [(5, 7, 3), (2, 3, 4, 5), (1, 130, 1), (3, 1, 67)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_every_dim(shape, log, isa, device):
    x = (np.random.default_rng(3).standard_normal(shape) * 5).astype(np.float32)
    fn, reference = (F.log_softmax, ref.log_softmax) if log else (F.softmax, ref.softmax)
    for dim in range(-len(shape), len(shape)):
        y = fn(device_tensor(x, device), dim)
        assert_close(y, reference(x, dim), n_reduce=shape[dim])


@pytest.mark.parametrize("log", [False, True])
def test_softmax_non_contiguous(log, isa, device):
    fn, reference = (F.log_softmax, ref.log_softmax) if log else (F.softmax, ref.softmax)
    base = np.random.default_rng(4).standard_normal((6, 70, 9)).astype(np.float32)
    for view in (lambda a: a.transpose(2, 0, 1), lambda a: a[:, ::3, 1::2], lambda a: a[::-1, :, ::-2],
                 lambda a: a.transpose(1, 2, 0)[5:, 2:]):
        v = view(base)
        for dim in range(3):
            assert_close(fn(device_tensor(base, device, view), dim), reference(v, dim), n_reduce=v.shape[dim])


@pytest.mark.parametrize("shape,dim", [((16384 // 64, 1000), 1), ((256, 10), 1), ((300, 70), 0), ((4, 1000, 77), 1),
                                       ((1000, 16), 1), ((999, 17), 1), ((130, 1), 1), ((67, 13), 1)])
def test_softmax_large_rows_and_columns(shape, dim, isa, device):
    x = (np.random.default_rng(5).standard_normal(shape) * 3).astype(np.float32)
    assert_close(F.softmax(device_tensor(x, device), dim), ref.softmax(x, dim), n_reduce=shape[dim])
    assert_close(F.log_softmax(device_tensor(x, device), dim), ref.log_softmax(x, dim), n_reduce=shape[dim], scale=4)


def test_softmax_extreme_values(isa, device):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1],
                  [-1e4, -1e4 + 2, -1e4 + 1, -1e4],
                  [-np.inf, 0.0, -np.inf, 1.0],
                  [3e38, 3e38, -3e38, 0.0]], np.float32)
    for dim in (1,):
        y = F.softmax(device_tensor(x, device), dim).numpy(force=True)
        assert_close(y, ref.softmax(x, dim), n_reduce=4)
        ly = F.log_softmax(device_tensor(x, device), dim).numpy(force=True)
        np.testing.assert_allclose(ly[:2], ref.log_softmax(x, dim)[:2], rtol=1e-6, atol=1e-6)
        assert ly[2, 0] == -np.inf and ly[2, 2] == -np.inf


def test_softmax_nan_rows(isa, device):
    # A NaN anywhere in a row, a row of all -inf or a row with +inf: the row is NaN, as PyTorch.
    x = np.array([[1.0, np.nan, 2.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0], [0.0, 1.0, 2.0]], np.float32)
    for fn in (F.softmax, F.log_softmax):
        for xx, dim in ((x, 1), (np.ascontiguousarray(x.T), 0)):
            y = fn(device_tensor(xx, device), dim).numpy(force=True)
            y = y if dim == 1 else y.T
            assert np.isnan(y[:3]).all() and np.isfinite(y[3]).all()


@pytest.mark.parametrize("log", [False, True])
def test_softmax_far_apart_rows(log, isa, device):
    # (C, inner) with C rows spanning > 1 MB: the two-pass online max + sum (chunks of 8
    # rows, one band of rows per thread), odd inner sizes (blocks of 1024 plus a tail), and
    # special columns: all -inf and a NaN -> NaN, +inf -> NaN, -inf in the first chunks
    # (col 8: the whole first band of 2 threads) then finite -> finite, or finite then -inf
    # to the end (col 9: the whole last band).
    fn, reference = (F.log_softmax, ref.log_softmax) if log else (F.softmax, ref.softmax)
    x = (np.random.default_rng(8).standard_normal((300, 1037)) * 4).astype(np.float32)
    x[:, 3] = -np.inf
    x[:, 5] = -np.inf
    x[20:, 5] = np.linspace(-3, 3, 280)
    x[150, 7] = np.nan
    x[9, 600] = np.inf
    x[:17, 1036] = -np.inf
    x[:200, 8] = -np.inf
    x[100:, 9] = -np.inf
    y = fn(device_tensor(x, device), 0).numpy(force=True)
    assert np.isnan(y[:, [3, 7, 600]]).all()
    keep = np.ones(1037, bool)
    keep[[3, 5, 7, 8, 9, 600, 1036]] = False
    assert_close(y[:, keep], reference(x[:, keep], 0), n_reduce=300, scale=4 if log else 1)
    for col, first in ((5, 20), (1036, 17), (8, 200)):  # exp(-inf) = 0 (log: -inf) in the first rows
        expected = reference(x[:, col], 0)
        np.testing.assert_array_equal(y[:first, col], expected[:first])
        np.testing.assert_allclose(y[first:, col], expected[first:], rtol=1e-5)
    expected = reference(x[:, 9], 0)
    np.testing.assert_array_equal(y[100:, 9], expected[100:])
    np.testing.assert_allclose(y[:100, 9], expected[:100], rtol=1e-5)
    yt = fn(device_tensor(x.T.copy(), device, lambda a: a.T), 0).numpy(force=True)  # the same, non-contiguous
    np.testing.assert_array_equal(yt, y)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_far_apart_rows_float64(log, threads, isa):
    # The online path in float64 (blocks of 512 plus a tail of 1), rows 8 KB apart, split
    # into 1 or 3 bands of rows (uneven, 26 chunks of 8 rows; the last one 3 rows).
    fn, reference = (F.log_softmax, ref.log_softmax) if log else (F.softmax, ref.softmax)
    x = np.random.default_rng(9).standard_normal((203, 1025)) * 30
    x[:100, 4] = -np.inf
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        y = fn(ember.from_numpy(x), 0).numpy()
    finally:
        ember.set_num_threads(old)
    np.testing.assert_allclose(y, reference(x, 0), rtol=1e-12, atol=1e-12 if log else 1e-300)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_long_rows_split_across_threads(log, threads, isa):
    # Fewer rows than threads, each long: every row is split into one chunk per thread
    # (max and sum per chunk, merged). Rows: plain; -inf over the first chunks then finite
    # (those chunks give exactly 0 / -inf); all -inf, a NaN in one chunk, or a +inf -> NaN,
    # as the one-thread row; then the backward, split the same way.
    fn, reference = (F.log_softmax, ref.log_softmax) if log else (F.softmax, ref.softmax)
    C = 70_001
    x = (np.random.default_rng(10).standard_normal((1, C)) * 4).astype(np.float32)
    rows = {"plain": x[0], "head -inf": np.where(np.arange(C) < 50_000, -np.inf, x[0]).astype(np.float32),
            "all -inf": np.full(C, -np.inf, np.float32), "one nan": np.where(np.arange(C) == 60_000, np.nan, x[0]),
            "one inf": np.where(np.arange(C) == 3, np.inf, x[0])}
    old = ember.get_num_threads()
    try:
        for name, row in rows.items():
            row = row.astype(np.float32)
            ember.set_num_threads(threads)
            y = fn(ember.from_numpy(row), 0).numpy()
            ember.set_num_threads(1)
            y1 = fn(ember.from_numpy(row), 0).numpy()
            if name in ("all -inf", "one nan", "one inf"):
                assert np.isnan(y).all() and np.isnan(y1).all(), name
                continue
            expected = reference(row, 0)
            finite = np.isfinite(row)
            np.testing.assert_array_equal(y[~finite], expected[~finite], err_msg=name)
            assert_close(y[finite], expected[finite], n_reduce=C, scale=4 if log else 1)
        # backward: one row (split), and two rows (split with 3 threads, one per thread with 2)
        kernel = ember._C.log_softmax_backward if log else ember._C.softmax_backward
        for xx in (x, np.concatenate([x, x[:, ::-1]])):
            g = np.random.default_rng(11).standard_normal(xx.shape).astype(np.float32)
            y = fn(ember.from_numpy(xx), 1).numpy()
            gx, gx1 = np.empty_like(xx), np.empty_like(xx)
            ember.set_num_threads(threads)
            kernel(g, y, 1, gx)
            ember.set_num_threads(1)
            kernel(g, y, 1, gx1)
            expected = (ref.log_softmax_backward if log else ref.softmax_backward)(g, y, 1)
            assert_close(gx, expected, n_reduce=C, scale=4)
            assert_close(gx1, expected, n_reduce=C, scale=4)
    finally:
        ember.set_num_threads(old)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_kernel(log, isa, device):
    K = ember._backend.kernels(device)
    rng = np.random.default_rng(6)
    cases = (((37, 101), 1), ((5, 70, 3), 1), ((5, 6, 130), 0), ((2, 3, 4, 5), 2), ((300, 7), 1), ((3, 99, 16), 2),
             ((129, 16), 1), ((1, 2), 1))
    for shape, dim in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        fwd = F.log_softmax if log else F.softmax
        y = fwd(device_tensor(x, device), dim).numpy(force=True)
        gx = on_device(np.empty_like(x), device)
        (K.log_softmax_backward if log else K.softmax_backward)(on_device(g, device), on_device(y, device), dim, gx)
        gx = to_host(gx)
        expected = (ref.log_softmax_backward if log else ref.softmax_backward)(g, y, dim)
        assert_close(gx, expected, n_reduce=shape[dim], scale=4)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_gradcheck(log):
    fn = F.log_softmax if log else F.softmax
    rng = np.random.default_rng(7)
    for shape in ((3, 4, 5), (1, 7)):
        x = ember.tensor(rng.standard_normal(shape), dtype=ember.float64, requires_grad=True)
        for dim in range(len(shape)):
            gradcheck(lambda t: fn(t, dim), [x])
    base = ember.tensor(rng.standard_normal((4, 6)), dtype=ember.float64, requires_grad=True)
    gradcheck(lambda t: fn(t[:, ::2].T, 1), [base])  # non-contiguous


def test_softmax_shapes_and_dtype():
    for shape in ((0,), (0, 5), (5, 0), (1,), ()):
        x = ember.from_numpy(np.random.standard_normal(shape).astype(np.float32))
        for dim in (0, -1):
            y = F.softmax(x, dim)
            assert y.shape == shape
    scalar = ember.from_numpy(np.array(3.0, np.float32))
    assert F.softmax(scalar, 0).shape == () and F.softmax(scalar, 0).item() == 1.0
    assert F.log_softmax(scalar, -1).item() == 0.0
    x = ember.randn(3, 4, dtype=ember.float32)
    assert F.softmax(x, 1, dtype=ember.float64).dtype == ember.float64
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        np.testing.assert_array_equal(F.softmax(x).numpy(), F.softmax(x, 1).numpy())


# ---------------------------------------------------------------- errors


def test_errors():
    x = ember.randn(3, 4)
    with pytest.raises(IndexError, match="softmax: dim 2 is out of range for a 2-D tensor"):
        F.softmax(x, 2)
    with pytest.raises(IndexError, match="log_softmax: dim -3 is out of range"):
        F.log_softmax(x, -3)
    with pytest.raises(TypeError, match="softmax: dim must be an int"):
        F.softmax(x, 1.5)
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(x, approximate="fast")
    with pytest.raises(TypeError, match="relu: input must be a Tensor"):
        F.relu(np.zeros(3))
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a number"):
        F.leaky_relu(x, "0.1")
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"sigmoid: shapes differ, \(3,4\) vs \(4,3\)"):
        _C.sigmoid(a, np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="tanh: dtypes differ"):
        _C.tanh(a, np.zeros((3, 4), np.float64))
    with pytest.raises(TypeError, match="gelu: input must be float32 or float64, got int64"):
        _C.gelu(np.zeros(3, np.int64), False, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="relu_backward: grad_output, output and grad_input must share one dtype"):
        _C.relu_backward(a, a.astype(np.float64), a)
    with pytest.raises(ValueError, match="gelu_backward: shapes differ"):
        _C.gelu_backward(a, a[:2], False, a)
    with pytest.raises(IndexError, match="softmax: dim 5 is out of range for a 2-D tensor"):
        _C.softmax(a, 5, np.zeros_like(a))
    with pytest.raises(IndexError, match="softmax_backward: dim -3 is out of range"):
        _C.softmax_backward(a, a, -3, np.zeros_like(a))
    with pytest.raises(ValueError, match="out: output array is read-only"):
        ro = np.zeros_like(a)
        ro.flags.writeable = False
        _C.relu(a, ro)
