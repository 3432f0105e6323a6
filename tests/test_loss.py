"""Losses against the float64 reference: cross_entropy (weights, ignore_index, label
smoothing, every reduction, (N, C, d...) inputs, huge logits; class indices and class
probabilities), nll_loss, mse_loss,
binary_cross_entropy_with_logits; float64 gradient checks for each; errors."""
import functools

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import ref
from helpers import assert_close, device_tensor, gradcheck

_C = ember._C
REDUCTIONS = ["mean", "sum", "none"]


def _on(device):
    """from_numpy and tensor, placing the tensor on `device`."""
    return (lambda a: device_tensor(a, device)), functools.partial(ember.tensor, device=device)


def _targets(rng, shape, c, ignore_frac=0.0, ignore_index=-100):
    t = rng.integers(0, c, size=shape)
    if ignore_frac:
        t = np.where(rng.random(shape) < ignore_frac, ignore_index, t)
    return t.astype(np.int64)


# ---------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("shape", [(7, 5), (1, 1), (13, 1000), (0, 4), (3, 4, 5), (2, 3, 4, 5), (6,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_reference(shape, reduction, isa, device):
    from_numpy, tensor = _on(device)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    t = _targets(rng, tshape, c)
    for kw in ({}, {"label_smoothing": 0.15}, {"ignore_index": 1}, {"weight": rng.random(c).astype(np.float32)},
               {"weight": rng.random(c).astype(np.float32), "ignore_index": 0, "label_smoothing": 0.3}):
        w = kw.get("weight")
        out = F.cross_entropy(from_numpy(x), from_numpy(t), reduction=reduction,
                              **{**kw, "weight": None if w is None else from_numpy(w)})
        with np.errstate(invalid="ignore"):  # mean over no (non-ignored) targets: 0 / 0
            expected = ref.cross_entropy(x, t, reduction=reduction, **kw)
        assert out.shape == np.shape(expected)
        assert_close(out, expected, n_reduce=c * max(1, t.size), scale=2)


def test_cross_entropy_empty_batch(device):
    from_numpy, tensor = _on(device)
    x = ember.randn(0, 4, requires_grad=True, device=device)
    t = tensor(np.zeros(0, np.int64))
    assert np.isnan(F.cross_entropy(x, t).item())  # 0 / 0, as PyTorch
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0
    assert F.cross_entropy(x, t, reduction="none").shape == (0,)
    F.cross_entropy(x, t, reduction="sum").backward()
    assert x.grad.shape == (0, 4)


def test_cross_entropy_huge_logits(isa, device):
    from_numpy, tensor = _on(device)
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 2],
                  [-1e4, -1e4 + 3, -1e4 + 1, -1e4],
                  [3e4, -3e4, 2e4, 1e4],
                  [1e4, 1e4, 1e4, 1e4]], np.float32)
    t = np.array([3, 1, 0, 2], np.int64)
    for eps in (0.0, 0.1):
        xt = tensor(x, requires_grad=True)
        loss = F.cross_entropy(xt, from_numpy(t), reduction="none", label_smoothing=eps)
        expected = ref.cross_entropy(x, t, reduction="none", label_smoothing=eps)
        assert np.isfinite(loss.detach().numpy(force=True)).all()
        np.testing.assert_allclose(loss.detach().numpy(force=True), expected, rtol=1e-5, atol=1e-5)
        loss.sum().backward()
        p = ref.softmax(x, 1)
        onehot = np.eye(4)[t]
        np.testing.assert_allclose(xt.grad.numpy(force=True), p - ((1 - eps) * onehot + eps / 4), rtol=1e-5, atol=1e-6)


