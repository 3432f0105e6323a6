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


# ---------------------------------------------------------------- multi-tensor ops
# sgd_step_multi / adam_step_multi against the single op called per tensor: the same bits.
# Shapes mix empty, 0-d, primes, 2-D and one past the thread grain, so the parallel
# region's split lands inside a tensor at an unaligned offset.
MULTI_SHAPES = [(37,), (), (0,), (1,), (3, 5), (1000,), ((1 << 16) + 3,), (0, 4), (17,), (131,)]


def _multi_state(dtype, nstate, seed):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for _ in range(nstate)] for s in MULTI_SHAPES]


def _on(arrays, device):
    return [device_tensor(a.copy(), device) for a in arrays]  # copies: the two paths must not share params


def _bits(t):
    return t.numpy(force=True).reshape(-1).view(np.uint8)


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay", SGD_OPTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_multi_matches_single_bitwise(momentum, dampening, nesterov, weight_decay, dtype, maximize, isa, device):
    state = _multi_state(dtype, 5, seed=3)  # param, then 4 steps of grads
    multi_p, single_p = _on([s[0] for s in state], device), _on([s[0] for s in state], device)
    multi_b = [ember.zeros(*s, dtype=dtype, device=device) for s in MULTI_SHAPES] if momentum else None
    single_b = [ember.zeros(*s, dtype=dtype, device=device) for s in MULTI_SHAPES] if momentum else None
    for step in range(4):
        grads = [s[1 + step] for s in state]
        # tensor i's buffer starts at step i % 2: first steps mix within one call
        first = [step == i % 2 for i in range(len(grads))]
        live = [step >= i % 2 for i in range(len(grads))]
        idx = [i for i in range(len(grads)) if live[i]]
        kw = dict(lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
        K.sgd_step_multi([multi_p[i] for i in idx], _on([grads[i] for i in idx], device),
                         [multi_b[i] for i in idx] if momentum else None, first_steps=[first[i] for i in idx],
                         maximize=maximize, **kw)
        for i in idx:
            g = -grads[i] if maximize else grads[i]
            K.sgd_step(single_p[i], device_tensor(g, device), single_b[i] if momentum else None,
                       first_step=first[i], **kw)
    for i in range(len(MULTI_SHAPES)):
        np.testing.assert_array_equal(_bits(multi_p[i]), _bits(single_p[i]), err_msg=f"param {i}")
        if momentum:
            np.testing.assert_array_equal(_bits(multi_b[i]), _bits(single_b[i]), err_msg=f"buf {i}")


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("decoupled,amsgrad,weight_decay", list(itertools.product([False, True], [False, True],
                                                                                     [0.0, 0.1])))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_multi_matches_single_bitwise(decoupled, amsgrad, weight_decay, dtype, maximize, isa, device):
    state = _multi_state(dtype, 4, seed=4)
    n = len(MULTI_SHAPES)

    def fresh():
        zeros = lambda: [ember.zeros(*s, dtype=dtype, device=device) for s in MULTI_SHAPES]  # noqa: E731
        return _on([s[0] for s in state], device), zeros(), zeros(), zeros() if amsgrad else [None] * n

    mp, mm, mv, mx = fresh()
    sp, sm, sv, sx = fresh()
    kw = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad,
              decoupled=decoupled)
    for step in range(3):
        grads = [s[1 + step] * (10.0 if step == 1 else 1.0) for s in state]  # make amsgrad's max matter
        steps = [step + 1 + i % 3 for i in range(n)]  # each tensor has its own step count
        K.adam_step_multi(mp, _on(grads, device), mm, mv, mx if amsgrad else None, steps=steps, maximize=maximize,
                          **kw)
        for i in range(n):
            g = -grads[i] if maximize else grads[i]
            K.adam_step(sp[i], device_tensor(g, device), sm[i], sv[i], sx[i], step=steps[i], **kw)
    for i in range(n):
        for name, a, b in (("param", mp, sp), ("exp_avg", mm, sm), ("exp_avg_sq", mv, sv)) + \
                ((("max_exp_avg_sq", mx, sx),) if amsgrad else ()):
            np.testing.assert_array_equal(_bits(a[i]), _bits(b[i]), err_msg=f"{name} {i}")


