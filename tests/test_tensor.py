"""ember.Tensor: creation, dtypes, metadata, views sharing memory, conversions, printing,
random numbers and the errors a user can hit."""
import subprocess
import sys

import numpy as np
import pytest

import ember


def test_tensor_from_python_data(device):
    def T(data, **kw):
        out = ember.tensor(data, device=device, **kw)
        assert out.device == device
        return out
    t = T([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == ember.float32 and t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4
    assert t.size() == (2, 2) and t.size(1) == 2 and t.strides == (2, 1) and t.device == device
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]] and t.element_size() == 4 and t.is_contiguous()
    assert T([1, 2]).dtype == ember.int64
    assert T([True]).dtype == ember.bool_
    assert T(3.5).shape == () and T(3.5).item() == 3.5
    assert T([1, 2], dtype=ember.float64).dtype == ember.float64
    assert T(np.arange(3, dtype=np.int32)).dtype == ember.int64
    assert T(np.ones(2, np.float16)).dtype == ember.float32
    assert T([]).shape == (0,)
    a = np.zeros(3, np.float32)
    c = T(a)  # a copy on any device
    a[0] = 1
    assert c.tolist() == [0, 0, 0]
    assert T(t).tolist() == t.tolist() and T(t.cpu() if device != "cpu" else t).device == device


def test_tensor_copies_but_from_numpy_shares():
    # CPU only: from_numpy and np.asarray are zero-copy views of host memory
    a = np.zeros(3, np.float32)
    t = ember.tensor(a)
    a[0] = 1
    assert t.tolist() == [0, 0, 0]
    s = ember.from_numpy(a)
    a[1] = 2
    assert s.tolist() == [1, 2, 0]
    assert s.numpy() is a
    assert np.shares_memory(np.asarray(s), a)


def test_creation_functions(device):
    d = dict(device=device)
    assert ember.zeros(2, 3, **d).tolist() == [[0] * 3] * 2
    assert ember.ones((2,), dtype=ember.int64, **d).tolist() == [1, 1]
    assert ember.full((2, 2), 7, **d).dtype == ember.int64
    assert ember.full((2,), 1.5, **d).tolist() == [1.5, 1.5]
    assert ember.full((3,), True, **d).tolist() == [True] * 3
    assert ember.empty(4, **d).shape == (4,)
    assert ember.arange(5, **d).tolist() == [0, 1, 2, 3, 4] and ember.arange(5, **d).dtype == ember.int64
    np.testing.assert_allclose(ember.arange(0, 1, 0.25, **d).numpy(force=True), [0, 0.25, 0.5, 0.75])
    x = ember.ones(2, 3, dtype=ember.float64, **d)
    for f in (ember.zeros_like, ember.ones_like, ember.empty_like, ember.rand_like, ember.randn_like):
        y = f(x)
        assert y.shape == x.shape and y.dtype == ember.float64 and y.device == device
    assert ember.full_like(x, 3).tolist() == [[3.0] * 3] * 2
    assert ember.zeros_like(x, device="cpu").device == "cpu"
    ones = ember.ones(4, 5, **d)
    ones.zero_()
    assert ones.tolist() == [[0.0] * 5] * 4
    ones.fill_(2.5)
    assert ones.tolist() == [[2.5] * 5] * 4


def test_random_is_reproducible(device):
    ember.manual_seed(42)
    a, b = ember.rand(100, device=device), ember.randn(3, 4, device=device)
    assert a.device == device and b.device == device
    ember.manual_seed(42)
    assert np.array_equal(a.numpy(force=True), ember.rand(100, device=device).numpy(force=True))
    assert np.array_equal(b.numpy(force=True), ember.randn(3, 4, device=device).numpy(force=True))
    an = a.numpy(force=True)
    assert 0 <= an.min() and an.max() < 1
    big = ember.randn(100000, device=device).numpy(force=True)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    r = ember.randint(0, 10, (1000,), device=device)
    rn = r.numpy(force=True)
    assert r.dtype == ember.int64 and r.device == device and 0 <= rn.min() and rn.max() <= 9