def test_cross_entropy_grad_matches_float64(isa, device):
    from_numpy, tensor = _on(device)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((37, 101)) * 4).astype(np.float32)
    t = _targets(rng, (37,), 101, ignore_frac=0.2)
    w = rng.random(101).astype(np.float32)
    grads = []
    for dt in (np.float32, np.float64):
        xt = tensor(x.astype(dt), requires_grad=True)
        F.cross_entropy(xt, from_numpy(t), weight=from_numpy(w.astype(dt)), label_smoothing=0.2).backward()
        grads.append(xt.grad.numpy(force=True))
    assert_close(grads[0], grads[1], n_reduce=101, scale=4)
    assert (grads[0][t == -100] == 0).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2}, {"ignore_index": 2}, {"weight": True},
                                {"weight": True, "ignore_index": 0, "label_smoothing": 0.25}])
def test_cross_entropy_gradcheck(reduction, kw):
    rng = np.random.default_rng(2)
    x = ember.tensor(rng.standard_normal((5, 4)), dtype=ember.float64, requires_grad=True)
    t = ember.tensor(np.array([0, 2, 3, 2, 1]))
    w = ember.tensor(rng.random(4) + 0.5, dtype=ember.float64) if kw.get("weight") else None
    kw = {**kw, "weight": w}
    gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction, **kw), [x])


def test_cross_entropy_gradcheck_spatial_and_non_contiguous():
    rng = np.random.default_rng(3)
    x = ember.tensor(rng.standard_normal((2, 3, 2, 3)), dtype=ember.float64, requires_grad=True)
    t = ember.tensor(np.array([[[0, 1, 2], [2, -100, 0]], [[1, 1, 0], [2, 0, 1]]]))
    gradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.1), [x])
    base = ember.tensor(rng.standard_normal((6, 8)), dtype=ember.float64, requires_grad=True)
    t2 = ember.tensor(np.array([0, 1, 2, 0]))
    gradcheck(lambda a: F.cross_entropy(a[:, ::2].T, t2, reduction="sum"), [base])
    # unbatched (C,) input with a 0-d target
    v = ember.tensor(rng.standard_normal(5), dtype=ember.float64, requires_grad=True)
    gradcheck(lambda a: F.cross_entropy(a, ember.from_numpy(np.array(3))), [v])


def test_cross_entropy_all_ignored(device):
    from_numpy, tensor = _on(device)
    x = ember.randn(3, 4, device=device)
    t = tensor(np.full(3, -100, np.int64))
    assert np.isnan(F.cross_entropy(x, t).item())  # 0 / 0, as PyTorch
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


