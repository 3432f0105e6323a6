"""conv2d / conv1d: forward and the backward kernels against ember.ref on every device,
gradient checks, every CPU algorithm (direct, im2col, pointwise) and SIMD path, threading
modes, errors. On CUDA the configs also cover the implicit GEMM's tile edges, the split
weight-gradient reduction and the pointwise and depthwise fast paths."""
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import assert_close, gradcheck

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CONFIGS = [
    (2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1),          # direct (C*R*S = 27)
    (2, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1),        # direct, C = 1 first layer
    (3, 1, 11, 9, 5, 5, 5, 1, 2, 1, 1),         # direct 5x5
    (2, 1, 10, 9, 3, 3, 2, 1, (2, 0), (2, 3), 1),  # direct, dilated, uneven padding
    (2, 4, 9, 8, 6, 3, 3, 1, 0, 1, 1),          # im2col, no padding
    (2, 5, 11, 13, 7, 3, 3, 2, 1, 1, 1),        # stride 2
    (1, 4, 10, 10, 3, 3, 3, 3, 2, 1, 1),        # stride 3, padding 2, batch 1
    (2, 4, 12, 11, 4, 3, 3, 1, 2, 2, 1),        # dilation 2
    (2, 4, 9, 9, 6, 3, 3, 1, 1, 1, 2),          # groups 2
    (2, 6, 8, 8, 6, 3, 3, 1, 1, 1, 6),          # depthwise
    (2, 4, 8, 8, 8, 3, 3, 2, 1, 1, 4),          # depthwise, multiplier 2, stride 2
    (2, 8, 7, 7, 5, 1, 1, 1, 0, 1, 1),          # pointwise (plain GEMM)
    (2, 6, 7, 7, 4, 1, 1, 1, 0, 1, 2),          # pointwise, groups 2
    (2, 3, 8, 8, 4, 1, 1, 2, 0, 1, 1),          # 1x1 stride 2 (im2col)
    (3, 3, 7, 10, 5, 2, 4, (1, 2), (0, 1), (2, 1), 1),  # non-square everything
    (0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1),          # batch 0
    (5, 17, 13, 11, 19, 3, 3, 1, 1, 1, 1),      # odd sizes, 5 images over the threads
    (2, 3, 5, 5, 4, 5, 5, 1, 0, 1, 1),          # kernel = input: 1x1 output
    (2, 2, 6, 7, 3, 2, 4, 1, "same", 1, 1),     # same, even kernel: asymmetric padding
    (2, 5, 6, 7, 3, 3, 2, 1, "same", 2, 1),     # same, dilated, im2col
    (2, 5, 6, 7, 3, 3, 3, 1, "valid", 1, 1),
    (2, 32, 6, 5, 8, 3, 3, 1, 1, 1, 2),         # shifted-GEMM forward, groups
    (2, 16, 9, 8, 4, 3, 2, 1, (2, 1), (2, 3), 1),  # shifted-GEMM forward, dilated
    (3, 70, 9, 10, 67, 3, 3, 1, 1, 1, 1),       # CUDA: more than one 64-row tile, partial last tiles
    (4, 3, 40, 36, 5, 3, 3, 1, 1, 1, 1),        # CUDA: weight gradient split over many blocks
    (2, 8, 12, 13, 6, 3, 3, 2, (0, 1), 2, 2),   # CUDA: stride 2 gather with dilation and groups
    (2, 5, 13, 37, 5, 3, 3, 2, 1, 1, 5),        # depthwise stride 2, odd width, several vectors per row
    (1, 3, 9, 40, 3, 5, 3, (1, 3), (2, 1), (1, 2), 3),  # depthwise, stride 3 in w, dilated, 5x3
    (2, 4, 7, 6, 4, 2, 4, 1, "same", 1, 4),     # depthwise, same with an even kernel
    (3, 2, 6, 19, 2, 3, 3, 1, 0, 1, 2),         # depthwise, no padding, rows of 17 outputs
    (1, 3, 4, 4, 3, 1, 1, 1, 0, 1, 3),          # depthwise 1x1: a per-channel scale
]


