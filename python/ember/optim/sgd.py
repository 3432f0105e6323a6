"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD semantics),
one multi-tensor kernel call (ember.optim._kernels.sgd_step_multi) per device and dtype
of each parameter group."""
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

    def _update(self, group, params, grads, states):
        from . import _kernels

        momentum = group["momentum"]
        bufs, first = None, [False] * len(params)
        if momentum != 0:
            bufs = [state.get("momentum_buffer") for state in states]
            for i, p in enumerate(params):
                if bufs[i] is None:
                    bufs[i], first[i] = zeros_like(p), True
        _kernels.sgd_step_multi(params, grads, bufs, lr=float(group["lr"]), momentum=float(momentum),
                                dampening=float(group["dampening"]), nesterov=bool(group["nesterov"]),
                                weight_decay=float(group["weight_decay"]), first_steps=first,
                                maximize=bool(group["maximize"]))
        if bufs is not None:  # kept only once the step succeeded: a failed step leaves no half state
            for state, buf in zip(states, bufs):
                state["momentum_buffer"] = buf