def test_cross_entropy_errors():
    x = ember.randn(4, 3)
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of bounds for 3 classes.*at sample 2"):
        F.cross_entropy(x, ember.tensor([0, 1, 3, 2]))
    with pytest.raises(IndexError, match="target -1 is out of bounds"):
        F.cross_entropy(x, ember.tensor([0, 1, -1, 2]))
    with pytest.raises(IndexError, match=r"target 7 is out of bounds for 3 classes.*position 1"):
        F.cross_entropy(ember.randn(2, 3, 2), ember.tensor([[0, 1], [2, 7]]))
    with pytest.raises(ValueError, match=r"target shape \(3,\) does not match input shape \(4, 3\)"):
        F.cross_entropy(x, ember.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="target must be int64 class indices, got float32"):
        F.cross_entropy(x, ember.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.cross_entropy(x, ember.tensor([0, 1, 2, 0]), weight=ember.ones(4))
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        F.cross_entropy(x, ember.tensor([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        F.cross_entropy(x, ember.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="input must be float32 or float64, got int64"):
        F.cross_entropy(ember.tensor([[1, 2]]), ember.tensor([0]))
    a, t = np.zeros((4, 3, 1), np.float32), np.zeros((4, 1), np.int64)
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must be in"):
        _C.cross_entropy(a, t, None, -100, -0.5, np.zeros((4, 1), np.float32), np.zeros((4, 1, 2), np.float32),
                         np.zeros((), np.float32))
    with pytest.raises(ValueError, match="cross_entropy: stats has shape"):
        _C.cross_entropy(a, t, None, -100, 0.0, np.zeros((4, 1), np.float32), np.zeros((4, 2), np.float32),
                         np.zeros((), np.float32))
    with pytest.raises(TypeError, match="cross_entropy: target must be int64"):
        _C.cross_entropy(a, t.astype(np.float32), None, -100, 0.0, np.zeros((4, 1), np.float32),
                         np.zeros((4, 1, 2), np.float32), np.zeros((), np.float32))


# ---------------------------------------------------------------- cross_entropy, probability targets


def _probs(rng, shape, axis):
    p = rng.random(shape)
    return p / p.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape", [(7, 5), (1, 1), (13, 1000), (0, 4), (3, 4, 5), (2, 3, 4, 5), (6,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probs_matches_reference(shape, reduction, isa):
    rng = np.random.default_rng(10)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    cdim = 1 if len(shape) > 1 else 0
    c = shape[cdim]
    t = _probs(rng, shape, cdim).astype(np.float32)
    w = rng.random(c).astype(np.float32)
    for kw in ({}, {"label_smoothing": 0.15}, {"weight": w}, {"weight": w, "label_smoothing": 0.3}):
        out = F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t), reduction=reduction,
                              **{**kw, "weight": None if "weight" not in kw else ember.from_numpy(w)})
        with np.errstate(invalid="ignore"):  # mean over an empty batch: 0 / 0, as PyTorch
            expected = ref.cross_entropy(x, t, reduction=reduction, **kw)
        assert out.shape == np.shape(expected)
        assert_close(out, expected, n_reduce=c * max(1, t.size // max(c, 1)), scale=2)


def test_cross_entropy_probs_mean_divides_by_samples_not_weights():
    # PyTorch: -(w t log p).sum() / (numel / C), whatever the weights
    x = np.array([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]])
    t = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    w = np.array([2.0, 0.5, 3.0])
    logp = ref.log_softmax(x, 1)
    expected = -(w * t * logp).sum() / 2
    out = F.cross_entropy(ember.tensor(x), ember.tensor(t), weight=ember.tensor(w))
    np.testing.assert_allclose(out.item(), expected, rtol=1e-12)
    assert np.isnan(F.cross_entropy(ember.randn(0, 3), ember.randn(0, 3)).item())


def test_cross_entropy_probs_one_hot_equals_class_indices(isa):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    t = rng.integers(0, 6, 9)
    w = rng.random(6).astype(np.float32)
    onehot = np.eye(6, dtype=np.float32)[t]
    for eps in (0.0, 0.2):
        a = F.cross_entropy(ember.from_numpy(x), ember.from_numpy(onehot), label_smoothing=eps, reduction="none",
                            weight=ember.from_numpy(w))
        b = F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t), label_smoothing=eps, reduction="none",
                            weight=ember.from_numpy(w))
        assert_close(a, b.numpy(), n_reduce=6)


def test_cross_entropy_probs_huge_logits_and_strided_target(isa):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 2], [3e4, -3e4, 2e4, 1e4]], np.float32)
    base = np.array([[0.5, 9, 0.0, 9, 0.25, 9, 0.25, 9], [0.1, 9, 0.2, 9, 0.3, 9, 0.4, 9]], np.float32)
    t = ember.from_numpy(base)[:, ::2]  # a non-contiguous target
    xt = ember.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, t, reduction="none", label_smoothing=0.1)
    expected = ref.cross_entropy(x, base[:, ::2].astype(np.float64), reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-5)
    loss.sum().backward()
    tp = 0.9 * base[:, ::2] + 0.1 / 4
    np.testing.assert_allclose(xt.grad.numpy(), ref.softmax(x, 1) * tp.sum(1, keepdims=True) - tp, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2}, {"weight": True},
                                {"weight": True, "label_smoothing": 0.25}])
def test_cross_entropy_probs_gradcheck(reduction, kw):
    rng = np.random.default_rng(12)
    x = ember.tensor(rng.standard_normal((5, 4)), dtype=ember.float64, requires_grad=True)
    t = ember.tensor(_probs(rng, (5, 4), 1), dtype=ember.float64, requires_grad=True)
    w = ember.tensor(rng.random(4) + 0.5, dtype=ember.float64) if kw.get("weight") else None
    kw = {**kw, "weight": w}
    gradcheck(lambda a, b: F.cross_entropy(a, b, reduction=reduction, **kw), [x, t])


