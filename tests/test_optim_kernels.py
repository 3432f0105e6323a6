"""Fused optimizer update kernels (ember.optim._kernels) against ember.ref's float64
transcriptions of torch.optim's SGD / Adam / AdamW, for every option combination, on
every SIMD path, over several steps."""
import itertools

import numpy as np
import pytest

import ember
from ember import ref
from ember.optim import _kernels as K
from helpers import device_tensor

SIZES = [1, 37, 1000, (1 << 16) + 3]  # the last one splits across threads


def _state(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype), [rng.standard_normal(n).astype(dtype) for _ in range(4)]


def _close(actual, expected, dtype, steps):
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(actual, expected, rtol=16 * steps * eps, atol=16 * steps * eps)


SGD_OPTIONS = [  # (momentum, dampening, nesterov, weight_decay)
    (m, d, n, wd) for m, d, n, wd in itertools.product([0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.01])
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay", SGD_OPTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_sgd_vs_ref(momentum, dampening, nesterov, weight_decay, dtype, n, isa, device):
    p0, grads = _state(n, dtype)
    param = device_tensor(p0, device)
    buf = device_tensor(np.full(n, np.nan, dtype), device) if momentum else None  # first step must overwrite it
    rp, rbuf = p0.astype(np.float64), None
    for step, g in enumerate(grads):
        kw = dict(lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                  first_step=step == 0)
        K.sgd_step(param, device_tensor(g, device), buf, **kw)
        rp, rbuf = ref.sgd_step(rp, g, rbuf, **kw)
    _close(param.numpy(force=True), rp, dtype, len(grads))
    if momentum:
        _close(buf.numpy(force=True), rbuf, dtype, len(grads))


@pytest.mark.parametrize("decoupled,amsgrad,weight_decay", list(itertools.product([False, True], [False, True],
                                                                                     [0.0, 0.1])))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_adam_vs_ref(decoupled, amsgrad, weight_decay, dtype, n, isa, device):
    p0, grads = _state(n, dtype, seed=1)
    grads = [g * s for g, s in zip(grads, [1.0, 0.1, 3.0, 0.01])]  # make amsgrad's max matter
    param = device_tensor(p0, device)
    m, v = ember.zeros(n, dtype=dtype, device=device), ember.zeros(n, dtype=dtype, device=device)
    vmax = ember.zeros(n, dtype=dtype, device=device) if amsgrad else None
    rp, rm, rv, rvmax = p0.astype(np.float64), np.zeros(n), np.zeros(n), np.zeros(n)
    for step, g in enumerate(grads, start=1):
        kw = dict(step=step, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad)
        K.adam_step(param, device_tensor(g, device), m, v, vmax, decoupled=decoupled, **kw)
        rp, rm, rv, rvmax = ref.adam_step(rp, g, rm, rv, rvmax, decoupled=decoupled, **kw)
    _close(param.numpy(force=True), rp, dtype, 4 * len(grads))
    _close(m.numpy(force=True), rm, dtype, len(grads))
    _close(v.numpy(force=True), rv, dtype, len(grads))
    if amsgrad:
        _close(vmax.numpy(force=True), rvmax, dtype, len(grads))
        assert (vmax.numpy(force=True) >= v.numpy(force=True)).all()


def test_adamw_differs_from_adam_with_weight_decay():
    # Decoupled decay must not pass through the moments (a test of the option, not a tautology).
    p0, (g, *_) = _state(50, np.float64, seed=2)
    out = []
    for decoupled in (False, True):
        p, m, v = ember.from_numpy(p0.copy()), ember.zeros(50, dtype=ember.float64), ember.zeros(50, dtype=ember.float64)
        K.adam_step(p, ember.from_numpy(g), m, v, None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=0.5, amsgrad=False, decoupled=decoupled)
        out.append((p.numpy(), m.numpy()))
    np.testing.assert_allclose(out[1][1], 0.1 * g)  # AdamW: m from the raw gradient
    np.testing.assert_allclose(out[0][1], 0.1 * (g + 0.5 * p0))  # Adam: L2 term in the gradient
    assert not np.allclose(out[0][0], out[1][0])


def test_updates_in_place_on_a_param_that_requires_grad():
    p = ember.ones(4, requires_grad=True)
    K.sgd_step(p, ember.ones(4), None, lr=0.5, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
               first_step=True)
    np.testing.assert_array_equal(p.detach().numpy(), 0.5)


def _sgd(param, grad, buf, **over):
    kw = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0, first_step=False)
    kw.update(over)
    K.sgd_step(param, grad, buf, **kw)


def _adam(param, grad, m, v, vmax, **over):
    kw = dict(step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False)
    kw.update(over)
    K.adam_step(param, grad, m, v, vmax, **kw)


def test_errors():
    p, g, b = ember.zeros(5), ember.zeros(5), ember.zeros(5)
    with pytest.raises(ValueError, match="shapes differ"):
        _sgd(p, ember.zeros(4), b)
    with pytest.raises(TypeError, match="grad must have the parameter's dtype float32, got float64"):
        _sgd(p, ember.zeros(5, dtype=ember.float64), b)
    with pytest.raises(ValueError, match="momentum_buf is required"):
        _sgd(p, g, None)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        _sgd(p, g, b, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="invalid learning rate"):
        _sgd(p, g, b, lr=-1.0)
    with pytest.raises(ValueError, match="lr must be finite"):
        _sgd(p, g, b, lr=float("nan"))
    with pytest.raises(ValueError, match="param must be contiguous"):
        _sgd(ember.zeros(5, 2).transpose(0, 1), ember.zeros(2, 5), ember.zeros(2, 5))
    with pytest.raises(TypeError, match="param must be float32 or float64"):
        _sgd(ember.zeros(5, dtype=ember.int64), g, b)
    with pytest.raises(TypeError, match="buf must be a Tensor"):
        _sgd(p, g, np.zeros(5, np.float32))
    m, v = ember.zeros(5), ember.zeros(5)
    with pytest.raises(ValueError, match="step must be >= 1"):
        _adam(p, g, m, v, None, step=0)
    with pytest.raises(ValueError, match="max_exp_avg_sq is required when amsgrad=True"):
        _adam(p, g, m, v, None, amsgrad=True)
    with pytest.raises(ValueError, match="invalid beta parameter at index 1"):
        _adam(p, g, m, v, None, beta2=1.0)
    with pytest.raises(ValueError, match="invalid epsilon value"):
        _adam(p, g, m, v, None, eps=-1e-8)
    with pytest.raises(ValueError, match="exp_avg_sq must have the parameter's shape|shapes differ"):
        _adam(p, g, m, ember.zeros(6), None)
    with pytest.raises(TypeError, match="exp_avg must be a Tensor, got None"):
        _adam(p, g, None, v, None)
    with pytest.raises(ValueError, match="output array is read-only"):
        ro = np.zeros(5, np.float32)
        ro.flags.writeable = False
        _adam(ember.from_numpy(ro), g, m, v, None)
