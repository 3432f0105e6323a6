"""Reverse-mode autograd: float64 central-difference checks of every differentiable op
in this layer, and the engine's semantics (accumulation, retain_graph, no_grad, detach)."""
import numpy as np
import pytest

import ember
from helpers import gradcheck


def _t(shape, seed=0, positive=False, device="cpu"):
    x = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        x = np.abs(x) + 0.5
    return ember.tensor(x, dtype=ember.float64, device=device, requires_grad=True)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (2, 2))])
def test_binary_gradients(op, sa, sb, device):
    a, b = _t(sa, 1, device=device), _t(sb, 2, positive=(op == "div"), device=device)
    gradcheck(getattr(ember, op), [a, b])


def test_scalar_operand_gradients(device):
    x = _t((2, 3), 3, positive=True, device=device)
    gradcheck(lambda x: 2.0 / x + x * 3 - 1 + x ** 2.5 + x ** 2 + x ** -1, [x])
    gradcheck(lambda x: 3.0 ** x, [x])
    gradcheck(lambda x, y: x ** y, [x, _t((2, 3), 4, positive=True, device=device)])


@pytest.mark.parametrize("op", ["exp", "log", "sqrt", "abs", "neg"])
def test_unary_gradients(op, device):
    gradcheck(getattr(ember, op), [_t((3, 5), 5, positive=op in ("log", "sqrt"), device=device)])


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_reduction_gradients(dim, keepdim, device):
    x = _t((3, 4, 5), 6, device=device)
    gradcheck(lambda x: x.sum(dim, keepdim), [x])
    gradcheck(lambda x: x.mean(dim, keepdim), [x])
    gradcheck(lambda x: x.amax(dim, keepdim), [x])
    gradcheck(lambda x: x.amin(dim, keepdim), [x])


def test_max_gradient_splits_ties_evenly(device):
    x = ember.tensor([1.0, 3.0, 3.0], device=device, requires_grad=True)
    x.max().backward()
    assert x.grad.device == device and x.grad.tolist() == [0.0, 0.5, 0.5]
    y = ember.tensor([[2.0, 2.0, 1.0], [0.0, 4.0, 4.0]], device=device, requires_grad=True)
    y.amin(1).sum().backward()
    assert y.grad.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    y.grad = None
    y.amax(1).sum().backward()
    assert y.grad.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]


def test_view_gradients(device):
    x = _t((2, 3, 4), 7, device=device)
    gradcheck(lambda x: x.reshape(4, 6) * 2, [x])
    gradcheck(lambda x: x.permute(2, 0, 1).contiguous(), [x])
    gradcheck(lambda x: x.transpose(0, 2) * 1.5, [x])
    gradcheck(lambda x: x[1, ::2, 1:3] * 3, [x])
    gradcheck(lambda x: x[ember.tensor([0, 0, 1], device=device)] * 1.0, [x])  # repeated index accumulates
    gradcheck(lambda x: x.unsqueeze(0).expand(3, 2, 3, 4) * 1.0, [x])
    gradcheck(lambda x: x.flatten(1).T, [x])


def test_where_and_matmul_gradients(device):
    def t(shape, seed):
        return _t(shape, seed, device=device)
    a, b = t((4, 5), 8), t((4, 5), 9)
    gradcheck(lambda a, b: ember.where(a > b, a, b * 2), [a, b])
    gradcheck(ember.matmul, [t((3, 4), 10), t((4, 5), 11)])
    gradcheck(ember.matmul, [t((2, 3, 4), 12), t((4, 2), 13)])
    gradcheck(ember.matmul, [t((4,), 14), t((4, 3), 15)])
    gradcheck(ember.matmul, [t((2, 1, 3, 4), 16), t((3, 4, 2), 17)])


def test_dtype_cast_gradient(device):
    x = _t((3,), 18, device=device)
    y = x.float()
    assert y.dtype == ember.float32 and y.device == device
    y.sum().backward()
    assert x.grad.dtype == ember.float64 and x.grad.device == device and x.grad.tolist() == [1.0, 1.0, 1.0]


def test_accumulation_and_retain_graph(device):
    x = ember.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * 3).sum()
    z.backward()
    assert x.grad.tolist() == [7.0, 11.0]


def test_shared_subexpression_and_diamond(device):
    x = ember.tensor([2.0], device=device, requires_grad=True)
    a = x * 3
    y = a * a + a  # dy/dx = (2a + 1) * 3 = 39
    y.backward()
    assert x.grad.tolist() == [39.0]


def test_grads_do_not_alias(device):
    x = ember.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = ember.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x + y).sum().backward()
    x.grad.zero_()
    assert y.grad.tolist() == [1.0, 1.0]
    g = ember.ones(2, device=device)
    x.grad = None
    x.backward(g)
    x.grad.fill_(5)
    assert g.tolist() == [1.0, 1.0]


def test_no_grad_detach_and_requires_grad(device):
    x = ember.ones(3, device=device, requires_grad=True)
    with ember.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    d = (x * 2).detach()
    assert not d.requires_grad
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.ones(2, device=device).sum().backward()
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="floating point"):
        ember.ones(2, dtype=ember.int64, device=device).requires_grad_()
    with pytest.raises(ValueError, match="gradient has shape"):
        (x * 2).backward(ember.ones(2, device=device))


def test_explicit_gradient_and_retain_grad(device):
    x = ember.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    h = x * 2
    h.retain_grad()
    y = h * h
    y.backward(ember.tensor([1.0, 0.0, 2.0], device=device))
    assert x.grad.tolist() == [8.0, 0.0, 48.0]
    assert h.grad.tolist() == [4.0, 0.0, 24.0] and h.grad.device == device
    if device == "cuda":  # a gradient on the other device is refused by name
        y = (x * 2).sum(0, keepdim=True)
        with pytest.raises(RuntimeError, match="gradient is on cpu but the tensor .* is on cuda"):
            y.backward(ember.tensor([1.0]))


def test_backward_on_device(device):
    x = ember.tensor([[1.0, -2.0], [0.5, 3.0]], device=device, requires_grad=True)
    w = ember.tensor([[2.0], [1.0]], device=device, requires_grad=True)
    y = ((x @ w).exp() * x.sum(1, keepdim=True)).mean()
    y.backward()
    assert x.grad.device == device and w.grad.device == device
    xn, wn = x.detach().numpy(force=True).astype(np.float64), w.detach().numpy(force=True).astype(np.float64)
    e = np.exp(xn @ wn)
    s = xn.sum(1, keepdims=True)
    np.testing.assert_allclose(w.grad.numpy(force=True), xn.T @ (e * s) / 2, rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(force=True), ((e * s) @ wn.T + e) / 2, rtol=1e-5)