def test_cross_entropy_probs_gradcheck_spatial_and_non_contiguous():
    rng = np.random.default_rng(13)
    x = ember.tensor(rng.standard_normal((2, 3, 2, 3)), dtype=ember.float64, requires_grad=True)
    t = ember.tensor(_probs(rng, (2, 3, 2, 3), 1), dtype=ember.float64, requires_grad=True)
    w = ember.tensor(rng.random(3) + 0.5, dtype=ember.float64)
    gradcheck(lambda a, b: F.cross_entropy(a, b, weight=w, label_smoothing=0.1), [x, t])
    base = ember.tensor(rng.standard_normal((6, 8)), dtype=ember.float64, requires_grad=True)
    tb = ember.tensor(_probs(rng, (4, 6), 1), dtype=ember.float64, requires_grad=True)
    gradcheck(lambda a, b: F.cross_entropy(a[:, ::2].T, b, reduction="sum"), [base, tb])
    v = ember.tensor(rng.standard_normal(5), dtype=ember.float64, requires_grad=True)  # unbatched (C,)
    tv = ember.tensor(_probs(rng, (5,), 0), dtype=ember.float64, requires_grad=True)
    gradcheck(lambda a, b: F.cross_entropy(a, b), [v, tv])


def test_cross_entropy_probs_float64_target_with_float32_input():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = _probs(rng, (4, 3), 1)
    out = F.cross_entropy(ember.from_numpy(x), ember.from_numpy(t))
    assert out.dtype == ember.float32
    assert_close(out, ref.cross_entropy(x, t), n_reduce=12)


