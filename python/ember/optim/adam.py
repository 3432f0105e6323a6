"""Adam and AdamW (torch.optim semantics, amsgrad included), one fused kernel call
(ember.optim._kernels.adam_step) per parameter."""
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

    def _update(self, p, grad, group, state):
        from . import _kernels

        if group["maximize"]:
            grad = -grad
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros_like(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        _kernels.adam_step(p, grad, state["exp_avg"], state["exp_avg_sq"],
                           state["max_exp_avg_sq"] if group["amsgrad"] else None,
                           step=int(state["step"]), lr=float(group["lr"]), beta1=float(beta1), beta2=float(beta2),
                           eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                           amsgrad=bool(group["amsgrad"]), decoupled=self._decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