def test_views_share_memory(device):
    t = ember.arange(12, device=device).reshape(3, 4)
    v = t.view(4, 3)
    t[0, 0] = 100
    assert v[0, 0].item() == 100
    assert t.T.shape == (4, 3) and t.T.strides == (1, 4)
    assert t.transpose(0, 1).tolist() == t.numpy(force=True).T.tolist()
    assert t.permute(1, 0).shape == (4, 3)
    assert t.flatten().shape == (12,) and t.unsqueeze(1).shape == (3, 1, 4)
    assert t.unsqueeze(-1).shape == (3, 4, 1) and t.unsqueeze(1).squeeze().shape == (3, 4)
    assert t.reshape(-1, 6).shape == (2, 6)
    s = t[1:, ::2]
    assert s.shape == (2, 2) and not s.is_contiguous()
    s[...] = 0
    assert t[1].tolist() == [0, 5, 0, 7]
    c = s.contiguous()
    assert c.is_contiguous() and c.tolist() == [[0, 0], [0, 0]]
    assert t[2].shape == (4,) and t[2, 3].item() == 11 and t[-1, -1].item() == 11
    assert t[None].shape == (1, 3, 4) and t[..., 1].tolist() == [1, 5, 9]
    assert t[ember.tensor([0, 2], device=device)].shape == (2, 4)
    assert t[t > 8].tolist() == [100, 9, 11]
    assert all(v.device == device for v in (t.T, s, c, t[2], t[t > 8], t.reshape(-1, 6)))


def test_view_of_non_contiguous_raises_but_reshape_copies(device):
    t = ember.arange(6, device=device).reshape(2, 3).T
    with pytest.raises(RuntimeError, match="view"):
        t.view(6)
    assert t.reshape(6).tolist() == [0, 3, 1, 4, 2, 5]


def test_conversions(device):
    t = ember.tensor([[1.5, 2.0]], device=device)
    assert t.tolist() == [[1.5, 2.0]]
    assert float(ember.tensor(2.5, device=device)) == 2.5 and int(ember.tensor(3, device=device)) == 3
    assert bool(ember.tensor([True], device=device)) is True
    h = np.array(t, dtype=np.float64)  # __array__: a host copy on any device
    assert h.dtype == np.float64 and h.tolist() == [[1.5, 2.0]]
    assert t.__dlpack_device__()[0] == (1 if device == "cpu" else 2)  # kDLCPU / kDLCUDA
    shared = ember.from_dlpack(t)  # zero-copy on either device
    assert shared.device == device
    shared[0, 0] = 7.0
    assert t[0, 0].item() == 7.0
    assert t.double().dtype == ember.float64 and t.long().tolist() == [[7, 2]]
    for c in (t.double(), t.long(), t.bool(), t.to(ember.float64), t.type_as(ember.ones(1, dtype=ember.int64))):
        assert c.device == device
    assert t.to(ember.float64).dtype == ember.float64 and t.to(device) is t
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    if device != "cpu":
        with pytest.raises(TypeError, match="cpu"):
            t.numpy()  # no implicit device-to-host copy; numpy(force=True) copies


def test_numpy_and_dlpack_interop():
    # CPU only: zero-copy exchange with NumPy's host arrays
    t = ember.tensor([[1.5, 2.0]])
    d = np.from_dlpack(t)
    assert np.shares_memory(d, t.numpy())
    back = ember.from_dlpack(np.arange(3.0))
    assert back.dtype == ember.float64 and back.tolist() == [0, 1, 2]
    assert t.to("cpu") is t
    with pytest.raises(RuntimeError, match="requires grad"):
        ember.ones(2, requires_grad=True).numpy()


