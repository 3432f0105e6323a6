"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: forward, indices and backward against
ember.ref on every device, gradient checks, every CPU SIMD path, tie/NaN rules, errors."""
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import assert_close, gradcheck

# (shape, kernel_size, stride, padding, ceil_mode)
MAX_CONFIGS = [
    ((2, 3, 8, 8), 2, None, 0, False),          # the 2x2 / stride 2 fast path
    ((2, 3, 28, 28), 2, 2, 0, False),           # fast path, 14-wide rows done 16 at a time
    ((1, 2, 33, 31), 2, 2, 0, False),           # the same, odd sizes
    ((2, 3, 7, 9), 2, 2, 0, False),             # fast path, odd sizes (last row/column dropped)
    ((2, 3, 14, 14), 2, 2, 0, False),           # fast path, 7-wide rows done 8 at a time
    ((1, 2, 11, 13), 2, 2, 0, False),           # the same, odd sizes
    ((1, 2, 7, 9), 2, 2, 0, True),              # ceil mode: partial windows, general path
    ((2, 2, 9, 9), 3, 2, 1, False),
    ((2, 2, 6, 5), 3, 1, 1, False),
    ((1, 3, 10, 7), (2, 3), (1, 2), (1, 1), False),
    ((2, 2, 11, 11), 3, 3, 0, True),
    ((0, 3, 6, 6), 2, 2, 0, False),             # batch 0
    ((1, 1, 1, 1), 1, 1, 0, False),
    ((3, 5, 13, 17), 5, 2, 2, False),
    # vectorized rows (no dilation, column stride 1 or 2): blocks of 16 and 8 outputs,
    # the last one shifted left; odd widths, padding 0/1, ceil mode, short rows
    ((2, 3, 40, 37), 3, 2, 1, False),
    ((1, 2, 23, 21), 3, 2, 0, True),
    ((2, 2, 19, 35), 3, 1, 1, False),
    ((1, 2, 12, 11), 2, 1, 0, False),
    ((1, 2, 9, 40), (3, 2), (2, 2), (1, 0), True),
    ((2, 2, 5, 6), 3, 2, 1, False),
]


def _x(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _check_max(cfg, dtype=np.float32, device="cpu"):
    shape, k, s, p, ceil = cfg
    x = _x(shape, dtype)
    tx = ember.tensor(x, device=device, requires_grad=True)
    out, idx = F.max_pool2d(tx, k, s, p, ceil_mode=ceil, return_indices=True)
    eo, ei = ref.max_pool2d(x, k, s, p, ceil)
    assert out.shape == eo.shape
    np.testing.assert_array_equal(out.numpy(force=True), eo)
    np.testing.assert_array_equal(idx.numpy(force=True), ei)
    dy = _x(eo.shape, dtype, seed=1)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.max_pool2d_backward(dy, ei, x.shape), dtype=dtype)


@pytest.mark.parametrize("cfg", MAX_CONFIGS, ids=[str(i) for i in range(len(MAX_CONFIGS))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_against_ref(cfg, dtype, device):
    _check_max(cfg, dtype, device)


@pytest.mark.parametrize("cfg", [MAX_CONFIGS[0], MAX_CONFIGS[1], MAX_CONFIGS[2], MAX_CONFIGS[4], MAX_CONFIGS[5],
                                 MAX_CONFIGS[7], MAX_CONFIGS[14], MAX_CONFIGS[15], MAX_CONFIGS[16], MAX_CONFIGS[17],
                                 MAX_CONFIGS[18], MAX_CONFIGS[19]],
                         ids=["2x2", "2x2-spill", "2x2-spill-odd", "2x2-spill8", "2x2-spill8-odd", "3x3",
                              "s2-16", "s2-ceil", "s1-16", "s1-8", "s2-rect-ceil", "s2-short"])
def test_max_pool2d_every_isa(isa, cfg):
    _check_max(cfg)


def _check_ties_and_nan(k, s, p, device):
    # ties keep the first position; NaN wins (the last NaN of the window), as torch
    x = np.zeros((1, 1, 6, 6), np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 2, 3] = x[0, 0, 3, 3] = np.nan
    x[0, 0, 4:, 4:] = [[1, 3], [3, 2]]
    out, idx = F.max_pool2d(ember.tensor(x, device=device), k, s, p, return_indices=True)
    eo, ei = ref.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(out.numpy(force=True), eo)
    np.testing.assert_array_equal(idx.numpy(force=True), ei)
    assert np.isnan(eo[0, 0, 0, 0])


def _check_many_ties_and_nans(shape, k, s, p, device):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, shape).astype(np.float32)
    x[rng.random(shape) < 0.05] = np.nan
    out, idx = F.max_pool2d(ember.tensor(x, device=device), k, s, p, return_indices=True)
    eo, ei = ref.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(out.numpy(force=True), eo)
    np.testing.assert_array_equal(idx.numpy(force=True), ei)
    out2 = F.max_pool2d(ember.tensor(x, device=device), k, s, p)  # the no-indices loop
    np.testing.assert_array_equal(out2.numpy(force=True), eo)


TIE_CONFIGS = [(2, 2, 0), (3, 2, 1)]
MANY_TIE_CONFIGS = [((2, 2, 28, 30), 2, 2, 0), ((2, 2, 8, 10), 2, 2, 0), ((2, 2, 11, 9), 3, 2, 1),
                    ((2, 2, 21, 40), 3, 2, 1), ((2, 2, 13, 37), 3, 1, 1), ((2, 2, 9, 20), 3, 2, 0)]
MANY_TIE_IDS = ["2x2-spill", "2x2", "general", "s2-16", "s1-16", "s2-8"]


@pytest.mark.parametrize("k, s, p", TIE_CONFIGS, ids=["2x2", "general"])
def test_max_pool2d_ties_and_nan(isa, k, s, p):
    _check_ties_and_nan(k, s, p, "cpu")


@pytest.mark.parametrize("k, s, p", TIE_CONFIGS, ids=["2x2", "general"])
def test_max_pool2d_ties_and_nan_every_device(device, k, s, p):
    _check_ties_and_nan(k, s, p, device)


@pytest.mark.parametrize("shape, k, s, p", MANY_TIE_CONFIGS, ids=MANY_TIE_IDS)
def test_max_pool2d_many_ties_and_nans(isa, shape, k, s, p):
    _check_many_ties_and_nans(shape, k, s, p, "cpu")


@pytest.mark.parametrize("shape, k, s, p", MANY_TIE_CONFIGS, ids=MANY_TIE_IDS)
def test_max_pool2d_many_ties_and_nans_every_device(device, shape, k, s, p):
    _check_many_ties_and_nans(shape, k, s, p, device)


# 3x3 / stride 2 / padding 1, P = ceil(H/2), Q = ceil(W/2): the separable run. Rows of Q
# outputs go in blocks of 16/8 (AVX-512), 8/4 (AVX2, scalar) floats, half that for
# float64: short rows spill into the next row, longer ones end with a shifted block;
# odd H/W replace the bottom/right padding tap; the run's last row and input are exact.
SEPARABLE_SHAPES = [(2, 3, 28, 28), (1, 1, 1, 1), (2, 3, 1, 7), (2, 3, 7, 1), (1, 1, 2, 2), (3, 2, 3, 5),
                    (2, 2, 33, 65), (2, 2, 16, 64), (1, 3, 10, 17), (4, 5, 6, 15), (2, 2, 9, 3), (1, 2, 5, 32),
                    (2, 1, 4, 9), (1, 2, 3, 18)]


def _check_separable(x, dtype, ceil=False):
    x = x.astype(dtype)
    eo, ei = ref.max_pool2d(x, 3, 2, 1, ceil)
    out, idx = F.max_pool2d(ember.tensor(x), 3, 2, 1, ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), eo)
    np.testing.assert_array_equal(np.signbit(out.numpy()), np.signbit(eo))  # -0 stays -0
    np.testing.assert_array_equal(idx.numpy(), ei)
    np.testing.assert_array_equal(F.max_pool2d(ember.tensor(x), 3, 2, 1, ceil_mode=ceil).numpy(), eo)


@pytest.mark.parametrize("shape", SEPARABLE_SHAPES, ids=[str(s) for s in SEPARABLE_SHAPES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_3x3s2_separable(isa, shape, dtype):
    rng = np.random.default_rng(sum(shape))
    _check_separable(rng.standard_normal(shape), dtype)
    _check_separable(rng.standard_normal(shape), dtype, ceil=True)  # the same run for odd H/W, else general
    for nan_rate in (0.05, 0.4):  # ties everywhere, NaN now and then or in most windows
        x = rng.integers(0, 3, shape).astype(np.float64)
        x[rng.random(shape) < nan_rate] = np.nan
        _check_separable(x, dtype)
    _check_separable(np.full(shape, -np.inf), dtype)  # padding never wins, not even a tie
    _check_separable(np.where(rng.random(shape) < 0.5, -0.0, 0.0), dtype)  # ties of -0 and +0: the first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_3x3s2_nan_and_max_at_every_position(isa, dtype):
    # plane n of each batch holds a single NaN (a single 1 among 0 ties) at position n, so
    # every tap of every window, the padded borders' included, holds the winner once
    for H, W in [(7, 7), (6, 9), (5, 18)]:
        for v in (np.nan, 1.0):
            x = np.zeros((1, H * W, H, W))
            x.reshape(H * W, H * W)[np.arange(H * W), np.arange(H * W)] = v
            _check_separable(x, dtype)
        x = np.zeros((1, H * W, H, W))  # a NaN at every position after a NaN at position 0
        x.reshape(H * W, H * W)[:, 0] = np.nan
        x.reshape(H * W, H * W)[np.arange(H * W), np.arange(H * W)] = np.nan
        _check_separable(x, dtype)


@pytest.mark.parametrize("threads", [2, 3])
def test_max_pool2d_3x3s2_thread_runs(threads):
    # runs of planes per thread: spilled rows and copied row ends stop at each run's end
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        for shape in [(2, 61, 28, 28), (1, 97, 27, 13), (3, 50, 14, 14)]:
            _check_separable(np.random.default_rng(3).standard_normal(shape), np.float32)
    finally:
        ember.set_num_threads(old)

def test_max_pool2d_without_indices_and_unbatched(device):
    x = _x((3, 8, 6))
    out = F.max_pool2d(ember.tensor(x, device=device), 2)
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out.numpy(force=True), ref.max_pool2d(x[None], 2)[0][0])
    out, idx = F.max_pool2d(ember.tensor(x, device=device), 3, 1, 1, return_indices=True)
    assert idx.shape == out.shape == (3, 8, 6) and idx.dtype == ember.int64


def test_max_pool2d_non_contiguous(device):
    x = _x((2, 9, 8, 3))
    tx = ember.tensor(x, device=device, requires_grad=True)
    out = F.max_pool2d(tx.permute(0, 3, 1, 2), 2)
    xr = x.transpose(0, 3, 1, 2)
    eo, ei = ref.max_pool2d(xr, 2)
    np.testing.assert_array_equal(out.numpy(force=True), eo)
    dy = _x(eo.shape, seed=2)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.max_pool2d_backward(dy, ei, xr.shape).transpose(0, 2, 3, 1))


# (shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
AVG_CONFIGS = [
    ((2, 3, 8, 8), 2, None, 0, False, True),
    ((2, 3, 28, 28), 2, 2, 0, False, False),    # 2x2 fast path, 16-wide rows
    ((2, 3, 14, 14), 2, 2, 0, False, False),    # 2x2 fast path, 8-wide rows
    ((1, 2, 33, 31), 2, 2, 0, False, True),
    ((2, 2, 9, 7), 3, 2, 1, False, True),
    ((2, 2, 9, 7), 3, 2, 1, False, False),
    ((1, 3, 10, 7), (2, 3), (1, 2), (1, 1), False, True),
    ((1, 2, 7, 9), 2, 2, 1, True, True),       # ceil mode: a window past the padding
    ((1, 2, 7, 9), 3, 2, 1, True, False),
    ((0, 2, 4, 4), 2, 2, 0, False, True),
]


def _check_avg(cfg, dtype=np.float32, device="cpu"):
    shape, k, s, p, ceil, cip = cfg
    x = _x(shape, dtype)
    tx = ember.tensor(x, device=device, requires_grad=True)
    out = F.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=cip)
    eo = ref.avg_pool2d(x, k, s, p, ceil, cip)
    assert out.shape == eo.shape
    n = int(np.prod(np.broadcast_to(k, 2)))
    assert_close(out, eo, n_reduce=n, dtype=dtype)
    dy = _x(eo.shape, dtype, seed=1)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.avg_pool2d_backward(dy, x.shape, k, s, p, ceil, cip), n_reduce=n, dtype=dtype)


@pytest.mark.parametrize("cfg", AVG_CONFIGS, ids=[str(i) for i in range(len(AVG_CONFIGS))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_against_ref(cfg, dtype, device):
    _check_avg(cfg, dtype, device)


def test_avg_pool2d_every_isa(isa):
    for cfg in AVG_CONFIGS[:4]:
        _check_avg(cfg)


@pytest.mark.parametrize("shape, size", [
    ((2, 3, 7, 7), 1),               # global average
    ((2, 3, 1, 1), 1),
    ((2, 3, 10, 10), (2, 3)),
    ((1, 2, 7, 9), (5, 4)),          # overlapping windows
    ((1, 2, 5, 6), (8, 9)),          # output larger than input: repeated elements
    ((1, 2, 5, 6), (None, 3)),       # None keeps the input size
    ((0, 2, 5, 6), 2),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool2d_against_ref(shape, size, dtype, device):
    x = _x(shape, dtype)
    tx = ember.tensor(x, device=device, requires_grad=True)
    out = F.adaptive_avg_pool2d(tx, size)
    full = tuple(d if s is None else s for s, d in zip(np.broadcast_to(np.array(size, dtype=object), 2),
                                                        shape[2:]))
    eo = ref.adaptive_avg_pool2d(x, full)
    assert out.shape == eo.shape
    assert_close(out, eo, n_reduce=shape[2] * shape[3], dtype=dtype)
    dy = _x(eo.shape, dtype, seed=1)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.adaptive_avg_pool2d_backward(dy, x.shape), dtype=dtype)


def test_adaptive_avg_pool2d_every_isa(isa):
    for shape, size in [((2, 3, 9, 11), 1), ((1, 2, 7, 9), (3, 4))]:
        x = _x(shape)
        assert_close(F.adaptive_avg_pool2d(ember.tensor(x), size), ref.adaptive_avg_pool2d(x, size),
                     n_reduce=99)


def test_pool_gradchecks():
    x = ember.tensor(_x((2, 2, 6, 7), np.float64), requires_grad=True)
    gradcheck(lambda a: F.max_pool2d(a, 2), [x])
    gradcheck(lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True), [x])
    gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1), [x])
    gradcheck(lambda a: F.avg_pool2d(a, (2, 3), 1, (1, 1), ceil_mode=True, count_include_pad=False), [x])
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, 1), [x])
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, (4, 3)), [x])


@pytest.mark.parametrize("call, exc, match", [
    (lambda x: F.max_pool2d(x, 0), ValueError, "kernel_size must be >= 1"),
    (lambda x: F.max_pool2d(x, 2, 0), ValueError, "stride must be >= 1"),
    (lambda x: F.max_pool2d(x, 2, -1), ValueError, "stride must be >= 1"),
    (lambda x: F.max_pool2d(x, 2, 2, -1), ValueError, "padding must be >= 0"),
    (lambda x: F.max_pool2d(x, 2, 2, 2), ValueError, "at most half of the kernel size"),
    (lambda x: F.max_pool2d(x, 9), ValueError, "larger than the padded input"),
    (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda x: F.max_pool2d(x, 3, dilation=2), ValueError, "spans \\(5, 5\\), larger than the padded input"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), ValueError, "tuple of 2 ints"),
    (lambda x: F.avg_pool2d(x, 3, 1, 2), ValueError, "at most half of the kernel size"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override must be >= 1"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=2.5), TypeError, "divisor_override must be an int"),
    (lambda x: F.avg_pool2d(x.reshape(96), 2), ValueError, "3-D .* or 4-D"),
    (lambda x: F.max_pool2d(x.long(), 2), TypeError, "float32 or float64"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError, "output_size must be >= 1"),
    (lambda x: F.adaptive_avg_pool2d(x, (1, 2, 3)), ValueError, "output_size must be an int or a tuple of 2"),
    (lambda x: F.adaptive_avg_pool2d(x[:, :, :0], 1), ValueError, "must be non-empty"),
    (lambda x: F.max_pool2d(x.numpy(), 2), TypeError, "must be a Tensor"),
])
def test_pool_errors(call, exc, match):
    x = ember.tensor(_x((2, 3, 4, 4)))
    with pytest.raises(exc, match=match):
        call(x)


def test_pool_kernel_checks(device):
    k, xp = ember._backend.kernels(device), ember._backend.xp(device)
    x = xp.asarray(_x((1, 2, 4, 4)))
    out = xp.empty((1, 2, 2, 2), np.float32)
    idx = xp.empty((1, 2, 2, 2), np.int64)
    k.max_pool2d_forward(x, out, idx, [2, 2, 2, 2, 0, 0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"out shape \(1,2,3,3\), expected \(1, 2, 2, 2\)"):
        k.max_pool2d_forward(x, xp.empty((1, 2, 3, 3), np.float32), None, [2, 2, 2, 2, 0, 0, 1, 1, 0])
    with pytest.raises(TypeError, match="indices must be int64"):
        k.max_pool2d_forward(x, out, idx.astype(np.float32), [2, 2, 2, 2, 0, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="stride must be >= 1"):
        k.avg_pool2d_forward(x, out, [2, 2, 0, 2, 0, 0, 1, 1, 0], True)
    with pytest.raises(ValueError, match="geometry must have 9 entries"):
        k.avg_pool2d_forward(x, out, [2, 2], True)
    for bad_index in (16, -1):
        bad = idx.copy()
        bad[0, 1, 1, 0] = bad_index
        with pytest.raises(IndexError, match=f"index {bad_index} is out of range"):
            k.max_pool2d_backward(out, bad, xp.empty_like(x))
    k.max_pool2d_backward(out, idx, xp.empty_like(x))  # a good call after a bad one
    with pytest.raises(TypeError, match="dtypes differ"):
        k.adaptive_avg_pool2d_forward(x, out.astype(np.float64))


# (shape, kernel_size, stride, padding, dilation, ceil_mode)
DILATED_CONFIGS = [
    ((2, 3, 9, 9), 2, 2, 0, 2, False),
    ((1, 2, 11, 10), 3, 1, 1, 2, False),
    ((2, 2, 13, 12), (3, 2), (2, 1), (1, 0), (2, 3), True),
    ((1, 1, 7, 7), 3, 2, 1, 3, True),
]


def _check_dilation(cfg, device):
    shape, k, s, p, d, ceil = cfg
    x = _x(shape)
    tx = ember.tensor(x, device=device, requires_grad=True)
    out, idx = F.max_pool2d(tx, k, s, p, d, ceil, return_indices=True)
    eo, ei = ref.max_pool2d(x, k, s, p, ceil, dilation=d)
    np.testing.assert_array_equal(out.numpy(force=True), eo)
    np.testing.assert_array_equal(idx.numpy(force=True), ei)
    dy = _x(eo.shape, seed=1)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.max_pool2d_backward(dy, ei, x.shape))
    layer = ember.nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    np.testing.assert_array_equal(layer(ember.tensor(x, device=device)).numpy(force=True), eo)


@pytest.mark.parametrize("cfg", DILATED_CONFIGS, ids=[str(i) for i in range(len(DILATED_CONFIGS))])
def test_max_pool2d_dilation(isa, cfg):
    _check_dilation(cfg, "cpu")


@pytest.mark.parametrize("cfg", DILATED_CONFIGS, ids=[str(i) for i in range(len(DILATED_CONFIGS))])
def test_max_pool2d_dilation_every_device(device, cfg):
    _check_dilation(cfg, device)


DIVISOR_CONFIGS = [(2, 2, 0, False, True, 3), (3, 2, 1, True, False, 5), ((2, 3), 1, (1, 1), False, True, 1)]


def _check_divisor_override(k, s, p, ceil, cip, div, device):
    x = _x((2, 3, 8, 9))
    tx = ember.tensor(x, device=device, requires_grad=True)
    out = F.avg_pool2d(tx, k, s, p, ceil, cip, divisor_override=div)
    expect = ref.avg_pool2d(x, k, s, p, ceil, cip, divisor_override=div)
    assert_close(out, expect)
    dy = _x(expect.shape, seed=2)
    out.backward(ember.tensor(dy, device=device))
    assert_close(tx.grad, ref.avg_pool2d_backward(dy, x.shape, k, s, p, ceil, cip, divisor_override=div))
    layer = ember.nn.AvgPool2d(k, s, p, ceil, cip, divisor_override=div)
    assert_close(layer(ember.tensor(x, device=device)), expect)


@pytest.mark.parametrize("k, s, p, ceil, cip, div", DIVISOR_CONFIGS)
def test_avg_pool2d_divisor_override(isa, k, s, p, ceil, cip, div):
    _check_divisor_override(k, s, p, ceil, cip, div, "cpu")


@pytest.mark.parametrize("k, s, p, ceil, cip, div", DIVISOR_CONFIGS)
def test_avg_pool2d_divisor_override_every_device(device, k, s, p, ceil, cip, div):
    _check_divisor_override(k, s, p, ceil, cip, div, device)


def test_pool_dilation_and_divisor_gradcheck():
    x = ember.tensor(_x((1, 2, 9, 8), np.float64), requires_grad=True)
    gradcheck(lambda a: F.max_pool2d(a, 3, 2, 1, dilation=2), [x])
    gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1, divisor_override=4), [x])