def test_cross_entropy_probs_errors():
    x = ember.randn(4, 3)
    with pytest.raises(ValueError, match="ignore_index=0 is not supported with class-probability targets"):
        F.cross_entropy(x, ember.rand(4, 3), ignore_index=0)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.cross_entropy(x, ember.rand(4, 3), weight=ember.ones(4))
    with pytest.raises(TypeError, match="target must be int64 class indices, got float32"):
        F.cross_entropy(x, ember.rand(4, 2))  # a float target of another shape is not a distribution
    a, t = np.zeros((4, 3, 2), np.float32), np.full((4, 3, 2), 1 / 3, np.float32)
    loss, stats = np.zeros((4, 2), np.float32), np.zeros((4, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"cross_entropy_probs: probability target shape \(4,2,2\) must equal"):
        _C.cross_entropy_probs(a, t[:, :2], None, 0.0, loss, stats)
    with pytest.raises(TypeError, match="cross_entropy_probs: probability target must have the input's dtype "
                                        "float32, got float64"):
        _C.cross_entropy_probs(a, t.astype(np.float64), None, 0.0, loss, stats)
    with pytest.raises(TypeError, match="cross_entropy_probs: probability target must have the input's dtype "
                                        "float32, got int64"):
        _C.cross_entropy_probs(a, t.astype(np.int64), None, 0.0, loss, stats)
    with pytest.raises(TypeError, match="input must be float32 or float64, got int64"):
        _C.cross_entropy_probs(a.astype(np.int64), t, None, 0.0, loss, stats)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        _C.cross_entropy_probs(a, t, None, 1.5, loss, stats)
    with pytest.raises(ValueError, match=r"stats has shape \(4,2\), expected \(4, 2, 2\)"):
        _C.cross_entropy_probs(a, t, None, 0.0, loss, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"loss has shape \(4,\), expected \(4, 2\)"):
        _C.cross_entropy_probs(a, t, None, 0.0, np.zeros(4, np.float32), stats)
    with pytest.raises(ValueError, match=r"cross_entropy_probs_backward: grad has shape \(4,\)"):
        _C.cross_entropy_probs_backward(a, t, None, stats, np.zeros(4, np.float32), 0.0, np.zeros_like(a), None)
    with pytest.raises(ValueError, match="cross_entropy_probs_backward: shapes differ"):
        _C.cross_entropy_probs_backward(a, t, None, stats, loss, 0.0, np.zeros_like(a), np.zeros((4, 3), np.float32))


# ---------------------------------------------------------------- nll_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction, isa, device):
    from_numpy, tensor = _on(device)
    rng = np.random.default_rng(4)
    for shape in ((9, 7), (3, 4, 5), (0, 3)):
        lp = ref.log_softmax(rng.standard_normal(shape), 1).astype(np.float32)
        t = _targets(rng, (shape[0],) + shape[2:], shape[1], ignore_frac=0.2)
        w = rng.random(shape[1]).astype(np.float32)
        for weight in (None, w):
            out = F.nll_loss(from_numpy(lp), from_numpy(t), reduction=reduction,
                             weight=None if weight is None else from_numpy(weight))
            with np.errstate(invalid="ignore"):  # mean over an empty batch: 0 / 0
                expected = ref.nll_loss(lp, t, weight=weight, reduction=reduction)
            assert_close(out, expected, n_reduce=max(1, t.size))
    if device != "cpu":  # gradcheck perturbs host arrays in place
        return
    x = tensor(rng.standard_normal((4, 3)), dtype=ember.float64, requires_grad=True)
    tt = tensor(np.array([0, -100, 2, 1]))
    wt = tensor(rng.random(3) + 0.5, dtype=ember.float64)
    gradcheck(lambda a: F.nll_loss(a, tt, weight=wt, reduction=reduction), [x])
    gradcheck(lambda a: F.nll_loss(F.log_softmax(a, 1), tt, reduction=reduction), [x])


def test_nll_loss_errors():
    with pytest.raises(IndexError, match="nll_loss: target 5 is out of bounds for 3 classes"):
        F.nll_loss(ember.randn(2, 3), ember.tensor([5, 0]))
    with pytest.raises(ValueError, match="nll_loss: input must have at least 1 dimension"):
        F.nll_loss(ember.from_numpy(np.array(1.0)), ember.from_numpy(np.array(0)))


# ---------------------------------------------------------------- mse_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction, isa, device):
    from_numpy, tensor = _on(device)
    rng = np.random.default_rng(5)
    for shape in ((1,), (17, 3), (0, 4), (2, 3, 5)):
        a = rng.standard_normal(shape).astype(np.float32)
        b = rng.standard_normal(shape).astype(np.float32)
        out = F.mse_loss(from_numpy(a), from_numpy(b), reduction=reduction)
        with np.errstate(invalid="ignore"):
            assert_close(out, ref.mse_loss(a, b, reduction), n_reduce=max(1, a.size))
    if device != "cpu":  # gradcheck perturbs host arrays in place
        return
    a = tensor(rng.standard_normal((3, 4)), dtype=ember.float64, requires_grad=True)
    b = tensor(rng.standard_normal((3, 4)), dtype=ember.float64, requires_grad=True)
    gradcheck(lambda p, q: F.mse_loss(p, q, reduction=reduction), [a, b])
    row = tensor(rng.standard_normal(4), dtype=ember.float64, requires_grad=True)  # broadcast target
    gradcheck(lambda p, q: F.mse_loss(p, q, reduction=reduction), [a, row])
    gradcheck(lambda p: F.mse_loss(p[:, ::2].T, p[:, 1::2].T, reduction=reduction), [a])  # non-contiguous


def test_mse_loss_errors():
    with pytest.raises(ValueError, match=r"cannot be broadcast"):
        F.mse_loss(ember.randn(3), ember.randn(4))
    with pytest.raises(TypeError, match="mse_loss: input must be float32 or float64"):
        F.mse_loss(ember.tensor([1, 2]), ember.tensor([1, 2]))
    with pytest.raises(ValueError, match="'mean ' is not a valid value"):
        F.mse_loss(ember.randn(3), ember.randn(3), reduction="mean ")


# ---------------------------------------------------------------- binary_cross_entropy_with_logits


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction, isa, device):
    from_numpy, tensor = _on(device)
    rng = np.random.default_rng(6)
    for shape in ((1,), (13, 7), (0, 3), (2, 3, 5)):
        x = (rng.standard_normal(shape) * 5).astype(np.float32)
        t = rng.random(shape).astype(np.float32)
        w = rng.random(shape[-1:]).astype(np.float32)
        pw = (rng.random(shape[-1:]) * 3).astype(np.float32)
        for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
            out = F.binary_cross_entropy_with_logits(from_numpy(x), from_numpy(t), reduction=reduction,
                                                     **{k: from_numpy(v) for k, v in kw.items()})
            with np.errstate(invalid="ignore"):
                expected = ref.binary_cross_entropy_with_logits(x, t, reduction=reduction, **kw)
                assert_close(out, expected, n_reduce=max(1, x.size), scale=2)