def test_repr_looks_like_torch():
    assert repr(ember.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(ember.tensor([1.5, 2.25])) == "tensor([1.5000, 2.2500])"
    assert repr(ember.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(ember.tensor([1.0], dtype=ember.float64)) == "tensor([1.], dtype=ember.float64)"
    assert repr(ember.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(ember.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(ember.ones(2, requires_grad=True) * 2)
    assert repr(ember.tensor([True, False])) == "tensor([True, False])"


def test_repr_on_device(device):
    suffix = "" if device == "cpu" else ", device='cuda:0'"
    assert repr(ember.tensor([1.0, 2.0], device=device)) == "tensor([1., 2.]" + suffix + ")"
    assert repr(ember.tensor([1, 2], dtype=ember.float64, device=device)) == \
        "tensor([1., 2.]" + suffix + ", dtype=ember.float64)"


@pytest.mark.parametrize("bad,exc,match", [
    ([[1, 2], [3]], ValueError, "ragged"),
    (["a", "b"], TypeError, "cannot build"),
    ([object()], TypeError, "cannot build"),
    (np.array([1 + 2j]), TypeError, "cannot build"),
])
def test_bad_data(bad, exc, match):
    with pytest.raises(exc, match=match):
        ember.tensor(bad)


def test_bad_shapes_and_sizes(device):
    with pytest.raises(ValueError, match="negative"):
        ember.zeros(-1, 3, device=device)
    with pytest.raises(TypeError, match="ints"):
        ember.ones(2.5, device=device)
    with pytest.raises(MemoryError, match="refusing"):  # refused before any allocation
        ember.empty(1 << 40, 1 << 20, device=device)
    with pytest.raises(MemoryError):
        ember.zeros(2**62, 4, device=device)
    with pytest.raises(ValueError, match="invalid for a tensor of 6"):
        ember.ones(2, 3, device=device).reshape(4, 2)
    with pytest.raises(ValueError, match="only one dimension can be -1"):
        ember.ones(2, 3, device=device).reshape(-1, -1)
    with pytest.raises(IndexError):
        ember.ones(2, 3, device=device)[5]
    with pytest.raises(ValueError, match="step"):
        ember.arange(0, 5, 0)
    with pytest.raises(ValueError, match="unknown device"):
        ember.zeros(2, device="tpu")
    with pytest.raises(TypeError, match="unsupported dtype"):
        ember.zeros(2, dtype="complex64")
    with pytest.raises(TypeError, match="seed"):
        ember.manual_seed("x")
    with pytest.raises(ValueError, match="more than once"):
        ember.ones(2, 3, device=device).permute(0, 0)


def test_cuda_unavailable_is_not_an_error():
    assert ember.cuda.is_available() in (True, False)
    if not ember.cuda.is_available():
        assert ember.cuda.why_unavailable()
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            ember.zeros(2, device="cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            ember.ones(2).cuda()


def test_cuda_module_is_built_when_nvcc_exists():
    import shutil
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on this machine")
    if ember._C.cuda_build == "disabled":
        pytest.skip("built with -DEMBER_CUDA=OFF")
    assert ember._C.cuda_build == "built", "nvcc is on PATH but CMake did not find it"
    from ember import _cuda
    assert _cuda.device_count() >= 0
    assert _cuda.runtime_version() >= 12000


def test_threads():
    # CPU only: the OpenMP thread count of the CPU kernels
    n = ember.get_num_threads()
    ember.set_num_threads(1)
    assert ember.get_num_threads() == 1
    ember.set_num_threads(n)
    with pytest.raises(ValueError, match="positive"):
        ember.set_num_threads(0)


def test_isa_env_var_forces_a_lower_path():
    # CPU only: SIMD dispatch of the CPU kernels
    code = "import ember; print(ember.cpu_isa())"
    for want in ("scalar", "avx2"):
        out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "EMBER_CPU_ISA": want},
                             capture_output=True, text=True, check=True).stdout.strip()
        order = ["scalar", "avx2", "avx512"]
        assert order.index(out) <= order.index(want)
    with pytest.raises(ValueError, match="unknown CPU path"):
        ember.set_cpu_isa("sse9")


def test_to_device_round_trip_and_grad(device):
    t = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    d = t.to(device)
    assert d.device == device and d.tolist() == t.tolist()
    assert t.to(device="cpu") is t and d.to(device) is d  # already there: no copy
    back = d.cpu() if device == "cuda" else d
    assert back.device == "cpu" and back.tolist() == t.tolist()
    (d * d).sum().backward()  # the gradient flows back across the copy, onto t's device
    assert t.grad.device == "cpu" and t.grad.tolist() == [[2.0, 4.0], [6.0, 8.0]]
    if device == "cuda":
        assert t.cuda().is_cuda and not t.cuda().cpu().is_cuda
        with pytest.raises(RuntimeError, match="same device, got cpu and cuda"):
            t.detach() + d


def test_creation_on_device(device):
    for t in (ember.zeros(2, 3, device=device), ember.ones(2, device=device), ember.randn(4, device=device),
              ember.arange(5, device=device), ember.full((2,), 7.0, device=device)):
        assert t.device == device
    ember.manual_seed(5)
    a = ember.randn(3, 4, device=device)
    ember.cuda.manual_seed(5)  # the same single generator: the same draw on either device
    assert np.array_equal(a.numpy(force=True), ember.randn(3, 4).numpy())
