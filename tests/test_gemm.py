"""GEMM: ember._C.matmul (the kernel, every SIMD path, all transpose flags, alpha/beta),
ember.matmul / @ (batching, broadcasting, 1-D operands, autograd) and
nn.functional.linear, against the float64 NumPy reference."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

import ember
import ember.nn.functional as NF
from ember import ref
from helpers import assert_close, gradcheck

C = ember._C
ODD = [1, 2, 3, 7, 13, 17, 31, 33, 63, 65, 127, 129, 255, 257]
# (M, N, K) triples: every odd size appears in each position at least once, plus
# sizes that are not multiples of any tile (AVX-512 14x32, AVX2 6x16, scalar 4x8).
TRIPLES = [(m, n, k) for m, n, k in zip(ODD, ODD[5:] + ODD[:5], ODD[9:] + ODD[:9])] + [
    (1, 1, 1), (1, 257, 129), (257, 1, 65), (129, 65, 1), (2, 3, 255), (13, 17, 31), (15, 33, 7), (29, 47, 100)]


def _operands(rng, M, N, K, ta, tb, dtype):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return a, b


def _on(device):
    """The kernel module of device and a function putting NumPy arrays there (kernel tests
    call the binding directly)."""
    xp = ember._backend.xp(device)
    return ember._backend.kernels(device), xp.asarray


def _host(arr):
    return arr.get() if hasattr(arr, "get") else arr


def _kernel(a, b, ta=False, tb=False, alpha=1.0, beta=0.0, out=None, device="cpu"):
    M = a.shape[-1] if ta else a.shape[-2]
    N = b.shape[-2] if tb else b.shape[-1]
    if out is None:
        out = np.full(a.shape[:-2] + (M, N), np.nan, a.dtype)  # beta = 0 must ignore it
    kernels, put = _on(device)
    out = put(out)
    kernels.matmul(put(a), put(b), out, ta, tb, alpha, beta)
    return _host(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_odd_sizes_all_transposes(isa, dtype, device):
    rng = np.random.default_rng(0)
    for (M, N, K), (ta, tb) in itertools.product(TRIPLES, itertools.product([False, True], repeat=2)):
        a, b = _operands(rng, M, N, K, ta, tb, dtype)
        got = _kernel(a, b, ta, tb, device=device)
        assert_close(got, ref.matmul(a, b, ta, tb), n_reduce=K, dtype=dtype)


@pytest.mark.parametrize("shape", [
    (20, 1000, 400),   # few rows: B read in place, an edge panel, two KC blocks
    (4100, 160, 30),   # more rows than one packed A block (MC3)
    (300, 1600, 800),  # several B blocks (NCB) and KC blocks, columns split across threads
    (5000, 32, 9),     # im2col-like: tall, narrow, tiny K; rows split across threads
    (64, 130, 3136),   # linear layer forward shape with a partial panel
    (600, 900, 500),   # rows split across threads, packed A, a short last KC block
])
@pytest.mark.parametrize("trans", [(False, False), (True, True)])
def test_kernel_blocking_edges(shape, trans, device):
    # Sizes that cross every cache-blocking boundary, on the best path with 2 threads
    # (on CUDA: partial tiles in every direction, K not a multiple of the tile).
    M, N, K = shape
    ta, tb = trans
    rng = np.random.default_rng(1)
    a, b = _operands(rng, M, N, K, ta, tb, np.float32)
    prev = ember.get_num_threads()
    ember.set_num_threads(2)
    try:
        got = _kernel(a, b, ta, tb, device=device)
        got1 = _kernel(a, b, ta, tb, device=device)
    finally:
        ember.set_num_threads(prev)
    assert_close(got, ref.matmul(a, b, ta, tb), n_reduce=K)
    np.testing.assert_array_equal(got, got1)  # deterministic


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_alpha_beta(isa, dtype, device):
    rng = np.random.default_rng(2)
    for (M, N, K), (ta, tb) in itertools.product([(13, 17, 31), (65, 129, 400), (3, 40, 2)],
                                                 [(False, False), (True, False), (False, True)]):
        a, b = _operands(rng, M, N, K, ta, tb, dtype)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        for alpha, beta in [(1.0, 1.0), (0.5, -2.0), (-1.5, 0.0), (2.0, 0.25)]:
            got = _kernel(a, b, ta, tb, alpha, beta, out=c0.copy(), device=device)
            want = alpha * ref.matmul(a, b, ta, tb) + beta * c0.astype(np.float64)
            assert_close(got, want, n_reduce=K, dtype=dtype)


def test_kernel_beta_zero_ignores_nan_and_alpha_zero(isa, device):
    rng = np.random.default_rng(3)
    a, b = _operands(rng, 30, 40, 50, False, False, np.float32)
    assert np.isfinite(_kernel(a, b, device=device)).all()  # out starts as NaN
    # alpha = 0: C = beta * C, A and B unread (inf in A must not leak NaN)
    a[0, 0] = np.inf
    c0 = rng.standard_normal((30, 40)).astype(np.float32)
    np.testing.assert_array_equal(_kernel(a, b, alpha=0.0, beta=2.0, out=c0.copy(), device=device), 2 * c0)
    np.testing.assert_array_equal(_kernel(a, b, alpha=0.0, beta=0.0, device=device), 0)


def test_kernel_empty_dims(isa, device):
    # K = 0: out = beta * out (zeros for beta = 0, whatever out held); M or N = 0: nothing.
    a, b = np.zeros((5, 0), np.float32), np.zeros((0, 6), np.float32)
    np.testing.assert_array_equal(_kernel(a, b, device=device), 0)
    np.testing.assert_array_equal(_kernel(a, b, beta=3.0, out=np.ones((5, 6), np.float32), device=device), 3)
    for M, N in [(0, 6), (5, 0), (0, 0)]:
        assert _kernel(np.ones((M, 4), np.float32), np.ones((4, N), np.float32), device=device).shape == (M, N)
    assert _kernel(np.ones((0, 5, 4), np.float32), np.ones((0, 4, 6), np.float32), device=device).shape == (0, 5, 6)


@pytest.mark.parametrize("a_shape,b_shape,a_to,b_to", [
    ((2, 3), (1, 1), None, (3, 1)),    # a broadcast column: row stride 0, kept (was read as 1)
    ((1, 3), (3, 4), (5, 3), None),    # a broadcast row of a: every row the same
    ((4, 1), (1, 5), (4, 7), (7, 5)),  # both expanded
    ((1, 1), (1, 1), (6, 3), (3, 2)),  # both all one value
])
def test_matmul_broadcast_operands(a_shape, b_shape, a_to, b_to, isa, device):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(a_shape).astype(np.float32), rng.standard_normal(b_shape).astype(np.float32)
    ta, tb = ember.tensor(a, device=device), ember.tensor(b, device=device)
    if a_to:
        ta, a = ta.expand(a_to), np.broadcast_to(a, a_to)
    if b_to:
        tb, b = tb.expand(b_to), np.broadcast_to(b, b_to)
    assert_close((ta @ tb).numpy(force=True), ref.matmul(a, b), n_reduce=a.shape[1])


def test_kernel_strided_rows_and_batch_broadcast(isa, device):
    kernels, put = _on(device)
    xp = ember._backend.xp(device)
    rng = np.random.default_rng(4)
    big_host = rng.standard_normal((100, 90)).astype(np.float32)
    big = put(big_host)
    a = big[3:30, 5:50]       # row stride 90, last dim contiguous (unaligned rows on CUDA)
    b = big[::2, 10:43][:45]  # row stride 180
    out_big = put(np.full((40, 80), np.nan, np.float32))
    kernels.matmul(a, b, out_big[1:28, 2:35], False, False, 1.0, 0.0)
    out_big = _host(out_big)
    assert_close(out_big[1:28, 2:35], ref.matmul(big_host[3:30, 5:50], big_host[::2, 10:43][:45]), n_reduce=45)
    assert np.isnan(out_big[0]).all() and np.isnan(out_big[1:28, 35:]).all()  # nothing outside out written
    # batch stride 0 broadcasts b over a batch of 5 a's (small: matrices run in parallel)
    a3 = rng.standard_normal((5, 7, 9)).astype(np.float32)
    b1 = rng.standard_normal((1, 9, 11)).astype(np.float32)
    out = put(np.empty((5, 7, 11), np.float32))
    kernels.matmul(put(a3), xp.broadcast_to(put(b1), (5, 9, 11)), out, False, False, 1.0, 0.0)
    assert_close(_host(out), ref.matmul(a3, np.broadcast_to(b1, (5, 9, 11))), n_reduce=9)


def test_kernel_errors(device):
    kernels, put = _on(device)

    def mm(a, b, out):
        kernels.matmul(put(a), put(b), put(out))

    f, d = np.ones((3, 4), np.float32), np.ones((4, 5), np.float64)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        mm(f, np.ones((5, 5), np.float32), np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="out shape"):
        mm(f, np.ones((4, 5), np.float32), np.empty((3, 6), np.float32))
    with pytest.raises(TypeError, match="dtypes differ"):
        mm(f, d, np.empty((3, 5), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        mm(np.ones((3, 4), np.int64), np.ones((4, 5), np.int64), np.empty((3, 5), np.int64))
    with pytest.raises(ValueError, match="2-D or all 3-D"):
        mm(np.ones(4, np.float32), np.ones(4, np.float32), np.empty((), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        kernels.matmul(put(np.ones((4, 3), np.float32)).T, put(np.ones((4, 5), np.float32)),
                       put(np.empty((3, 5), np.float32)))
    with pytest.raises(ValueError, match="batch sizes differ"):
        mm(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32), np.empty((2, 3, 5), np.float32))
    if device == "cpu":  # NumPy marks broadcast views read-only; CuPy has no such flag
        with pytest.raises(ValueError, match="read-only"):
            C.matmul(f, np.ones((4, 5), np.float32), np.broadcast_to(np.empty((1, 5), np.float32), (3, 5)))


# ---------------------------------------------------------------- ember.matmul / @


@pytest.mark.parametrize("sa,sb", [
    ((7, 13), (13, 5)),
    ((4, 7, 13), (4, 13, 5)),        # batched
    ((4, 1, 7, 13), (3, 13, 5)),     # broadcast batch dims
    ((7, 13), (2, 13, 5)),           # 2-D a shared by a batch of b
    ((13,), (13, 5)),                # 1-D operands
    ((2, 7, 13), (13,)),
    ((13,), (13,)),
    ((0, 13), (13, 5)),
    ((3, 0), (0, 4)),
])
@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
def test_matmul_api(sa, sb, dtype, device):
    rng = np.random.default_rng(5)
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    ta, tb = ember.tensor(a, dtype=dtype, device=device), ember.tensor(b, dtype=dtype, device=device)
    got = ta @ tb
    assert got.device == device
    want = ref.matmul(a.astype(dtype.np), b.astype(dtype.np))
    assert got.shape == want.shape and got.dtype == dtype
    assert_close(got, want, n_reduce=sa[-1], dtype=dtype.np)


def test_matmul_noncontiguous_and_transposed_views(isa, device):
    rng = np.random.default_rng(6)
    an = rng.standard_normal((40, 50)).astype(np.float32)
    bn = rng.standard_normal((60, 50)).astype(np.float32)
    x3 = rng.standard_normal((3, 50, 40)).astype(np.float32)
    a, b, t3 = (ember.tensor(v, device=device) for v in (an, bn, x3))
    cases = [
        (a @ b.T, an @ bn.T.astype(np.float64), 50),            # column-major view: trans flag, no copy
        (a.T @ a, an.T.astype(np.float64) @ an, 40),
        (a[::2, 1:40] @ b[::3, 1:40].T, ref.matmul(an[::2, 1:40], bn[::3, 1:40].T), 39),  # strided rows
        (a[:, ::2] @ b[::2, ::2].T, ref.matmul(an[:, ::2], bn[::2, ::2].T), 25),        # no contiguous dim
        (t3.permute(0, 2, 1) @ b.T, ref.matmul(x3.transpose(0, 2, 1), bn.T), 50),        # batched, permuted
    ]
    for got, want, k in cases:
        assert got.shape == want.shape
        assert_close(got, want, n_reduce=k)


def test_matmul_errors(device):
    a = ember.ones((3, 4), device=device)
    if device != "cpu":
        with pytest.raises(RuntimeError, match="same device, got cpu and cuda"):
            a @ ember.ones((4, 2))
    with pytest.raises(ValueError, match="cannot be multiplied"):
        a @ ember.ones((5, 2))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        ember.ones((2, 3, 4)) @ ember.ones((3, 4, 5))
    with pytest.raises(TypeError, match="float32 or float64"):
        ember.ones((3, 4), dtype=ember.int64) @ ember.ones((4, 2), dtype=ember.int64)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        ember.matmul(ember.zeros(()), a)
    with pytest.raises(TypeError, match="must be Tensors"):
        ember.matmul(a, np.ones((4, 2)))


def test_matmul_gradcheck(device):
    rng = np.random.default_rng(7)
    for sa, sb in [((3, 5), (5, 4)), ((2, 1, 3, 5), (3, 5, 2)), ((5,), (5, 3)), ((2, 3, 5), (5,))]:
        a = ember.tensor(rng.standard_normal(sa), dtype=ember.float64, device=device, requires_grad=True)
        b = ember.tensor(rng.standard_normal(sb), dtype=ember.float64, device=device, requires_grad=True)
        gradcheck(lambda x, y: x @ y, [a, b])
    a = ember.tensor(rng.standard_normal((4, 6)), dtype=ember.float64, device=device, requires_grad=True)
    gradcheck(lambda x: x.T @ x, [a])  # transposed view of the same tensor


# ---------------------------------------------------------------- linear


@pytest.mark.parametrize("xshape", [(9, 13), (2, 5, 13), (13,), (0, 13)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_backward(isa, xshape, bias, device):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal((7, 13)).astype(np.float32)
    bvec = rng.standard_normal(7).astype(np.float32)
    tx = ember.tensor(x, device=device, requires_grad=True)
    tw = ember.tensor(w, device=device, requires_grad=True)
    tbias = ember.tensor(bvec, device=device, requires_grad=True) if bias else None
    y = NF.linear(tx, tw, tbias)
    want = ref.linear(x, w, bvec if bias else None)
    assert y.shape == want.shape
    assert_close(y, want, n_reduce=13)
    g = rng.standard_normal(want.shape).astype(np.float32)
    y.backward(ember.tensor(g, device=device))
    g2, x2 = g.reshape(-1, 7).astype(np.float64), x.reshape(-1, 13).astype(np.float64)
    assert_close(tx.grad, (g2 @ w).reshape(x.shape), n_reduce=7)
    assert_close(tw.grad, g2.T @ x2, n_reduce=max(x2.shape[0], 1))
    if bias:
        assert_close(tbias.grad, g2.sum(0), n_reduce=max(x2.shape[0], 1))


def test_linear_noncontiguous_input(device):
    rng = np.random.default_rng(9)
    x = ember.tensor(rng.standard_normal((20, 30)).astype(np.float32), device=device)
    w = ember.tensor(rng.standard_normal((30, 8)).astype(np.float32), device=device).T  # (8, 30), column-major
    b = ember.tensor(rng.standard_normal(8).astype(np.float32), device=device)
    xs = x[::2, :]
    got = NF.linear(xs, w, b)
    host = [t.numpy(force=True) for t in (xs, w, b)]
    assert_close(got, ref.linear(*host), n_reduce=30)
    xt = ember.tensor(rng.standard_normal((30, 6)).astype(np.float32), device=device).T  # (6, 30), column-major
    assert_close(NF.linear(xt, w), ref.linear(xt.numpy(force=True), host[1]), n_reduce=30)


def test_linear_gradcheck(device):
    rng = np.random.default_rng(10)
    x, w, b = (ember.tensor(rng.standard_normal(s), dtype=ember.float64, device=device, requires_grad=True)
               for s in ((2, 3, 5), (4, 5), (4,)))
    gradcheck(NF.linear, [x, w, b])
    gradcheck(lambda x, w: NF.linear(x, w), [x, w])


def test_linear_errors():
    x, w, b = ember.ones((3, 5)), ember.ones((4, 5)), ember.ones(4)
    with pytest.raises(ValueError, match="in_features"):
        NF.linear(ember.ones((3, 6)), w, b)
    with pytest.raises(ValueError, match="bias must have shape"):
        NF.linear(x, w, ember.ones(5))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        NF.linear(x, ember.ones(5), None)
    with pytest.raises(TypeError, match="same dtype"):
        NF.linear(x, ember.ones((4, 5), dtype=ember.float64), None)
    with pytest.raises(TypeError, match="float32 or float64"):
        NF.linear(ember.ones((3, 5), dtype=ember.int64), ember.ones((4, 5), dtype=ember.int64))
    with pytest.raises(TypeError, match="must be a Tensor"):
        NF.linear(np.ones((3, 5)), w)


# ---------------------------------------------------------------- random shapes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(M=st.integers(1, 80), N=st.integers(1, 80), K=st.integers(0, 80), ta=st.booleans(), tb=st.booleans(),
       batch=st.integers(1, 3), f64=st.booleans())
def test_kernel_random_shapes(M, N, K, ta, tb, batch, f64, device):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    a = rng.standard_normal((batch,) + ((K, M) if ta else (M, K))).astype(dtype)
    b = rng.standard_normal((batch,) + ((N, K) if tb else (K, N))).astype(dtype)
    got = _kernel(a, b, ta, tb, device=device)
    assert_close(got, ref.matmul(a, b, ta, tb), n_reduce=K, dtype=dtype)