def _pads(padding, R, S, dilation):
    """(top, bottom, left, right) as ember resolves them, for the reference."""
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = dh * (R - 1), dw * (S - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    return (ph, ph, pw, pw)


def _data(cfg, dtype, rng):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = cfg
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // groups, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _ref_args(cfg):
    _, _, _, _, _, R, S, stride, padding, dilation, groups = cfg
    return dict(stride=stride, padding=_pads(padding, R, S, dilation), dilation=dilation, groups=groups)


def _check_forward_backward(cfg, dtype, rng, device="cpu"):
    x, w, b, kw = _data(cfg, dtype, rng)
    N, C, H, W, K, R, S = cfg[:7]
    crs = C // kw["groups"] * R * S
    tx, tw, tb = (ember.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(tx, tw, tb, **kw)
    expect = ref.conv2d(x, w, b, **_ref_args(cfg))
    assert out.shape == expect.shape
    assert_close(out, expect, n_reduce=crs, dtype=dtype)
    dy = rng.standard_normal(expect.shape).astype(dtype)
    out.backward(ember.tensor(dy, device=device))
    P, Q = expect.shape[2:]
    assert_close(tx.grad, ref.conv2d_backward_data(dy, w, x.shape, **_ref_args(cfg)), n_reduce=K * R * S, dtype=dtype)
    assert_close(tw.grad, ref.conv2d_backward_weight(x, dy, w.shape, **_ref_args(cfg)), n_reduce=N * P * Q,
                 dtype=dtype)
    assert_close(tb.grad, ref.conv2d_backward_bias(dy), n_reduce=N * P * Q, dtype=dtype)


@pytest.mark.parametrize("cfg", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_against_ref(cfg, dtype, device):
    _check_forward_backward(cfg, dtype, np.random.default_rng(0), device)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1], CONFIGS[5], CONFIGS[9], CONFIGS[11], CONFIGS[26],
                                 CONFIGS[27]],
                         ids=["direct", "direct-c1", "im2col", "depthwise", "pointwise", "depthwise-s2",
                              "depthwise-s3-dilated"])
def test_conv2d_every_isa(isa, cfg):
    _check_forward_backward(cfg, np.float32, np.random.default_rng(1))


# Winograd F(4x4, 3x3): float32, 3x3, stride 1, undilated, ungrouped, >= 16 channels each way
WINOGRAD_CONFIGS = [
    (3, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1),      # a LeNet-like layer; 14 = 3.5 tiles
    (2, 20, 9, 6, 24, 3, 3, 1, 0, 1, 1),        # no padding, channels not multiples of 16
    (2, 17, 7, 9, 33, 3, 3, 1, (2, 1), 1, 1),   # padding 2 and 1: backward data pads 0 and 1
    (1, 16, 3, 3, 16, 3, 3, 1, 1, 1, 1),        # one partial tile
    (2, 96, 48, 40, 64, 3, 3, 1, 1, 1, 1),      # images split into bands of tile rows
    (0, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1),        # batch 0
]


@pytest.mark.parametrize("cfg", WINOGRAD_CONFIGS, ids=[str(i) for i in range(len(WINOGRAD_CONFIGS))])
def test_conv2d_winograd_against_ref(cfg):
    _check_forward_backward(cfg, np.float32, np.random.default_rng(8))


@pytest.mark.parametrize("cfg", WINOGRAD_CONFIGS[:3], ids=["14x14", "unpadded", "uneven-padding"])
def test_conv2d_winograd_every_isa(isa, cfg):
    _check_forward_backward(cfg, np.float32, np.random.default_rng(9))


def _nonfinite_pattern_matches(actual, expected):
    actual = np.asarray(actual, np.float64)
    same = np.array_equal(np.isnan(actual), np.isnan(expected)) and np.array_equal(actual[np.isinf(actual)],
                                                                                     expected[np.isinf(actual)])
    finite = np.isfinite(expected)
    return same and np.allclose(actual[finite], expected[finite], rtol=1e-3, atol=1e-3)


