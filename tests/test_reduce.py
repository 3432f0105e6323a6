"""Reductions against ember.ref: any axis or axes, keepdim, NumPy and PyTorch keyword
spellings, long reductions (float32 accuracy), NaN, empty inputs, every SIMD path."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ember
from ember import ref
from helpers import assert_close

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
def test_sum_mean_max_min(shape, keepdim, isa):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t = ember.tensor(x)
    for axes in _axes_for(len(shape)):
        n = _count(shape, axes)
        assert_close(t.sum(dim=axes, keepdim=keepdim), ref.sum(x, axes, keepdim), n_reduce=n)
        assert_close(t.mean(axis=axes, keepdims=keepdim), ref.mean(x, axes, keepdim), n_reduce=n)
        np.testing.assert_array_equal(t.amax(axes, keepdim).numpy(), ref.amax(x, axes, keepdim))
        np.testing.assert_array_equal(t.amin(axes, keepdim).numpy(), ref.amin(x, axes, keepdim))


@pytest.mark.parametrize("shape", SHAPES)
def test_argmax_argmin(shape, isa):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    t = ember.tensor(x)
    assert t.argmax().item() == ref.argmax(x)
    assert t.argmin().item() == ref.argmin(x)
    for d in range(len(shape)):
        np.testing.assert_array_equal(t.argmax(d).numpy(), ref.argmax(x, d))
        np.testing.assert_array_equal(t.argmin(dim=d, keepdim=True).numpy(), np.expand_dims(ref.argmin(x, d), d))


def test_argmax_ties_and_nan_and_long_rows(isa):
    x = np.zeros(10000, np.float32)
    x[[17, 5000, 9999]] = 3.0  # the first of equal maxima wins
    assert ember.tensor(x).argmax().item() == 17
    x[7000] = np.nan  # NaN wins, as NumPy and torch
    assert ember.tensor(x).argmax().item() == 7000
    assert ember.tensor(x).argmin().item() == 7000
    y = np.random.default_rng(2).standard_normal((3, 100003)).astype(np.float32)
    np.testing.assert_array_equal(ember.tensor(y).argmax(1).numpy(), y.argmax(1))
    np.testing.assert_array_equal(ember.tensor(y).argmax(0).numpy(), y.argmax(0))


def test_max_min_propagate_nan(isa):
    x = np.arange(5000, dtype=np.float32)
    x[4321] = np.nan
    assert np.isnan(ember.tensor(x).max().item()) and np.isnan(ember.tensor(x).min().item())
    m = ember.tensor(x.reshape(50, 100)).amax(1).numpy()
    assert np.isnan(m[43]) and not np.isnan(np.delete(m, 43)).any()


def test_long_float32_sum_is_accurate():
    # 16M values of 0.1: naive float32 accumulation is off by ~1%; ours stays within ~1e-6.
    n = 1 << 24
    x = ember.full((n,), 0.1)
    s = x.sum().item()
    assert abs(s - n * np.float32(0.1)) / (n * 0.1) < 1e-6
    cols = ember.full((4096, 64), 0.1).sum(0).numpy()
    assert np.allclose(cols, 4096 * np.float64(np.float32(0.1)), rtol=1e-6)


def test_int_and_bool():
    i = ember.tensor([[1, 2, 3], [4, 5, 6]])
    assert i.sum().item() == 21 and i.sum().dtype == ember.int64
    assert i.sum(0).tolist() == [5, 7, 9]
    assert i.max().item() == 6 and i.amin(1).tolist() == [1, 4]
    b = ember.tensor([True, False, True])
    assert b.sum().item() == 2 and b.sum().dtype == ember.int64
    with pytest.raises(TypeError, match="floating point"):
        i.mean()


def test_torch_style_max_returns_values_and_indices():
    t = ember.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = t.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    r = t.min(dim=0, keepdim=True)
    assert r.values.tolist() == [[1.0, 0.0, 2.0]] and r.indices.tolist() == [[0, 1, 0]]
    assert t.max(axis=1).tolist() == [5.0, 7.0]  # NumPy spelling: values only
    assert t.max().item() == 7.0
    assert ember.max(t, (0, 1)).item() == 7.0


def test_empty():
    e = ember.zeros(0, 3)
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


def test_bad_axes():
    t = ember.ones(2, 3)
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
    with pytest.raises(IndexError, match="out of range"):
        ember._C.sum(np.ones((2, 3), np.float32), [5], np.empty((2, 3), np.float32))


def test_non_contiguous(isa):
    x = np.random.default_rng(3).standard_normal((6, 8, 5)).astype(np.float32)
    t = ember.tensor(x).permute(2, 0, 1)[:, ::2]
    v = x.transpose(2, 0, 1)[:, ::2]
    for axes in (None, 0, 1, 2, (0, 2)):
        assert_close(t.sum(axes), ref.sum(v, axes), n_reduce=v.size)
        np.testing.assert_array_equal(t.amax(axes).numpy(), ref.amax(v, axes))
    np.testing.assert_array_equal(t.argmax(1).numpy(), v.argmax(1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.data())
def test_hypothesis_axes(shape, data):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    keep = data.draw(st.booleans())
    assert_close(ember.tensor(x).sum(axes, keep), ref.sum(x, axes or None, keep) if axes else x,
                 n_reduce=x.size)


def test_argmax_split_across_threads(isa):
    # long enough that one row is split across threads; the ranges must combine in order
    x = np.zeros(200000, np.float32)
    x[[120000, 180000]] = 5.0
    assert ember.tensor(x).argmax().item() == 120000
    x[150000] = 5.0
    x[30] = 5.0
    assert ember.tensor(x).argmax().item() == 30
    x[190000] = np.nan
    assert ember.tensor(x).argmax().item() == 190000
    x[7] = np.nan
    assert ember.tensor(x).argmin().item() == 7
    y = -np.abs(np.random.default_rng(5).standard_normal(200001)).astype(np.float32)
    assert ember.tensor(y).argmin().item() == y.argmin() and ember.tensor(y).argmax().item() == y.argmax()
