"""ember.optim: SGD / Adam / AdamW steps against NumPy implementations of torch.optim's
formulas, parameter groups, state_dict round trips, hyper-parameter validation, and the
lr schedulers' sequences against their closed forms."""
import math

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember import optim
from ember.optim import lr_scheduler as S


# ---------------------------------------------------------------- NumPy references (torch.optim formulas)

def sgd_ref(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    p = p.astype(np.float64).copy()
    buf = None
    for g in grads:
        g = -g if maximize else g.astype(np.float64)
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_ref(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False,
             maximize=False):
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g.astype(np.float64)
        if weight_decay:
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vhat = vmax
        else:
            vhat = v
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vhat) / math.sqrt(1 - b2 ** t) + eps)
    return p


def _run(opt_cls, p0, grads, device="cpu", **kw):
    p = nn.Parameter(ember.tensor(p0, device=device))
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = ember.tensor(g, device=device)
        opt.step()
    assert p.device == device and all(v.device == device for v in opt.state[p].values() if isinstance(v, ember.Tensor))
    return p.detach().numpy(force=True), opt


def _data(dtype=np.float32, n=5, shape=(3, 7)):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(dtype), [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, maximize=True),
])
def test_sgd_matches_reference(kw, device):
    p0, grads = _data()
    got, _ = _run(optim.SGD, p0, grads, device, **kw)
    np.testing.assert_allclose(got, sgd_ref(p0, grads, **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,kw", [
    (optim.Adam, dict(lr=1e-2)),
    (optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True)),
    (optim.Adam, dict(lr=1e-2, maximize=True)),
    (optim.AdamW, dict(lr=1e-2)),
    (optim.AdamW, dict(lr=1e-2, weight_decay=0.3, amsgrad=True)),
])
def test_adam_matches_reference(cls, kw, device):
    p0, grads = _data(n=6)
    got, opt = _run(cls, p0, grads, device, **kw)
    ref_kw = dict(kw)
    if cls is optim.AdamW:
        ref_kw.setdefault("weight_decay", 1e-2)
    ref = adam_ref(p0, grads, decoupled=cls is optim.AdamW, **ref_kw)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    st = opt.state[opt.param_groups[0]["params"][0]]
    assert st["step"] == 6 and ("max_exp_avg_sq" in st) == kw.get("amsgrad", False)


def test_float64_params_and_skipped_grads(device):
    p0, grads = _data(np.float64, n=3)
    got, _ = _run(optim.Adam, p0, grads, device, lr=1e-3)
    np.testing.assert_allclose(got, adam_ref(p0, grads, lr=1e-3), rtol=1e-12)
    a = nn.Parameter(ember.ones(2, device=device))
    b = nn.Parameter(ember.ones(2, device=device))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = ember.ones(2, device=device)
    opt.step()  # b has no grad: untouched, no state
    np.testing.assert_array_equal(a.detach().numpy(force=True), [0, 0])
    np.testing.assert_array_equal(b.detach().numpy(force=True), [1, 1])
    assert b not in opt.state


def test_param_groups_and_add_param_group(device):
    a = nn.Parameter(ember.ones(3, device=device))
    b = nn.Parameter(ember.ones(2, device=device))
    c = nn.Parameter(ember.ones(1, device=device))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    opt.add_param_group({"params": c, "lr": 0.01})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["params"] == [c]
    for p in (a, b, c):
        p.grad = ember.ones(p.shape, device=device)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(force=True), 0.9)
    np.testing.assert_allclose(b.detach().numpy(force=True), 0.5)
    np.testing.assert_allclose(c.detach().numpy(force=True), 0.99)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({a, b}, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)