def test_multi_empty_list_is_a_no_op():
    K.sgd_step_multi([], [], None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                     first_steps=[])
    ember._C.adam_step_multi([], [], [], [], None, [], 0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False)


def _sgd_multi(params, grads, bufs, **over):
    kw = dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0,
              first_steps=[False] * len(params))
    kw.update(over)
    K.sgd_step_multi(params, grads, bufs, **kw)


def _adam_multi(params, grads, m, v, vmax, **over):
    kw = dict(steps=[1] * len(params), lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
              decoupled=False)
    kw.update(over)
    K.adam_step_multi(params, grads, m, v, vmax, **kw)


def test_multi_errors():
    z = lambda *s, **kw: ember.zeros(*s, **kw)  # noqa: E731
    p, g, b = [z(5), z(3)], [z(5), z(3)], [z(5), z(3)]
    with pytest.raises(ValueError, match=r"sgd_step_multi: grads has 1 entries, params has 2"):
        _sgd_multi(p, g[:1], b)
    with pytest.raises(ValueError, match=r"momentum_bufs has 3 entries, params has 2"):
        _sgd_multi(p, g, b + [z(1)])
    with pytest.raises(ValueError, match=r"first_steps has 1 entries, params has 2"):
        _sgd_multi(p, g, b, first_steps=[True])
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(4,\), params\[1\] has shape \(3,\)"):
        _sgd_multi(p, [z(5), z(4)], b)
    with pytest.raises(TypeError, match=r"momentum_bufs\[1\] is float64, params\[1\] is float32"):
        _sgd_multi(p, g, [z(5), z(3, dtype=ember.float64)])
    with pytest.raises(TypeError, match=r"params\[1\] is float64 but params\[0\] is float32"):
        _sgd_multi([z(5), z(3, dtype=ember.float64)], [z(5), z(3, dtype=ember.float64)], None, momentum=0.0)
    with pytest.raises(TypeError, match=r"params\[0\] must be float32 or float64, got int64"):
        _sgd_multi([z(5, dtype=ember.int64)], [z(5, dtype=ember.int64)], None, momentum=0.0, first_steps=[False])
    with pytest.raises(ValueError, match=r"params\[1\] must be contiguous"):
        _sgd_multi([z(5), z(5, 2).transpose(0, 1)], [z(5), z(2, 5)], [z(5), z(2, 5)])
    with pytest.raises(ValueError, match=r"grads\[1\] must be contiguous"):
        _sgd_multi([z(5), z(2, 5)], [z(5), z(5, 2).transpose(0, 1)], [z(5), z(2, 5)])
    with pytest.raises(ValueError, match=r"momentum_bufs\[0\] is missing"):
        _sgd_multi(p, g, [None, z(3)])
    with pytest.raises(ValueError, match=r"momentum_bufs is required \(one per param\), got None"):
        _sgd_multi(p, g, None)
    _sgd_multi(p, g, None, momentum=0.0)  # without momentum no buffers are needed
    with pytest.raises(ValueError, match=r"Nesterov momentum requires a momentum and zero dampening"):
        _sgd_multi(p, g, b, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match=r"invalid learning rate"):
        _sgd_multi(p, g, b, lr=-1.0)
    with pytest.raises(ValueError, match=r"weight_decay must be finite"):
        _sgd_multi(p, g, b, weight_decay=float("inf"))
    with pytest.raises(TypeError, match=r"grads\[1\] must be a Tensor, got ndarray"):
        _sgd_multi(p, [g[0], np.zeros(3, np.float32)], b)
    with pytest.raises(TypeError, match=r"params must be a list of Tensors, got Tensor"):
        _sgd_multi(p[0], g, b)
    with pytest.raises(TypeError, match=r"grads must be a list of Tensors, got NoneType"):
        _sgd_multi(p, None, b)
    with pytest.raises(TypeError, match=r"grads: expected a list of arrays, got <class 'NoneType'>"):
        ember._C.sgd_step_multi([p[0]._data], None, None, 0.1, 0.0, 0.0, False, 0.0, [False], False)
    with pytest.raises(ValueError, match=r"params\[0\] is missing \(None\)"):
        ember._C.sgd_step_multi([None], [g[0]._data], None, 0.1, 0.0, 0.0, False, 0.0, [False], False)
    with pytest.raises(TypeError, match=r"params: expected a list of arrays"):
        ember._C.sgd_step_multi(p[0]._data, [g[0]._data], None, 0.1, 0.0, 0.0, False, 0.0, [False], False)
    with pytest.raises(ValueError, match=r"params\[0\]: output array is read-only"):
        ro = np.zeros(5, np.float32)
        ro.flags.writeable = False
        _sgd_multi([ember.from_numpy(ro)], [z(5)], [z(5)])

    m, v = [z(5), z(3)], [z(5), z(3)]
    with pytest.raises(ValueError, match=r"adam_step_multi: steps\[1\] must be >= 1"):
        _adam_multi(p, g, m, v, None, steps=[1, 0])
    with pytest.raises(ValueError, match=r"steps has 1 entries, params has 2"):
        _adam_multi(p, g, m, v, None, steps=[1])
    with pytest.raises(ValueError, match=r"adamw_step_multi: max_exp_avg_sqs is required"):
        _adam_multi(p, g, m, v, None, amsgrad=True, decoupled=True)
    with pytest.raises(ValueError, match=r"max_exp_avg_sqs\[1\] is missing"):
        _adam_multi(p, g, m, v, [z(5), None], amsgrad=True)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\] has shape \(6,\), params\[0\] has shape \(5,\)"):
        _adam_multi(p, g, m, [z(6), z(3)], None)
    with pytest.raises(ValueError, match=r"invalid beta parameter at index 1"):
        _adam_multi(p, g, m, v, None, beta2=1.0)
    with pytest.raises(ValueError, match=r"invalid epsilon value"):
        _adam_multi(p, g, m, v, None, eps=-1.0)


