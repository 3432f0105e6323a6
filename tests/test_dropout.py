"""Dropout: Philox4x32-10 against Random123's known-answer vectors (C++ header and the
pure-Python reference), the kernel's mask against ember.ref.dropout_mask on every SIMD
path, mask statistics, generator offsets, backward, edge cases and errors."""
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import gradcheck, on_device, to_host

# Random123 kat_vectors: philox4x32 10 rounds, (counter, key) -> output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(ref.philox4x32_10(counter, key)) == expected
    assert tuple(ember._C.philox4x32_10(list(counter), list(key))) == expected


@pytest.mark.parametrize("n", [1, 3, 4, 5, 63, 64, 65, 257, 1000])
@pytest.mark.parametrize("seed,offset", [(0, 0), (1234, 8), (2**40 + 17, 4 * (2**32 + 3)), (2**64 - 1, 12)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_matches_reference(n, seed, offset, dtype, isa, device):
    p = 0.37
    K, xp = ember._backend.kernels(device), ember._backend.xp(device)
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    xd = on_device(x, device)
    out, mask = xp.empty_like(xd), xp.empty(n, bool)
    K.dropout_forward(xd, p, seed, offset, out, mask)
    expect = ref.dropout_mask(seed, offset, n, p)
    np.testing.assert_array_equal(to_host(mask), expect)
    np.testing.assert_allclose(to_host(out), ref.dropout(x, expect, p), rtol=2 * np.finfo(dtype).eps)
    out2 = xp.empty_like(xd)
    K.dropout_forward(xd, p, seed, offset, out2, None)  # without storing the mask: same output
    np.testing.assert_array_equal(to_host(out2), to_host(out))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_mask_equals_cpu_mask(dtype):
    if not ember.cuda.is_available():
        pytest.skip(f"CUDA unavailable: {ember.cuda.why_unavailable()}")
    import cupy as cp
    n = (1 << 20) + 7  # many Philox blocks and a ragged tail
    x = np.random.default_rng(0).standard_normal(n + 1).astype(dtype)
    for view in (slice(0, n), slice(1, n + 1)):  # aligned (128-bit path) and misaligned (scalar path)
        xc, xg = np.ascontiguousarray(x[view]), cp.asarray(x)[view]
        out_c, mask_c = np.empty_like(xc), np.empty(n, bool)
        out_g, mask_g = cp.empty_like(xg), cp.empty(n, bool)
        ember._C.dropout_forward(xc, 0.3, 2**33 + 5, 4 * 12345, out_c, mask_c)
        ember._cuda.dropout_forward(xg, 0.3, 2**33 + 5, 4 * 12345, out_g, mask_g)
        np.testing.assert_array_equal(mask_g.get(), mask_c)
        np.testing.assert_array_equal(out_g.get(), out_c)
        gi_c, gi_g = np.empty_like(xc), cp.empty_like(xg)
        ember._C.dropout_backward(xc, mask_c, 0.3, gi_c)
        ember._cuda.dropout_backward(xg, mask_g, 0.3, gi_g)
        np.testing.assert_array_equal(gi_g.get(), gi_c)
    ember.manual_seed(5)
    a = ember.nn.functional.dropout(ember.ones(1001, device="cuda"), 0.5).numpy(force=True)
    ember.manual_seed(5)
    np.testing.assert_array_equal(a, ember.nn.functional.dropout(ember.ones(1001), 0.5).numpy())


def test_uniform_threshold_is_exact():
    # p exactly on a uniform's value: u >= p keeps it; p one step above drops it.
    u = ref.dropout_uniform(5, 0, 8)
    x = np.ones(8)
    for i in range(8):
        out, mask = np.empty(8), np.empty(8, bool)
        ember._C.dropout_forward(x, float(u[i]), 5, 0, out, mask)
        assert mask[i]
        ember._C.dropout_forward(x, float(u[i]) + 2.0 ** -25, 5, 0, out, mask)
        assert not mask[i]


def test_all_isas_agree_on_a_large_tensor():
    n = (1 << 18) + 13  # several threads' worth, a ragged tail
    x = np.ones(n, np.float32)
    masks = []
    best = ember._C.best_cpu_isa()
    for isa in ["scalar", "avx2", "avx512"]:
        try:
            ember.set_cpu_isa(isa)
        except ValueError:
            continue
        out, m = np.empty_like(x), np.empty(n, bool)
        ember._C.dropout_forward(x, 0.5, 99, 400, out, m)
        masks.append(m)
    ember.set_cpu_isa(best)
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])
    # and a sparse sample of it against the pure-Python reference
    idx = np.array([0, 1, 2, 3, 255, 256, 65535, 131072, n - 1])
    words = [ref.philox_words(99, 400 + int(i), 1)[0] for i in idx]
    np.testing.assert_array_equal(masks[0][idx], [(w >> 8) * 2.0 ** -24 >= 0.5 for w in words])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_statistics(p, device):
    n = 1_000_000
    ember.manual_seed(42)
    y = F.dropout(ember.ones(n, device=device), p).numpy(force=True)
    kept = int((y != 0).sum())
    sd = np.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 6 * sd
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p), rtol=1e-6)


