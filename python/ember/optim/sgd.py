"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD semantics),
one fused kernel call (ember.optim._kernels.sgd_step) per parameter."""
from ..tensor import zeros_like
from .optimizer import Optimizer, _check_number, required


class SGD(Optimizer):
    r"""g = grad (+ weight_decay * p); with momentum: buf = g on the first step, then
    buf = momentum * buf + (1 - dampening) * g; g = g + momentum * buf (Nesterov) or buf;
    p -= lr * g. maximize=True ascends."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        if lr is not required:
            _check_number("lr", lr, low=0.0, what="learning rate")
        super().__init__(params, defaults)

    def _validate_group(self, g):
        _check_number("lr", g["lr"], low=0.0, what="learning rate")
        _check_number("momentum", g["momentum"], low=0.0, what="momentum value")
        _check_number("dampening", g["dampening"], what="dampening value")
        _check_number("weight_decay", g["weight_decay"], low=0.0, what="weight_decay value")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, grad, group, state):
        from . import _kernels

        if group["maximize"]:
            grad = -grad
        momentum = group["momentum"]
        buf, first = None, False
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = zeros_like(p)
                state["momentum_buffer"] = buf
                first = True
        _kernels.sgd_step(p, grad, buf, lr=float(group["lr"]), momentum=float(momentum),
                          dampening=float(group["dampening"]), nesterov=bool(group["nesterov"]),
                          weight_decay=float(group["weight_decay"]), first_step=first)