def test_multi_rejects_shared_memory():
    z = lambda *s: ember.zeros(*s)  # noqa: E731
    p, g = [z(5), z(3)], [z(5), z(3)]
    with pytest.raises(ValueError, match=r"(momentum_bufs|params)\[1\] overlaps (params|momentum_bufs)\[1\]"):
        _sgd_multi(p, g, [z(5), p[1]])
    with pytest.raises(ValueError, match=r"params\[1\] overlaps params\[0\]|params\[0\] overlaps params\[1\]"):
        _sgd_multi([p[0], p[0]], [g[0], z(5)], None, momentum=0.0)
    with pytest.raises(ValueError, match=r"grads\[1\] overlaps params\[0\]|params\[0\] overlaps grads\[1\]"):
        _sgd_multi(p, [g[0], p[0][:3]], None, momentum=0.0)
    big = z(10)  # exp_avg of one param a slice of another param's exp_avg_sq
    with pytest.raises(ValueError, match=r"overlaps"):
        _adam_multi(p, g, [big[5:], z(3)], [big[:6][1:], z(3)], None)
    with pytest.raises(ValueError, match=r"overlaps"):
        _adam_multi(p, g, [z(5), z(3)], [z(5), z(3)], [z(5), g[1]], amsgrad=True)
    shared = z(5)  # two grads may share memory: they are only read
    _sgd_multi([z(5), z(5)], [shared, shared], None, momentum=0.0)


def test_multi_rejects_arrays_on_another_device(device):
    if device == "cpu":
        pytest.skip("needs a CUDA device to mix devices")
    p, g = [ember.zeros(5, device=device), ember.zeros(3, device=device)], [ember.zeros(5, device=device)]
    with pytest.raises(TypeError, match=r"grads\[1\]: expected a CUDA array"):
        _sgd_multi(p, g + [ember.zeros(3)], None, momentum=0.0)
    with pytest.raises(TypeError, match=r"params\[1\]: expected a CUDA array"):
        _sgd_multi([p[0], ember.zeros(3)], g + [ember.zeros(3, device=device)], None, momentum=0.0)
