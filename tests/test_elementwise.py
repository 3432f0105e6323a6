"""Elementwise kernels against ember.ref: every op, dtype, broadcasting pattern, SIMD
path, strided and in-place case."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ember
from ember import ref
from helpers import assert_close

BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]
SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 127, 1000, 4099, 70001]


def _rand(shape, dtype=np.float32, rng=None):
    rng = rng or np.random.default_rng(0)
    if np.dtype(dtype).kind == "i":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("n", SIZES)
def test_binary_sizes_every_isa(op, n, isa, device):
    a, b = _rand(n), _rand(n, rng=np.random.default_rng(1))
    if op == "div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    out = getattr(ember, op)(ember.tensor(a, device=device), ember.tensor(b, device=device))
    assert out.dtype == ember.float32 and out.shape == (n,)
    assert_close(out, getattr(ref, op)(a, b))


@pytest.mark.parametrize("op", COMPARE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_compare(op, dtype, isa):
    a, b = _rand(257, dtype), _rand(257, dtype, np.random.default_rng(2))
    b[::3] = a[::3]  # some ties
    out = getattr(ember, op)(ember.tensor(a), ember.tensor(b))
    assert out.dtype == ember.bool_
    np.testing.assert_array_equal(out.numpy(), getattr(ref, op)(a, b))


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "maximum", "minimum"])
def test_binary_other_dtypes(op, dtype):
    a, b = _rand((13, 7), dtype), _rand((13, 7), dtype, np.random.default_rng(3))
    out = getattr(ember, op)(ember.tensor(a), ember.tensor(b))
    assert out.dtype == ember.as_dtype(dtype)
    np.testing.assert_allclose(out.numpy(), getattr(ref, op)(a, b), rtol=1e-15)


@pytest.mark.parametrize("op", ["neg", "abs", "exp", "log", "sqrt"])
@pytest.mark.parametrize("n", [0, 1, 5, 16, 33, 1023, 65537])
def test_unary_every_isa(op, n, isa):
    x = _rand(n)
    if op in ("log", "sqrt"):
        x = np.abs(x) + 1e-3
    out = getattr(ember, op)(ember.tensor(x))
    assert_close(out, getattr(ref, op)(x))


def test_exp_log_accuracy_over_full_range(isa):
    # every float32 exponent, denormals and the overflow/underflow edges: within 2 ulp
    x = np.concatenate([np.linspace(-103.9, 88.7, 200001, dtype=np.float32),
                        np.array([0.0, -0.0, 1e-45, 88.72, -87.5, -100.0], np.float32)])
    e = ember.exp(ember.tensor(x)).numpy()
    want = np.exp(x.astype(np.float64))
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(e - want) / np.maximum(ulp, np.finfo(np.float32).smallest_subnormal)) <= 2
    pos = np.abs(np.random.default_rng(0).standard_normal(100000).astype(np.float32)) * \
        np.float32(10.0) ** np.random.default_rng(1).integers(-40, 38, 100000).astype(np.float32)
    pos = pos[pos > 0]
    lg = ember.log(ember.tensor(pos)).numpy()
    want = np.log(pos.astype(np.float64))
    assert np.max(np.abs(lg - want) / np.spacing(np.abs(want).astype(np.float32))) <= 2


def test_special_values(isa):
    x = ember.tensor([np.inf, -np.inf, np.nan, 0.0, -0.0, 100.0, -200.0, 89.0])
    with np.errstate(over="ignore"):
        want = np.exp(x.numpy().astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(ember.exp(x).numpy(), want)
    with np.errstate(all="ignore"):
        want = np.log(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 100.0, -200.0, 89.0]))
    np.testing.assert_allclose(ember.log(x).numpy(), want, rtol=1e-6)
    a = ember.tensor([1.0, np.nan, 3.0])
    b = ember.tensor([np.nan, 2.0, 1.0])
    assert np.isnan(ember.maximum(a, b).numpy()[:2]).all() and ember.maximum(a, b).numpy()[2] == 3.0
    assert np.isnan(ember.minimum(a, b).numpy()[:2]).all() and ember.minimum(a, b).numpy()[2] == 1.0


@pytest.mark.parametrize("sa,sb", [
    ((5, 1), (1, 7)), ((1,), (9, 9)), ((3, 1, 4), (2, 1)), ((), (4, 5)), ((6, 1, 1), (6, 5, 1)),
    ((2, 3, 4, 5), (5,)), ((0, 3), (1, 3)), ((1, 1), (1, 1)),
])
def test_broadcasting(sa, sb, isa):
    a, b = _rand(sa), _rand(sb, rng=np.random.default_rng(5))
    for op in ("add", "mul", "sub"):
        assert_close(getattr(ember, op)(ember.tensor(a), ember.tensor(b)), getattr(ref, op)(a, b))
        assert_close(getattr(ember, op)(ember.tensor(b), ember.tensor(a)), getattr(ref, op)(b, a))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_broadcasting_hypothesis(data):
    nd = data.draw(st.integers(0, 4))
    base = data.draw(st.lists(st.integers(0, 6), min_size=nd, max_size=nd))
    sa = [s if data.draw(st.booleans()) else 1 for s in base]
    sb = [s if data.draw(st.booleans()) else 1 for s in base][data.draw(st.integers(0, nd)):]
    a, b = _rand(tuple(sa)), _rand(tuple(sb), rng=np.random.default_rng(7))
    assert_close(ember.tensor(a) * ember.tensor(b), ref.mul(a, b))
    assert_close(ember.tensor(a) - ember.tensor(b), ref.sub(a, b))


def test_scalar_operands_and_promotion():
    x = ember.tensor([1.0, 2.0, 4.0])
    assert_close(x + 1, [2, 3, 5])
    assert_close(1 - x, [0, -1, -3])
    assert_close(2 / x, [2, 1, 0.5])
    assert_close(x ** 2, [1, 4, 16])
    assert_close(2 ** x, [2, 4, 16])
    assert (x * 2.5).dtype == ember.float32
    i = ember.tensor([1, 2, 3])
    assert (i + 1).dtype == ember.int64
    assert (i + 1.5).dtype == ember.float32
    assert (i / 2).dtype == ember.float32
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1, 1.5])
    assert (i + x).dtype == ember.float32
    assert (x + ember.tensor([1.0], dtype=ember.float64)).dtype == ember.float64
    assert (i ** 2).dtype == ember.int64 and (i ** 2).tolist() == [1, 4, 9]
    b = ember.tensor([True, False])
    assert (b + b).dtype == ember.int64


def test_non_contiguous_inputs(isa):
    base = _rand((8, 10))
    a = ember.tensor(base)
    t = a.T            # transposed view
    s = a[::2, 1::3]   # strided slice
    np.testing.assert_array_equal((t + 1).numpy(), base.T + 1)
    assert_close(ember.exp(s), ref.exp(base[::2, 1::3]))
    assert_close(t * t, ref.mul(base.T, base.T))
    r = ember.tensor(base[:, ::-1].copy())[:, ::-1]  # negative strides
    assert_close(r + a, ref.add(base, base))


def test_where():
    c = ember.tensor([True, False, True])
    a = ember.tensor([1.0, 2.0, 3.0])
    assert ember.where(c, a, 0.0).tolist() == [1.0, 0.0, 3.0]
    assert ember.where(c, a, ember.tensor([[9.0], [8.0]])).tolist() == [[1, 9, 3], [1, 8, 3]]
    with pytest.raises(TypeError, match="bool"):
        ember.where(a, a, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_where_every_path(dtype, isa, device):
    # Contiguous (the vectorized select: sizes around the vector and prefetch-chunk
    # lengths), broadcast and transposed operands, against np.where; bool values too.
    rng = np.random.default_rng(3)

    def values(shape):
        v = rng.standard_normal(shape) * 50
        return (v > 0) if dtype is np.bool_ else v.astype(dtype)

    for n in (0, 1, 15, 17, 255, 257, 100_003):
        c, a, b = rng.random(n) > 0.5, values(n), values(n)
        out = ember.where(ember.tensor(c, device=device), ember.tensor(a, device=device), ember.tensor(b, device=device))
        assert out.dtype == ember.tensor(a).dtype
        np.testing.assert_array_equal(out.numpy(force=True), np.where(c, a, b))
    c, a, b = rng.random((37, 1)) > 0.5, values((1, 53)), values((53, 37))
    out = ember.where(ember.tensor(c, device=device), ember.tensor(a, device=device), ember.tensor(b, device=device).T)
    np.testing.assert_array_equal(out.numpy(force=True), np.where(c, a, b.T))


def test_pow():
    x = ember.tensor([0.5, 1.0, 2.0, 3.0])
    for p in (2, 0.5, -1, 3, 1.7, 0):
        assert_close(x ** p, ref.pow_scalar(x.numpy(), p))
    assert_close(x ** x, ref.pow(x.numpy(), x.numpy()))


def test_inplace():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
    alias = x.view(4)
    x += 1
    x *= ember.tensor([2.0, 1.0])
    x -= 1
    x /= 2
    np.testing.assert_allclose(x.numpy(), [[1.5, 1.0], [3.5, 2.0]])
    assert alias.tolist() == [1.5, 1.0, 3.5, 2.0]  # in place: the view sees it
    x.add_(ember.ones(2), alpha=2).sub_(1).mul_(2).div_(4)
    np.testing.assert_allclose(x.numpy(), [[1.25, 1.0], [2.25, 1.5]])
    i = ember.tensor([1, 2])
    with pytest.raises(TypeError, match="can't be cast"):
        i += 1.5
    with pytest.raises(ValueError, match="grow"):
        x += ember.ones(2, 2, 2)
    w = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w += 1
    with ember.no_grad():
        w += 1
    assert w.tolist() == [2.0, 2.0]


def test_errors():
    a = ember.ones(2, 3)
    with pytest.raises(ValueError, match="broadcast"):
        a + ember.ones(4)
    with pytest.raises(TypeError, match="unsupported operand"):
        a + "x"
    with pytest.raises(TypeError, match="bool"):
        -ember.tensor([True])
    # the kernel checks its arguments itself, too
    with pytest.raises(ValueError, match="shapes differ"):
        ember._C.add(np.ones(3, np.float32), np.ones(4, np.float32), np.empty(3, np.float32))
    with pytest.raises(TypeError, match="dtypes differ"):
        ember._C.add(np.ones(3, np.float32), np.ones(3), np.empty(3, np.float32))
    with pytest.raises(TypeError, match="unsupported dtype"):
        ember._C.add(np.ones(3, np.int32), np.ones(3, np.int32), np.empty(3, np.int32))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty(3, np.float32)
        ro.flags.writeable = False
        ember._C.add(np.ones(3, np.float32), np.ones(3, np.float32), ro)
    with pytest.raises(TypeError, match="NumPy array"):
        ember._C.exp([1.0], np.empty(1, np.float32))
