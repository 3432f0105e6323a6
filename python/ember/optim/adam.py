"""Adam and AdamW (torch.optim semantics, amsgrad included), one multi-tensor kernel call
(ember.optim._kernels.adam_step_multi) per device and dtype of each parameter group."""
from ..tensor import zeros_like
from .optimizer import Optimizer, _check_number


class Adam(Optimizer):
    r"""m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2 (v_max = max(v_max, v) with
    amsgrad); p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    Adam adds weight_decay * p to g (L2); AdamW multiplies p by 1 - lr * weight_decay."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, g):
        _check_number("lr", g["lr"], low=0.0, what="learning rate")
        _check_number("eps", g["eps"], low=0.0, what="epsilon value")
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            _check_number("beta", b, low=0.0, high=1.0, high_open=True, what=f"beta parameter at index {i}")
        g["betas"] = tuple(betas)
        _check_number("weight_decay", g["weight_decay"], low=0.0, what="weight_decay value")

    def _update(self, group, params, grads, states):
        from . import _kernels

        amsgrad = group["amsgrad"]
        for p, state in zip(params, states):
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = zeros_like(p)
        steps = [int(state["step"]) + 1 for state in states]
        beta1, beta2 = group["betas"]
        _kernels.adam_step_multi(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                                 [s["max_exp_avg_sq"] for s in states] if amsgrad else None, steps=steps,
                                 lr=float(group["lr"]), beta1=float(beta1), beta2=float(beta2), eps=float(group["eps"]),
                                 weight_decay=float(group["weight_decay"]), amsgrad=bool(amsgrad),
                                 decoupled=self._decoupled, maximize=bool(group["maximize"]))
        for state, step in zip(states, steps):  # counted only once the step succeeded
            state["step"] = step


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
