"""Thin wrappers over the fused optimizer update kernels (csrc/cpu/optim.cpp): one
in-place pass over a parameter and its state, with torch.optim's single-tensor
formulas. The optimizer classes (SGD, Adam, AdamW) call these per parameter.

All tensors are updated in place, bypassing autograd (an optimizer step is not part of
any graph); they must share one shape, one float dtype, one device and be contiguous."""
from ..tensor import Tensor, _kernels


def _check(op, param, **state):
    if not isinstance(param, Tensor):
        raise TypeError(f"{op}: param must be a Tensor, got {type(param).__name__}")
    for name, t in state.items():
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.device != param.device:
            raise RuntimeError(f"{op}: {name} is on {t.device} but param is on {param.device}")


def sgd_step(param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay, first_step):
    """One SGD step on `param` from `grad`. `buf` is the momentum buffer (None when
    momentum == 0); on the first step (first_step=True) it is set to the gradient."""
    _check("sgd_step", param, grad=grad, buf=buf)
    if grad is None:
        raise TypeError("sgd_step: grad must be a Tensor, got None")
    _kernels(param.device).sgd_step(param._data, grad._data, None if buf is None else buf._data, float(lr),
                                    float(momentum), float(dampening), bool(nesterov), float(weight_decay),
                                    bool(first_step))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, decoupled):
    """One Adam (decoupled=False: L2 weight decay added to the gradient) or AdamW
    (decoupled=True: param *= 1 - lr*weight_decay) step. `step` counts this update
    (1 on the first). max_exp_avg_sq is used (and required) only when amsgrad."""
    _check("adam_step", param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq, max_exp_avg_sq=max_exp_avg_sq)
    for name, t in (("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        if t is None:
            raise TypeError(f"adam_step: {name} must be a Tensor, got None")
    _kernels(param.device).adam_step(param._data, grad._data, exp_avg._data, exp_avg_sq._data,
                                     None if max_exp_avg_sq is None else max_exp_avg_sq._data, int(step), float(lr),
                                     float(beta1), float(beta2), float(eps), float(weight_decay), bool(amsgrad),
                                     bool(decoupled))


__all__ = ["sgd_step", "adam_step"]