def test_zero_grad(device):
    p = nn.Parameter(ember.ones(3, device=device))
    opt = optim.SGD([p], lr=0.1)
    p.grad = ember.ones(3, device=device)
    opt.zero_grad(set_to_none=False)
    assert p.grad.device == device
    np.testing.assert_array_equal(p.grad.numpy(force=True), [0, 0, 0])
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "Invalid momentum value: -1"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate"),
    (lambda p: optim.Adam(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (lambda p: optim.AdamW(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD([{"params": p, "lr": -1}], lr=0.1), "Invalid learning rate: -1"),
])
def test_bad_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([nn.Parameter(ember.ones(2))])


def _train(model, opt, steps, seed, device="cpu"):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = ember.tensor(rng.standard_normal((4, 3)).astype(np.float32), device=device)
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("cls,kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.AdamW, dict(lr=1e-2,
                                                                                                  amsgrad=True))])
def test_state_dict_round_trip_continues_identically(cls, kw, device):
    ember.manual_seed(0)
    a = nn.Linear(3, 2).to(device)
    opt_a = cls(a.parameters(), **kw)
    _train(a, opt_a, 3, 1, device)
    sd = opt_a.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sd["param_groups"][0]["params"] == [0, 1] and sorted(sd["state"]) == [0, 1]
    # state tensors land on the parameters' device, whichever device they were saved from
    cpu = nn.Linear(3, 2)
    opt_cpu = cls(cpu.parameters(), lr=123.0)
    opt_cpu.load_state_dict(sd)
    for i, p in enumerate(cpu.parameters()):
        for k, v in opt_cpu.state[p].items():
            if isinstance(v, ember.Tensor):
                assert v.device == "cpu"
                np.testing.assert_array_equal(v.numpy(), sd["state"][i][k].numpy(force=True))
    b = nn.Linear(3, 2).to(device)
    b.load_state_dict(a.state_dict())
    opt_b = cls(b.parameters(), lr=123.0)
    opt_b.load_state_dict(opt_cpu.state_dict())
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    assert all(v.device == device for p in b.parameters() for v in opt_b.state[p].values()
               if isinstance(v, ember.Tensor))
    # loading copies: stepping a does not touch b's state
    _train(a, opt_a, 2, 2, device)
    _train(b, opt_b, 2, 2, device)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.detach().numpy(force=True), pb.detach().numpy(force=True))


# ---------------------------------------------------------------- one multi-tensor call per step
# The optimizers now update each (device, dtype) bucket of a group with one
# sgd_step_multi / adam_step_multi call; the per-parameter loop they replaced, written out
# below over the single-tensor ops, must give the same bits.

def _per_param_step(opt, kernels):
    """The old Optimizer.step: one single-tensor kernel call per parameter with a grad."""
    K = kernels
    for group in opt.param_groups:
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            g = -g if group["maximize"] else g
            st = opt.state.setdefault(p, {})
            if isinstance(opt, optim.SGD):
                buf, first = None, False
                if group["momentum"] != 0:
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = st["momentum_buffer"] = ember.zeros_like(p)
                        first = True
                K.sgd_step(p, g, buf, lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                           nesterov=group["nesterov"], weight_decay=group["weight_decay"], first_step=first)
            else:
                if "step" not in st:
                    st.update(step=0, exp_avg=ember.zeros_like(p), exp_avg_sq=ember.zeros_like(p))
                if group["amsgrad"] and "max_exp_avg_sq" not in st:
                    st["max_exp_avg_sq"] = ember.zeros_like(p)
                st["step"] += 1
                K.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], st.get("max_exp_avg_sq"), step=st["step"],
                            lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1], eps=group["eps"],
                            weight_decay=group["weight_decay"], amsgrad=group["amsgrad"], decoupled=opt._decoupled)