# (C, K, stride): Winograd (>= 16 channels), the wide layout (8), direct (C*R*S <= 27), im2col (stride 2)
@pytest.mark.parametrize("C,K,stride", [(16, 16, 1), (32, 17, 1), (8, 8, 1), (3, 4, 1), (16, 16, 2)])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_conv2d_non_finite_input_as_a_direct_sum(C, K, stride, value, isa):
    # One inf or NaN in x must give inf / NaN exactly where a direct sum does: Winograd's
    # transforms would smear it over its 6x6 tile (inf - inf = NaN), and the wide layouts'
    # zero junk columns of dy would meet it as 0 * inf = NaN in the weight gradient.
    rng = np.random.default_rng(12)
    for pos in [(0, 0, 0, 0), (1, C - 1, 10, 10), (0, 1, 5, 6)]:
        x = rng.standard_normal((2, C, 11, 11)).astype(np.float32)
        w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
        x[pos] = value
        y = F.conv2d(ember.tensor(x), ember.tensor(w), stride=stride, padding=1).numpy()
        assert _nonfinite_pattern_matches(y, ref.conv2d(x, w, None, stride, 1)), pos
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dw = np.empty_like(w)
        ember._C.conv2d_backward_weight(x, dy, dw, (stride, stride, 1, 1, 1, 1, 1, 1, 1))
        assert _nonfinite_pattern_matches(dw, ref.conv2d_backward_weight(x, dy, w.shape, stride, 1)), pos
        dx = np.empty_like(x)
        w_bad = w.copy()
        w_bad[K - 1, C // 2, 1, 2] = value  # the same for a non-finite weight in backward data
        ember._C.conv2d_backward_data(dy, w_bad, dx, (stride, stride, 1, 1, 1, 1, 1, 1, 1))
        assert _nonfinite_pattern_matches(dx, ref.conv2d_backward_data(dy, w_bad, x.shape, stride, 1)), pos


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_conv2d_winograd_thread_counts(threads):
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:  # 5 images over 1-3 threads; each thread sums its own weight-gradient part
        _check_forward_backward((5, 24, 10, 13, 16, 3, 3, 1, 1, 1, 1), np.float32, np.random.default_rng(10))
    finally:
        ember.set_num_threads(old)


# big enough (> 2**18 multiply-adds) to be split over threads
THREAD_CONFIGS = [
    (4, 1, 32, 32, 16, 3, 3, 1, 1, 1, 1),    # direct
    (3, 8, 16, 16, 32, 3, 3, 2, 1, 1, 1),    # im2col, 3 images
    (1, 8, 24, 24, 16, 3, 3, 1, 1, 1, 2),    # one image: threads inside im2col and the GEMM
    (3, 16, 12, 12, 24, 1, 1, 1, 0, 1, 1),   # pointwise
    CONFIGS[16],
    (3, 16, 20, 20, 16, 3, 3, 1, 1, 1, 16),  # depthwise: planes over threads, channels for the weight gradient
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("cfg", THREAD_CONFIGS, ids=["direct", "im2col", "one-image", "pointwise", "odd",
                                                     "depthwise"])
def test_conv2d_thread_counts(threads, cfg):
    # 1 thread: images one by one; more threads than images: GEMM-internal threading;
    # fewer: whole images per thread and a reduction of the weight-gradient partials.
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        _check_forward_backward(cfg, np.float32, np.random.default_rng(2))
    finally:
        ember.set_num_threads(old)


def test_conv2d_no_bias_and_unbatched(device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    out = F.conv2d(ember.tensor(x, device=device), ember.tensor(w, device=device), padding=1)
    assert out.shape == (4, 6, 5)
    assert_close(out, ref.conv2d(x[None], w, None, padding=1)[0], n_reduce=27, dtype=np.float64)


def test_conv2d_non_contiguous(device):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)   # viewed as (2, 3, 9, 7)
    w = rng.standard_normal((5, 3, 3, 4)).astype(np.float32)   # every other column: (5, 3, 3, 2)
    tx = ember.tensor(x, device=device, requires_grad=True)
    tw = ember.tensor(w, device=device, requires_grad=True)
    xv, wv = tx.permute(0, 3, 1, 2), tw[:, :, :, ::2]
    assert not xv.is_contiguous() and not wv.is_contiguous()
    xr, wr = x.transpose(0, 3, 1, 2), w[:, :, :, ::2]
    out = F.conv2d(xv, wv, padding=1, stride=(2, 1))
    expect = ref.conv2d(xr, wr, None, stride=(2, 1), padding=1)
    assert_close(out, expect, n_reduce=18)
    dy = rng.standard_normal(expect.shape).astype(np.float32)
    out.backward(ember.tensor(dy, device=device))
    gx = ref.conv2d_backward_data(dy, wr, xr.shape, stride=(2, 1), padding=1)
    assert_close(tx.grad, gx.transpose(0, 2, 3, 1), n_reduce=30)
    gw = np.zeros(w.shape)
    gw[:, :, :, ::2] = ref.conv2d_backward_weight(xr, dy, wr.shape, stride=(2, 1), padding=1)
    assert_close(tw.grad, gw, n_reduce=2 * 5 * 7)


def test_conv2d_only_needed_grads(device):
    rng = np.random.default_rng(5)
    x = ember.tensor(rng.standard_normal((2, 3, 6, 6)), device=device)
    w = ember.tensor(rng.standard_normal((4, 3, 3, 3)), device=device, requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


def test_conv2d_zero_input_channels_gives_bias(device):
    # C = 0: every output is its bias, and the weight gradient is empty
    x = ember.zeros((2, 0, 4, 4), device=device, requires_grad=True)
    w = ember.zeros((2, 0, 3, 3), device=device, requires_grad=True)
    b = ember.tensor(np.array([1.5, -2.0], dtype=np.float32), device=device, requires_grad=True)
    out = F.conv2d(x, w, b, padding=1)
    assert out.shape == (2, 2, 4, 4)
    np.testing.assert_array_equal(out.numpy(force=True)[:, 0], 1.5)
    np.testing.assert_array_equal(out.numpy(force=True)[:, 1], -2.0)
    out.sum().backward()
    assert x.grad.shape == (2, 0, 4, 4) and w.grad.shape == (2, 0, 3, 3)
    np.testing.assert_array_equal(b.grad.numpy(force=True), [32.0, 32.0])


GRAD_CONFIGS = [
    (2, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1),    # direct
    (2, 4, 5, 6, 4, 3, 2, 2, 1, 1, 2),    # im2col, groups, stride
    (1, 3, 6, 5, 2, 2, 2, 1, 1, 2, 1),    # dilation
    (2, 4, 4, 3, 2, 1, 1, 1, 0, 1, 1),    # pointwise
    (2, 2, 5, 4, 3, 2, 3, 1, "same", 1, 1),  # asymmetric same padding
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS, ids=["direct", "im2col", "dilated", "pointwise", "same"])
def test_conv2d_gradcheck(cfg):
    x, w, b, kw = _data(cfg, np.float64, np.random.default_rng(6))
    tx, tw, tb = (ember.tensor(a, requires_grad=True) for a in (x, w, b))
    gradcheck(lambda a, bw, bb: F.conv2d(a, bw, bb, **kw), [tx, tw, tb])


def test_conv1d_against_ref(device):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 11))
    b = rng.standard_normal(6)
    for kw in [dict(stride=2, padding=1, dilation=1, groups=2), dict(padding="same", dilation=2, groups=1),
               dict(stride=1, padding=0, dilation=3, groups=2)]:
        ww = rng.standard_normal((6, 4 // kw["groups"], 3))
        out = F.conv1d(ember.tensor(x, device=device), ember.tensor(ww, device=device), ember.tensor(b, device=device),
                       **kw)
        pad = kw["padding"]
        if pad == "same":
            t = kw["dilation"] * 2
            pad = (0, 0, t // 2, t - t // 2)
        else:
            pad = (0, pad)
        expect = ref.conv2d(x[:, :, None], ww[:, :, None], b, stride=(1, kw.get("stride", 1)), padding=pad,
                            dilation=(1, kw["dilation"]), groups=kw["groups"])[:, :, 0]
        assert_close(out, expect, n_reduce=12, dtype=np.float64)


def test_conv1d_against_ref_and_gradcheck():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 11))
    w = rng.standard_normal((6, 2, 3))
    b = rng.standard_normal(6)
    for kw in [dict(stride=2, padding=1, dilation=1, groups=2), dict(padding="same", dilation=2, groups=1),
               dict(stride=1, padding=0, dilation=3, groups=2)]:
        ww = w if kw["groups"] == 2 else rng.standard_normal((6, 4, 3))
        out = F.conv1d(ember.tensor(x), ember.tensor(ww), ember.tensor(b), **kw)
        pad = kw["padding"]
        if pad == "same":
            t = kw["dilation"] * 2
            pad = (0, 0, t // 2, t - t // 2)
        else:
            pad = (0, pad)
        expect = ref.conv2d(x[:, :, None], ww[:, :, None], b, stride=(1, kw["stride"] if "stride" in kw else 1),
                            padding=pad, dilation=(1, kw["dilation"]), groups=kw["groups"])[:, :, 0]
        assert_close(out, expect, n_reduce=12, dtype=np.float64)
    tx, tw, tb = (ember.tensor(a, requires_grad=True) for a in (x[:, :, :6], w, b))
    gradcheck(lambda a, bw, bb: F.conv1d(a, bw, bb, stride=2, padding=1, groups=2), [tx, tw, tb])
    assert F.conv1d(ember.tensor(x[0]), ember.tensor(w), groups=2).shape == (6, 9)  # unbatched


def test_conv2d_repeated_calls_reuse_workspace(device):
    # the workspace grows and is reused: a big call, then a small one, then big again
    rng = np.random.default_rng(8)
    for cfg in [CONFIGS[16], CONFIGS[4], CONFIGS[16], CONFIGS[24]]:
        _check_forward_backward(cfg, np.float32, rng, device)


def _t(shape, dtype=np.float32):
    return ember.tensor(np.ones(shape, dtype=dtype))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(stride=(1, -1)), ValueError, "stride must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "padding must be 'valid', 'same'"),
    (dict(padding="same", stride=2), ValueError, "not supported for strided"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(groups=0), ValueError, "groups must be >= 1"),
    (dict(groups=1.5), TypeError, "groups must be an int"),
    (dict(stride=(1, 2, 3)), ValueError, "tuple of 2 ints"),
    (dict(stride="a"), TypeError, "stride must be an int"),
])
def test_conv2d_bad_geometry(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        F.conv2d(_t((1, 4, 6, 6)), _t((2, 4, 3, 3)), **kwargs)


def test_conv2d_bad_shapes_and_dtypes():
    x, w = _t((1, 4, 6, 6)), _t((2, 4, 3, 3))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        F.conv2d(_t((1, 6, 6, 6)), _t((4, 2, 3, 3)), groups=3)
    with pytest.raises(ValueError, match="expects 6 input channels"):
        F.conv2d(_t((1, 4, 6, 6)), _t((2, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="expects 3 input channels"):
        F.conv2d(x, _t((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, _t((2, 4, 7, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(x, w, dilation=4)
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        F.conv2d(_t((4, 6)), w)
    with pytest.raises(ValueError, match="4-D weight"):
        F.conv2d(x, _t((2, 4, 3)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        F.conv2d(x, w, _t((3,)))
    with pytest.raises(TypeError, match="same dtype"):
        F.conv2d(x, _t((2, 4, 3, 3), np.float64))
    with pytest.raises(TypeError, match="bias .*float64.* must have the input's dtype"):
        F.conv2d(x, w, _t((2,), np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.conv2d(ember.tensor(np.ones((1, 4, 6, 6), dtype=np.int64)), w)
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        F.conv2d(x, np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="3-D weight"):
        F.conv1d(_t((1, 4, 6)), w)


def test_conv2d_kernel_checks(device):
    # the C++ kernels check what they are given even when called directly
    k, xp = ember._backend.kernels(device), ember._backend.xp(device)
    x = xp.ones((1, 4, 6, 6), np.float32)
    w = xp.ones((2, 4, 3, 3), np.float32)
    out = xp.empty((1, 2, 4, 4), np.float32)
    geo = [1, 1, 0, 0, 0, 0, 1, 1, 1]
    k.conv2d_forward(x, w, None, out, geo)
    np.testing.assert_allclose(ember.tensor(out, device=device).numpy(force=True), 36.0)
    with pytest.raises(ValueError, match=r"out shape \(1,2,5,5\), expected \(1, 2, 4, 4\)"):
        k.conv2d_forward(x, w, None, xp.empty((1, 2, 5, 5), np.float32), geo)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        k.conv2d_forward(x, w, None, out, [0, 1, 0, 0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="padding must be >= 0"):
        k.conv2d_forward(x, w, None, out, [1, 1, -1, 0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        k.conv2d_forward(x, w, None, out, [1, 1, 0, 0, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="groups=3 must divide"):
        k.conv2d_forward(x, w, None, out, [1, 1, 0, 0, 0, 0, 1, 1, 3])
    with pytest.raises(TypeError, match="dtypes differ"):
        k.conv2d_forward(x, w.astype(np.float64), None, out, geo)
    with pytest.raises(ValueError, match="must be contiguous"):
        k.conv2d_forward(xp.ones((1, 4, 6, 12), np.float32)[..., ::2], w, None, out, geo)
    with pytest.raises(ValueError, match="bias shape"):
        k.conv2d_forward(x, w, xp.ones(3, np.float32), out, geo)
    with pytest.raises(ValueError, match="geometry must have 9 entries"):
        k.conv2d_forward(x, w, None, out, [1, 1])
    with pytest.raises(ValueError, match="grad_bias shape"):
        k.conv2d_backward_bias(out, xp.empty(3, np.float32))


def test_conv2d_kernel_rejects_read_only_output():
    x = np.ones((1, 4, 6, 6), np.float32)
    w = np.ones((2, 4, 3, 3), np.float32)
    geo = [1, 1, 0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="output array is read-only"):
        ro = np.empty((1, 2, 4, 4), np.float32)
        ro.flags.writeable = False
        ember._C.conv2d_forward(x, w, None, ro, geo)
