"""Batch norm: forward/backward kernels against ember.ref (float64), both kernel schedules
(per channel and per row block, picked by thread count), every SIMD path, running-stat
updates, float64 gradient checks, and argument errors."""
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import assert_close, gradcheck, on_device


@pytest.fixture(params=[1, 3])
def threads(request):
    """1 thread: the per-channel schedule for every spatial input; 3 threads: inputs with
    fewer than 3 channels take the per-row-block schedule."""
    old = ember.get_num_threads()
    ember.set_num_threads(request.param)
    yield request.param
    ember.set_num_threads(old)


SHAPES = [(5, 3), (2, 1), (64, 17), (7, 13, 1), (4, 3, 1, 1), (2, 3, 5, 7), (1, 5, 3, 3), (3, 2, 11, 13),
          (6, 1, 4, 5), (4, 6, 11)]


def _data(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    w = rng.standard_normal(C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    rm = rng.standard_normal(C).astype(dtype)
    rv = (rng.random(C) + 0.5).astype(dtype)
    return x, w, b, rm, rv


def _t(a, device="cpu", **kw):
    return ember.tensor(a, dtype=ember.as_dtype(a.dtype), device=device, **kw)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_training_vs_ref(shape, affine, isa, threads, device):
    x, w, b, rm, rv = _data(shape)
    trm, trv = _t(rm, device), _t(rv, device)
    y = F.batch_norm(_t(x, device), trm, trv, _t(w, device) if affine else None, _t(b, device) if affine else None,
                     training=True,
                     momentum=0.2, eps=1e-5)
    ey, erm, erv = ref.batch_norm(x, rm, rv, w if affine else None, b if affine else None, True, 0.2, 1e-5)
    m = x.size // shape[1]
    assert y.shape == shape and y.dtype == ember.float32
    assert_close(y, ey, n_reduce=m, scale=4)
    assert_close(trm, erm, n_reduce=m)
    assert_close(trv, erv, n_reduce=m)


@pytest.mark.parametrize("shape", SHAPES + [(1, 4)])
def test_forward_eval_vs_ref(shape, isa, threads, device):
    x, w, b, rm, rv = _data(shape, seed=1)
    trm, trv = _t(rm, device), _t(rv, device)
    y = F.batch_norm(_t(x, device), trm, trv, _t(w, device), _t(b, device), training=False)
    ey, _, _ = ref.batch_norm(x, rm, rv, w, b, False)
    assert_close(y, ey, scale=2)
    np.testing.assert_array_equal(trm.numpy(force=True), rm)  # eval never moves the running stats
    np.testing.assert_array_equal(trv.numpy(force=True), rv)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_backward_vs_ref(shape, training, isa, threads, device):
    x, w, b, rm, rv = _data(shape, seed=2)
    tx, tw, tb = (_t(a, device, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(tx, _t(rm, device), _t(rv, device), tw, tb, training=training)
    g = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    y.backward(_t(g, device))
    dx, dw, db = ref.batch_norm_backward(g, x, w, training, rm, rv)
    m = x.size // shape[1]
    assert_close(tx.grad, dx, n_reduce=m, scale=8)
    assert_close(tw.grad, dw, n_reduce=m, scale=4)
    assert_close(tb.grad, db, n_reduce=m)


def test_backward_without_weight(isa):
    x = np.random.default_rng(4).standard_normal((6, 4, 3, 2)).astype(np.float32)
    tx = _t(x, requires_grad=True)
    F.batch_norm(tx, None, None, training=True).backward(ember.ones(6, 4, 3, 2))
    dx, _, _ = ref.batch_norm_backward(np.ones(x.shape), x, None, True)
    assert_close(tx.grad, dx, n_reduce=36, scale=8)


# (32, 3, 20, 20): planes split on CUDA; (50000, 3): columns split; (4, 2, 151, 151): planes
# split without packs; (300, 67, 3): columns, one block per 10 channels.
@pytest.mark.parametrize("shape", [(32, 3, 20, 20), (50000, 3), (4, 2, 151, 151), (300, 67, 3)])
def test_large_mean_is_accurate(shape, threads, device):
    # mean 1e4, std 1: a one-pass E[x^2] - E[x]^2 in float32 loses every digit here.
    rng = np.random.default_rng(5)
    C = shape[1]
    x = (1e4 + rng.standard_normal(shape)).astype(np.float32)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    tx = _t(x, device, requires_grad=True)
    trm, trv = _t(rm, device), _t(rv, device)
    y = F.batch_norm(tx, trm, trv, training=True, momentum=1.0)
    ey, erm, erv = ref.batch_norm(x, rm, rv, None, None, True, 1.0)
    np.testing.assert_allclose(trv.numpy(force=True), erv, rtol=1e-4)
    np.testing.assert_allclose(trm.numpy(force=True), erm, rtol=1e-6)
    # x itself is quantized at ~1e-3 at this magnitude, so y is accurate to about that.
    np.testing.assert_allclose(y.numpy(force=True), ey, atol=3e-3)
    g = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    y.backward(_t(g, device))
    dx, _, _ = ref.batch_norm_backward(g, x, None, True)
    np.testing.assert_allclose(tx.grad.numpy(force=True), dx, atol=3e-3 * max(1.0, np.abs(dx).max()))


def test_running_stats_momentum_and_none(device):
    x, _, _, rm, rv = _data((8, 3, 4, 4), seed=6)
    trm, trv = _t(rm, device), _t(rv, device)
    for step in range(3):  # repeated updates compound as torch's do
        F.batch_norm(_t(x, device), trm, trv, training=True, momentum=0.3)
        _, rm, rv = ref.batch_norm(x, rm, rv, None, None, True, 0.3)
    assert_close(trm, rm, n_reduce=128)
    assert_close(trv, rv, n_reduce=128)
    before = (trm.numpy(force=True).copy(), trv.numpy(force=True).copy())
    y = F.batch_norm(_t(x, device), trm, trv, training=True, momentum=None)  # momentum=None: no update
    np.testing.assert_array_equal(trm.numpy(force=True), before[0])
    np.testing.assert_array_equal(trv.numpy(force=True), before[1])
    ey, _, _ = ref.batch_norm(x, None, None, None, None, True)
    assert_close(y, ey, n_reduce=128, scale=4)
    y2 = F.batch_norm(_t(x, device), None, None, training=True)  # no running stats at all
    assert_close(y2, ey, n_reduce=128, scale=4)


def test_cumulative_average_momentum_none(device):
    # nn.BatchNorm with momentum=None passes 1/num_batches_tracked as the kernel's momentum.
    bn = ember.nn.BatchNorm2d(3, momentum=None).to(device)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = _data((4, 3, 5, 7), seed=20 + step)[0]
        bn(_t(x, device))
        _, rm, rv = ref.batch_norm(x, rm, rv, None, None, True, 1.0 / (step + 1))
    assert_close(bn.running_mean, rm, n_reduce=140)
    assert_close(bn.running_var, rv, n_reduce=140)


# Shapes for the CUDA schedules (csrc/cuda/norm.cu; they run on the CPU as well): planes
# (S >= 32) with and without 16-byte packs and with teams smaller than a block, columns
# (S < 32) with several channels per block, odd and prime sizes, and channels split over
# several blocks (both schedules) up to a million values per channel.
CUDA_PATH_SHAPES = [
    (2, 7, 33),        # planes, S odd (no packs), 66 values per channel: a 32-thread team
    (3, 300, 8, 8),    # planes, packs, eight channels per block and a partial last block
    (9, 37, 3),        # columns, 10 channels per block, 7 in the last
    (5, 33, 31),       # columns, one channel of 31 lanes per block
    (20011, 3),        # (N, C) with prime N: columns split over rows
    (3001, 5, 7),      # columns split, S = 7
    (3, 5, 97, 89),    # planes split into chunks that cross rows, no packs
    (4, 2, 500, 502),  # a million values per channel: many splits, packs
]


@pytest.mark.parametrize("shape", CUDA_PATH_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_schedules_forward_backward_eval(shape, dtype, device):
    x, w, b, rm, rv = _data(shape, dtype, seed=13)
    m = x.size // shape[1]
    tx, tw, tb = (_t(a, device, requires_grad=True) for a in (x, w, b))
    trm, trv = _t(rm, device), _t(rv, device)
    y = F.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.3)
    ey, erm, erv = ref.batch_norm(x, rm, rv, w, b, True, 0.3)
    assert_close(y, ey, n_reduce=m, dtype=dtype, scale=4)
    assert_close(trm, erm, n_reduce=m, dtype=dtype)
    assert_close(trv, erv, n_reduce=m, dtype=dtype)
    g = np.random.default_rng(14).standard_normal(shape).astype(dtype)
    y.backward(_t(g, device))
    dx, dw, db = ref.batch_norm_backward(g, x, w, True)
    assert_close(tx.grad, dx, n_reduce=m, dtype=dtype, scale=8)
    assert_close(tw.grad, dw, n_reduce=m, dtype=dtype, scale=4)
    assert_close(tb.grad, db, n_reduce=m, dtype=dtype)
    tx.grad = tw.grad = tb.grad = None
    rm, rv = trm.numpy(force=True), trv.numpy(force=True)
    y = F.batch_norm(tx, trm, trv, tw, tb, training=False)
    ey, _, _ = ref.batch_norm(x, rm, rv, w, b, False)
    assert_close(y, ey, dtype=dtype, scale=4)
    y.backward(_t(g, device))
    dx, dw, db = ref.batch_norm_backward(g, x, w, False, rm, rv)
    assert_close(tx.grad, dx, dtype=dtype, scale=4)
    assert_close(tw.grad, dw, n_reduce=m, dtype=dtype, scale=4)
    assert_close(tb.grad, db, n_reduce=m, dtype=dtype)


def test_unaligned_input(device):
    # x starts one element past an aligned address: the CUDA kernels fall back to scalar loads.
    x, w, b, rm, rv = _data((4, 3, 8, 8), seed=15)
    flat = _t(np.concatenate([[0.0], x.ravel()]).astype(np.float32), device)
    tx = flat[1:].reshape(4, 3, 8, 8)
    y = F.batch_norm(tx, None, None, _t(w, device), _t(b, device), training=True)
    ey, _, _ = ref.batch_norm(x, None, None, w, b, True)
    assert_close(y, ey, n_reduce=256, scale=4)


def test_non_contiguous_input(isa):
    base = np.random.default_rng(7).standard_normal((5, 4, 6, 3)).astype(np.float32)
    tx = _t(base, requires_grad=True)
    xt = tx.permute(0, 3, 2, 1)  # (5, 3, 6, 4), channels = old last dim
    assert not xt.is_contiguous()
    y = F.batch_norm(xt, None, None, training=True)
    xn = base.transpose(0, 3, 2, 1)
    ey, _, _ = ref.batch_norm(xn, None, None, None, None, True)
    assert_close(y, ey, n_reduce=120, scale=4)
    g = np.random.default_rng(8).standard_normal(y.shape)
    y.backward(_t(g.astype(np.float32)))
    dx, _, _ = ref.batch_norm_backward(g, xn, None, True)
    assert_close(tx.grad, dx.transpose(0, 3, 2, 1), n_reduce=120, scale=8)


def test_empty_batch(device):
    rm, rv = ember.zeros(3, device=device), ember.ones(3, device=device)
    x = ember.zeros(0, 3, 2, requires_grad=True, device=device)
    y = F.batch_norm(x, rm, rv, training=True)
    assert y.shape == (0, 3, 2)
    np.testing.assert_array_equal(rm.numpy(force=True), 0)
    np.testing.assert_array_equal(rv.numpy(force=True), 1)
    w = ember.ones(3, requires_grad=True, device=device)
    F.batch_norm(x, rm, rv, w, training=True).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(force=True), 0)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(shape, training):
    x, w, b, rm, rv = _data(shape, dtype=np.float64, seed=9)
    tx, tw, tb = _t(x, requires_grad=True), _t(w, requires_grad=True), _t(b, requires_grad=True)
    trm, trv = _t(rm), _t(rv)
    gradcheck(lambda a, ww, bb: F.batch_norm(a, trm, trv, ww, bb, training=training, momentum=0.0), [tx, tw, tb],
              rtol=1e-5, atol=1e-7)


def test_gradcheck_per_row_block_schedule():
    old = ember.get_num_threads()
    ember.set_num_threads(3)
    try:
        x = _t(np.random.default_rng(10).standard_normal((4, 2, 3)), requires_grad=True)
        w = _t(np.array([0.5, -2.0]), requires_grad=True)
        gradcheck(lambda a, ww: F.batch_norm(a, None, None, ww, None, training=True), [x, w], rtol=1e-5, atol=1e-7)
    finally:
        ember.set_num_threads(old)


def test_errors():
    x = ember.randn(4, 3, 2)
    rm, rv = ember.zeros(3), ember.ones(3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(ember.randn(1, 3), rm, rv, training=True)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(ember.randn(1, 3, 1, 1), None, None, training=True)
    F.batch_norm(ember.randn(1, 3), rm, rv, training=False)  # one value is fine in eval
    with pytest.raises(ValueError, match="required when training=False"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="both be given"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, rm, rv, ember.ones(4), training=True)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        F.batch_norm(x, rm, ember.ones(2), training=True)
    with pytest.raises(TypeError, match="running_mean must have the input's dtype float32"):
        F.batch_norm(x, ember.zeros(3, dtype=ember.float64), rv, training=True)
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        F.batch_norm(ember.zeros(4, 3, dtype=ember.int64), rm, rv)
    with pytest.raises(ValueError, match=r"must be \(N, C\)"):
        F.batch_norm(ember.randn(3), rm, rv)
    with pytest.raises(ValueError, match="eps must be a non-negative number"):
        F.batch_norm(x, rm, rv, eps=-1.0)
    with pytest.raises(TypeError, match="momentum must be a float or None"):
        F.batch_norm(x, rm, rv, training=True, momentum="0.1")


def test_kernel_checks(device):
    C = ember._backend.kernels(device)
    d = lambda a: on_device(a, device)  # noqa: E731
    x = d(np.zeros((4, 3, 2), np.float32))
    out = d(np.zeros((4, 3, 2), np.float32))
    sm, si = d(np.zeros(3, np.float32)), d(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"must be viewed as \(N, C, S\)"):
        C.batch_norm_forward(x.reshape(4, 6), None, None, None, None, out.reshape(4, 6), sm, si, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"save_mean must have shape \(3,\)"):
        C.batch_norm_forward(x, None, None, None, None, out, d(np.zeros(2, np.float32)), si, True, 0.1, 1e-5)
    with pytest.raises(TypeError, match="dtypes differ"):
        C.batch_norm_forward(x, None, None, None, None, out.astype(np.float64), sm, si, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="must be contiguous"):
        C.batch_norm_forward(d(np.zeros((3, 4, 2), np.float32)).transpose(1, 0, 2), None, None, None, None, out, sm,
                             si, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        C.batch_norm_forward(x[:1, :, :1].copy(), None, None, None, None, out[:1, :, :1].copy(), sm, si, True, 0.1,
                             1e-5)
    with pytest.raises(ValueError, match=r"grad_bias must have shape \(3,\)"):
        C.batch_norm_backward(x, x, sm, si, None, True, None, None, d(np.zeros(5, np.float32)))


@pytest.mark.parametrize("shape", [(16, 8, 32, 32), (4096, 24)])
def test_large_enough_to_split_across_threads(shape, threads, device):
    x, w, b, rm, rv = _data(shape, seed=11)
    tx = _t(x, device, requires_grad=True)
    trm, trv = _t(rm, device), _t(rv, device)
    y = F.batch_norm(tx, trm, trv, _t(w, device), _t(b, device), training=True)
    ey, erm, erv = ref.batch_norm(x, rm, rv, w, b, True)
    m = x.size // shape[1]
    assert_close(y, ey, n_reduce=m, scale=4)
    assert_close(trv, erv, n_reduce=m)
    g = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    y.backward(_t(g, device))
    dx, _, _ = ref.batch_norm_backward(g, x, w, True)
    assert_close(tx.grad, dx, n_reduce=m, scale=8)