@pytest.mark.parametrize("cls,kw", [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    (optim.Adam, dict(lr=1e-2, weight_decay=1e-2)),
    (optim.Adam, dict(lr=1e-2, amsgrad=True, maximize=True)),
    (optim.AdamW, dict(lr=1e-2, amsgrad=True)),
])
def test_step_matches_per_parameter_calls_bitwise(cls, kw, device):
    from ember.optim import _kernels as K

    ember.manual_seed(0)
    rng = np.random.default_rng(0)

    def model():  # LeNet-like shapes, a float64 extra (its own bucket) and a late starter
        ember.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16 * 24, 10)).to(device)
        extra = nn.Parameter(ember.ones(7, dtype=ember.float64, device=device))
        late = nn.Parameter(ember.ones(3, 5, device=device))
        return list(net.parameters()) + [extra, late]

    new, old = model(), model()
    opt_new, opt_old = cls(new[:3], **kw), cls(old[:3], **kw)  # two groups, the second with its own lr
    opt_new.add_param_group({"params": new[3:], "lr": kw["lr"] / 2})
    opt_old.add_param_group({"params": old[3:], "lr": kw["lr"] / 2})
    for step in range(4):
        for i, (a, b) in enumerate(zip(new, old)):
            if i == len(new) - 1 and step < 2:  # no grad yet: skipped, then starts its state late
                a.grad = b.grad = None
                continue
            g = rng.standard_normal(a.shape).astype(np.float32 if a.dtype == ember.float32 else np.float64)
            a.grad, b.grad = ember.tensor(g, device=device), ember.tensor(g, device=device)
        opt_new.step()
        _per_param_step(opt_old, K)
    for a, b in zip(new, old):
        np.testing.assert_array_equal(a.detach().numpy(force=True), b.detach().numpy(force=True))
        for k, v in opt_old.state[b].items():
            got = opt_new.state[a][k]
            if isinstance(v, ember.Tensor):
                np.testing.assert_array_equal(got.numpy(force=True), v.numpy(force=True))
            else:
                assert got == v


def test_failed_step_leaves_no_half_state():
    p = nn.Parameter(ember.ones(4))
    q = nn.Parameter(ember.ones(4))
    for opt in (optim.SGD([p, q], lr=0.1, momentum=0.9), optim.Adam([p, q], lr=0.1)):
        p.grad, q.grad = ember.ones(4), ember.ones(5)  # q's grad has the wrong shape: the whole call fails
        with pytest.raises(ValueError, match=r"grads\[1\] has shape \(5,\), params\[1\] has shape \(4,\)"):
            opt.step()
        np.testing.assert_array_equal(p.detach().numpy(), 1.0)
        for s in opt.state.values():  # no momentum buffer kept, no step counted
            assert "momentum_buffer" not in s and s.get("step", 0) == 0


# (errors and schedulers are bookkeeping on Python numbers: CPU only)
def test_load_state_dict_errors():
    p, q = nn.Parameter(ember.ones(2)), nn.Parameter(ember.ones(3))
    opt = optim.Adam([p, q])
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(optim.Adam([p]).state_dict())
    with pytest.raises(ValueError, match="1 parameter groups, this optimizer has 2"):
        optim.Adam([{"params": [p]}, {"params": [q]}]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


# ---------------------------------------------------------------- schedulers

def _lrs(sched, n):
    out = [sched.get_last_lr()[0]]
    for _ in range(n):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def _opt(lr=0.1, cls=optim.SGD, **kw):
    return cls([nn.Parameter(ember.ones(1))], lr=lr, **kw)


def test_step_and_multistep():
    got = _lrs(S.StepLR(_opt(), step_size=3, gamma=0.5), 9)
    assert got == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(10)])
    got = _lrs(S.MultiStepLR(_opt(), milestones=[2, 5], gamma=0.1), 7)
    assert got == pytest.approx([0.1 * 0.1 ** sum(e >= m for m in (2, 5)) for e in range(8)])


def test_cosine_and_linear():
    T, eta = 6, 0.01
    got = _lrs(S.CosineAnnealingLR(_opt(), T_max=T, eta_min=eta), 8)
    assert got == pytest.approx([eta + (0.1 - eta) * (1 + math.cos(math.pi * e / T)) / 2 for e in range(9)])
    assert got[T] == pytest.approx(eta)
    got = _lrs(S.LinearLR(_opt(), start_factor=0.25, end_factor=1.0, total_iters=4), 6)
    assert got == pytest.approx([0.1 * (0.25 + 0.75 * min(e, 4) / 4) for e in range(7)])


