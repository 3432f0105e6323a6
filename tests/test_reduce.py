"""Reductions against ember.ref: any axis or axes, keepdim, NumPy and PyTorch keyword
spellings, long reductions (float32 accuracy), NaN, empty inputs, every SIMD path."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import ember
from ember import ref
from helpers import assert_close, on_device

SHAPES = [(1,), (7,), (4099,), (3, 5), (17, 1), (1, 33), (4, 6, 5), (2, 3, 4, 5), (2, 1, 70, 3)]


def _axes_for(ndim):
    out = [None] + list(range(ndim)) + [-1]
    if ndim >= 2:
        out += [(0, ndim - 1), tuple(range(ndim))]
    if ndim >= 3:
        out += [(0, 2), (1, 2)]
    if ndim >= 4:
        out += [(0, 2), (1, 3), (0, 1, 3)]
    return out


def _count(shape, axes):
    if axes is None:
        return int(np.prod(shape))
    axes = (axes,) if isinstance(axes, int) else axes
    return int(np.prod([shape[a] for a in axes]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_max_min(shape, keepdim, isa, device):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t = ember.tensor(x, device=device)
    for axes in _axes_for(len(shape)):
        n = _count(shape, axes)
        assert_close(t.sum(dim=axes, keepdim=keepdim), ref.sum(x, axes, keepdim), n_reduce=n)
        assert_close(t.mean(axis=axes, keepdims=keepdim), ref.mean(x, axes, keepdim), n_reduce=n)
        np.testing.assert_array_equal(t.amax(axes, keepdim).numpy(force=True), ref.amax(x, axes, keepdim))
        np.testing.assert_array_equal(t.amin(axes, keepdim).numpy(force=True), ref.amin(x, axes, keepdim))


@pytest.mark.parametrize("shape", SHAPES)
def test_argmax_argmin(shape, isa, device):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    t = ember.tensor(x, device=device)
    assert t.argmax().item() == ref.argmax(x)
    assert t.argmin().item() == ref.argmin(x)
    for d in range(len(shape)):
        np.testing.assert_array_equal(t.argmax(d).numpy(force=True), ref.argmax(x, d))
        np.testing.assert_array_equal(t.argmin(dim=d, keepdim=True).numpy(force=True),
                                      np.expand_dims(ref.argmin(x, d), d))


def test_argmax_ties_and_nan_and_long_rows(isa, device):
    x = np.zeros(10000, np.float32)
    x[[17, 5000, 9999]] = 3.0  # the first of equal maxima wins
    assert ember.tensor(x, device=device).argmax().item() == 17
    x[7000] = np.nan  # NaN wins, as NumPy and torch
    assert ember.tensor(x, device=device).argmax().item() == 7000
    assert ember.tensor(x, device=device).argmin().item() == 7000
    y = np.random.default_rng(2).standard_normal((3, 100003)).astype(np.float32)
    np.testing.assert_array_equal(ember.tensor(y, device=device).argmax(1).numpy(force=True), y.argmax(1))
    np.testing.assert_array_equal(ember.tensor(y, device=device).argmax(0).numpy(force=True), y.argmax(0))


def test_max_min_propagate_nan(isa, device):
    x = np.arange(5000, dtype=np.float32)
    x[4321] = np.nan
    t = ember.tensor(x, device=device)
    assert np.isnan(t.max().item()) and np.isnan(t.min().item())
    m = ember.tensor(x.reshape(50, 100), device=device).amax(1).numpy(force=True)
    assert np.isnan(m[43]) and not np.isnan(np.delete(m, 43)).any()


def test_long_float32_sum_is_accurate(device):
    # 16M values of 0.1: naive float32 accumulation is off by ~1%; ours stays within ~1e-6.
    n = 1 << 24
    x = ember.full((n,), 0.1, device=device)
    s = x.sum().item()
    assert abs(s - n * np.float32(0.1)) / (n * 0.1) < 1e-6
    cols = ember.full((4096, 64), 0.1, device=device).sum(0).numpy(force=True)
    assert np.allclose(cols, 4096 * np.float64(np.float32(0.1)), rtol=1e-6)


def test_int_and_bool(device):
    i = ember.tensor([[1, 2, 3], [4, 5, 6]], device=device)
    assert i.sum().item() == 21 and i.sum().dtype == ember.int64
    assert i.sum(0).tolist() == [5, 7, 9]
    assert i.max().item() == 6 and i.amin(1).tolist() == [1, 4]
    b = ember.tensor([True, False, True], device=device)
    assert b.sum().item() == 2 and b.sum().dtype == ember.int64 and b.sum().device == device
    with pytest.raises(TypeError, match="floating point"):
        i.mean()


def test_torch_style_max_returns_values_and_indices(device):
    t = ember.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], device=device)
    values, indices = t.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert values.device == device and indices.device == device and indices.dtype == ember.int64
    r = t.min(dim=0, keepdim=True)
    assert r.values.tolist() == [[1.0, 0.0, 2.0]] and r.indices.tolist() == [[0, 1, 0]]
    assert t.max(axis=1).tolist() == [5.0, 7.0]  # NumPy spelling: values only
    assert t.max().item() == 7.0
    assert ember.max(t, (0, 1)).item() == 7.0


def test_empty(device):
    e = ember.zeros(0, 3, device=device)
    assert e.sum().item() == 0.0
    assert e.sum(0).tolist() == [0.0, 0.0, 0.0]
    assert e.sum(1).shape == (0,)
    assert np.isnan(e.mean().item())
    assert e.amax(1).shape == (0,)
    with pytest.raises(ValueError, match="zero-size"):
        e.max()
    with pytest.raises(ValueError, match="zero-size"):
        e.amax(0)
    with pytest.raises(ValueError, match="empty"):
        e.argmax()


def test_bad_axes(device):
    t = ember.ones(2, 3, device=device)
    with pytest.raises(IndexError, match="out of range"):
        t.sum(2)
    with pytest.raises(IndexError, match="out of range"):
        t.mean(dim=-3)
    with pytest.raises(ValueError, match="more than once"):
        t.sum((1, -1))
    with pytest.raises(TypeError, match="dim must be"):
        t.sum("x")
    with pytest.raises(TypeError, match="not both"):
        t.sum(dim=0, axis=1)
    # the kernel checks its axes too (the binding boundary, not only the Python layer)
    kernels = ember._backend.kernels(device)
    with pytest.raises(IndexError, match="out of range"):
        kernels.sum(on_device(np.ones((2, 3), np.float32), device), [5],
                    on_device(np.empty((2, 3), np.float32), device))


def test_non_contiguous(isa, device):
    x = np.random.default_rng(3).standard_normal((6, 8, 5)).astype(np.float32)
    t = ember.tensor(x, device=device).permute(2, 0, 1)[:, ::2]
    v = x.transpose(2, 0, 1)[:, ::2]
    assert not t.is_contiguous()
    for axes in (None, 0, 1, 2, (0, 2)):
        assert_close(t.sum(axes), ref.sum(v, axes), n_reduce=v.size)
        np.testing.assert_array_equal(t.amax(axes).numpy(force=True), ref.amax(v, axes))
    np.testing.assert_array_equal(t.argmax(1).numpy(force=True), v.argmax(1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data())
def test_hypothesis_axes(shape, data, device):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    keep = data.draw(st.booleans())
    assert_close(ember.tensor(x, device=device).sum(axes, keep), ref.sum(x, axes or None, keep) if axes else x,
                 n_reduce=x.size)


def test_argmax_split_across_threads(isa, device):
    # long enough that one row is split across threads (CPU) or blocks (CUDA); the ranges
    # must combine in order
    def put(a):
        return ember.tensor(a, device=device)
    x = np.zeros(200000, np.float32)
    x[[120000, 180000]] = 5.0
    assert put(x).argmax().item() == 120000
    x[150000] = 5.0
    x[30] = 5.0
    assert put(x).argmax().item() == 30
    x[190000] = np.nan
    assert put(x).argmax().item() == 190000
    x[7] = np.nan
    assert put(x).argmin().item() == 7
    y = -np.abs(np.random.default_rng(5).standard_normal(200001)).astype(np.float32)
    assert put(y).argmin().item() == y.argmin() and put(y).argmax().item() == y.argmax()


def test_reduction_results_stay_on_device(device):
    x = ember.randn(4, 5, device=device)
    for out in (x.sum(), x.mean(1), x.amax(0), x.amin(), x.argmax(1), x.argmin(), x.max(1).indices):
        assert out.device == device
    np.testing.assert_allclose(x.sum(1).numpy(force=True), x.numpy(force=True).astype(np.float64).sum(1),
                               rtol=1e-5, atol=1e-6)


def test_many_short_rows(device):
    # More kept rows than a CUDA grid's y dimension (65535) holds, each reduced along its
    # short innermost run: the blocks loop over rows.
    x = np.random.default_rng(14).standard_normal((70001, 10)).astype(np.float32)
    t = ember.tensor(x, device=device)
    assert_close(t.sum(1).numpy(force=True), ref.sum(x, 1), n_reduce=10)
    assert_close(t.mean(-1).numpy(force=True), x.astype(np.float64).mean(-1), n_reduce=10)
    np.testing.assert_array_equal(t.amax(1).numpy(force=True), x.max(1))