def test_seed_and_offset():
    x = ember.ones(1001)
    ember.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    assert ember.default_generator.offset == 1004  # 1001 rounded up to a multiple of 4
    b = F.dropout(x, 0.5).numpy()
    assert ember.default_generator.offset == 2008
    ember.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)  # same seed, same mask
    assert (a != b).mean() > 0.3  # the advanced offset gives a new mask
    np.testing.assert_array_equal(b != 0, ref.dropout_mask(3, 1004, 1001, 0.5))
    ember.manual_seed(4)
    assert (F.dropout(x, 0.5).numpy() != a).mean() > 0.3  # another seed, another mask


@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
def test_backward_uses_the_same_mask(dtype, isa, device):
    x = ember.randn(7, 33, dtype=dtype, device=device, requires_grad=True)
    y = F.dropout(x, 0.25)
    g = ember.randn(7, 33, dtype=dtype, device=device)
    y.backward(g)
    keep = y.detach().numpy(force=True) != 0
    assert 0.5 < keep.mean() < 0.95
    np.testing.assert_allclose(x.grad.numpy(force=True), np.where(keep, g.numpy(force=True) / 0.75, 0), rtol=1e-6)
    np.testing.assert_allclose(y.detach().numpy(force=True), np.where(keep, x.detach().numpy(force=True) / 0.75, 0),
                               rtol=1e-6)


def test_gradcheck():
    x = ember.randn(3, 5, dtype=ember.float64, requires_grad=True)

    def fn(t):
        ember.manual_seed(11)  # the same mask on every call
        return F.dropout(t, 0.4)

    gradcheck(fn, [x])


def test_non_contiguous_input():
    base = ember.randn(6, 10)
    xt = base.transpose(0, 1)
    ember.manual_seed(8)
    y = F.dropout(xt, 0.5)
    mask = ref.dropout_mask(8, 0, 60, 0.5).reshape(10, 6)
    np.testing.assert_allclose(y.numpy(), np.where(mask, base.numpy().T * 2, 0), rtol=1e-7)


def test_edge_cases():
    x = ember.randn(100, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    y0 = F.dropout(x, 0.0)
    np.testing.assert_array_equal(y0.detach().numpy(), x.detach().numpy())
    y1 = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y1.detach().numpy(), 0)
    y1.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)
    assert F.dropout(ember.zeros(0, 3), 0.5).shape == (0, 3)
    z = ember.ones(50)
    assert F.dropout(z, 0.5, inplace=True) is z
    assert set(np.unique(z.numpy())) <= {0.0, 2.0}


def test_nan_and_inf_propagate_as_in_torch(isa, device):
    # torch computes x * mask / (1 - p): a dropped NaN or inf gives NaN, not 0.
    K, xp = ember._backend.kernels(device), ember._backend.xp(device)
    x = np.array([np.nan, np.inf, -np.inf, 1.0] * 100, np.float32)
    out, mask = xp.empty(x.size, np.float32), xp.empty(x.size, bool)
    K.dropout_forward(on_device(x, device), 0.5, 21, 0, out, mask)
    out, mask_h = to_host(out), to_host(mask)
    np.testing.assert_array_equal(out, ref.dropout(x, mask_h, 0.5).astype(np.float32))
    assert np.isnan(out[(~mask_h) & ~np.isfinite(x)]).all()
    g = xp.full(x.size, np.nan, np.float32)
    gi = xp.empty_like(g)
    K.dropout_backward(g, mask, 0.5, gi)
    assert np.isnan(to_host(gi)).all()


def test_errors():
    x = ember.randn(10)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            F.dropout(x, p)
    with pytest.raises(TypeError, match="p must be a number"):
        F.dropout(x, "0.5")
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        F.dropout(ember.zeros(3, dtype=ember.int64), 0.5)
    with pytest.raises(RuntimeError, match="in-place operation"):
        F.dropout(ember.randn(3, requires_grad=True), 0.5, inplace=True)
    a = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="offset must be a multiple of 4"):
        ember._C.dropout_forward(a, 0.5, 1, 2, a.copy(), None)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ember._C.dropout_forward(a, 2.0, 1, 0, a.copy(), None)
    with pytest.raises(TypeError, match="mask must be bool"):
        ember._C.dropout_forward(a, 0.5, 1, 0, a.copy(), np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="shapes differ"):
        ember._C.dropout_backward(a, np.zeros(7, bool), 0.5, a.copy())