def test_bce_with_logits_extreme(isa, device):
    from_numpy, tensor = _on(device)
    x = np.array([1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 0.0, 1e-8], np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.7, 0.5, 1.0], np.float32)
    xt = tensor(x, requires_grad=True)
    out = F.binary_cross_entropy_with_logits(xt, from_numpy(t), reduction="none")
    expected = ref.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(out.detach().numpy(force=True), expected, rtol=2e-6, atol=1e-30)
    out.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(force=True), ref.sigmoid(x) - t, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_gradcheck(reduction):
    rng = np.random.default_rng(7)
    x = ember.tensor(rng.standard_normal((3, 4)) * 3, dtype=ember.float64, requires_grad=True)
    t = ember.tensor(rng.random((3, 4)), dtype=ember.float64, requires_grad=True)
    w = ember.tensor(rng.random(4) + 0.5, dtype=ember.float64)
    pw = ember.tensor(rng.random((3, 1)) * 3, dtype=ember.float64)
    gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), [x, t])
    gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw, reduction=reduction),
              [x, t])


def test_bce_with_logits_errors():
    with pytest.raises(ValueError, match=r"target size \(3,\) must be the same as input size \(4,\)"):
        F.binary_cross_entropy_with_logits(ember.randn(4), ember.rand(3))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\) cannot be broadcast"):
        F.binary_cross_entropy_with_logits(ember.randn(2, 4), ember.rand(2, 4), pos_weight=ember.ones(3))
    with pytest.raises(TypeError, match="target must be float32 or float64, got int64"):
        F.binary_cross_entropy_with_logits(ember.randn(2), ember.tensor([0, 1]))
    a = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: shapes differ"):
        _C.binary_cross_entropy_with_logits(a, a, a, np.zeros(2, np.float32), a.copy())


def test_nan_propagates(isa, device):
    from_numpy, tensor = _on(device)
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], np.float32)
    t = tensor([0, 2])
    loss = F.cross_entropy(from_numpy(x), t, reduction="none").numpy(force=True)
    assert np.isnan(loss[0]) and np.isfinite(loss[1])
    assert np.isnan(F.cross_entropy(from_numpy(x), t).item())
    bce = F.binary_cross_entropy_with_logits(from_numpy(x), from_numpy(np.full_like(x, 0.5)),
                                             reduction="none").numpy(force=True)
    assert np.isnan(bce[0, 1]) and np.isfinite(np.delete(bce.ravel(), 1)).all()
    assert np.isnan(F.mse_loss(from_numpy(x), from_numpy(np.zeros_like(x))).item())


def test_target_out_of_bounds_raises_on_every_device(device):
    x = ember.randn(4, 3, device=device)
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of bounds for 3 classes.*at sample 2"):
        F.cross_entropy(x, ember.tensor([0, 1, 3, 2], device=device))
    with pytest.raises(IndexError, match=r"target 7 is out of bounds for 3 classes.*position 1"):
        F.nll_loss(ember.randn(2, 3, 2, device=device), ember.tensor([[0, 1], [2, 7]], device=device))
    # a valid call right after works (the failed one launched nothing that indexes by a target)
    assert np.isfinite(F.cross_entropy(x, ember.tensor([0, 1, 2, 2], device=device)).item())