def test_onecycle_matches_piecewise_formula():
    total, max_lr, div, final_div, pct = 10, 1.0, 25.0, 1e4, 0.3
    opt = _opt(cls=optim.SGD, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=pct, div_factor=div,
                         final_div_factor=final_div)
    initial = max_lr / div
    low = initial / final_div
    up_end = pct * total - 1  # 2.0

    def cos(a, b, t):
        return b + (a - b) / 2 * (math.cos(math.pi * t) + 1)

    want_lr, want_m = [], []
    for s in range(total):
        if s <= up_end:
            t = s / up_end
            want_lr.append(cos(initial, max_lr, t))
            want_m.append(cos(0.95, 0.85, t))
        else:
            t = (s - up_end) / (total - 1 - up_end)
            want_lr.append(cos(max_lr, low, t))
            want_m.append(cos(0.85, 0.95, t))
    got_lr, got_m = [], []
    for s in range(total):
        got_lr.append(opt.param_groups[0]["lr"])
        got_m.append(opt.param_groups[0]["momentum"])
        opt.step()
        if s < total - 1:
            sched.step()
    assert got_lr == pytest.approx(want_lr) and got_m == pytest.approx(want_m)
    assert got_lr[0] == pytest.approx(0.04) and got_lr[-1] == pytest.approx(4e-6)
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 11 times. The specified number of total steps is 10"):
        sched.step()


def test_onecycle_linear_three_phase_and_adam_betas():
    opt = _opt(cls=optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=5, anneal_strategy="linear",
                         three_phase=True)
    lrs = _lrs(sched, 9)
    initial, low = 0.5 / 25, 0.5 / 25 / 1e4
    # phases end at steps 2, 4 and 9: up, back down to initial, then down to min
    want = [initial + (0.5 - initial) * s / 2 for s in range(3)] + \
           [0.5 + (initial - 0.5) * (s - 2) / 2 for s in range(3, 5)] + \
           [initial + (low - initial) * (s - 4) / 5 for s in range(5, 10)]
    assert lrs == pytest.approx(want)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)  # momentum back at max at the end
    with pytest.raises(ValueError, match="either total_steps OR"):
        S.OneCycleLR(_opt(), max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        S.OneCycleLR(_opt(), max_lr=1.0, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(_opt(), max_lr=1.0, total_steps=5, pct_start=1.5)


def test_scheduler_state_dict_and_errors():
    opt = _opt()
    s1 = S.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        s1.step()
    sd = s1.state_dict()
    assert sd["last_epoch"] == 3 and "optimizer" not in sd
    opt2 = _opt()
    s2 = S.StepLR(opt2, step_size=7, gamma=0.9)
    s2.load_state_dict(sd)
    s2.step()
    s1.step()
    assert s2.get_last_lr() == s1.get_last_lr()
    assert s1.get_last_lr() == pytest.approx([0.1 * 0.25])
    assert opt2.param_groups[0]["initial_lr"] == 0.1
    with pytest.raises(ValueError, match="unexpected keys"):
        s2.load_state_dict({"bogus": 1})
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        S.StepLR(_opt(), step_size=0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(_opt(), start_factor=0)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 1)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), 1, last_epoch=3)


def test_fit_moves_optimizer_state_with_the_model(device):
    # State made on the CPU (a resumed run, or steps before) follows the model to device.
    from ember.data import DataLoader, TensorDataset
    from ember.train import fit
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(ember.randn(4, 3)).sum().backward()
    opt.step()
    x, y = ember.randn(8, 3), ember.randint(0, 2, (8,))
    hist = fit(model, nn.CrossEntropyLoss(), opt, DataLoader(TensorDataset(x, y), batch_size=4), epochs=1,
               device=device, progress=False, log=lambda *a: None)
    assert len(hist["train_loss"]) == 1
    for p in model.parameters():
        assert p.device == device and all(v.device == device for v in opt.state[p].values()
                                          if isinstance(v, ember.Tensor))
