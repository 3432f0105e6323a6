"""Thin wrappers over the fused optimizer update kernels (csrc/cpu/optim.cpp,
csrc/cuda/optim.cu), with torch.optim's single-tensor formulas. sgd_step / adam_step
update one parameter; sgd_step_multi / adam_step_multi update a list of parameters in
one call (one parallel region on the CPU, one kernel launch on the GPU), bitwise equal
to calling the single op per parameter. The optimizer classes (SGD, Adam, AdamW) call
the multi ops once per (device, dtype) of each parameter group.

All tensors are updated in place, bypassing autograd (an optimizer step is not part of
any graph); a parameter and its grad and state must share one shape, one float dtype,
one device and be contiguous, and no two of the tensors may share memory."""
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


def _arrays(op, name, tensors, optional=False):
    """The storage arrays of a list of Tensors; a None entry (or list, when `optional`)
    stays None. The kernel module checks the rest (lengths, where a tensor is required, and
    that every array is on its device: a NumPy array in a CUDA call is a TypeError naming
    its list and index)."""
    if optional and tensors is None:
        return None
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list of Tensors, got {type(tensors).__name__}")
    for i, t in enumerate(tensors):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name}[{i}] must be a Tensor, got {type(t).__name__}")
    return [None if t is None else t._data for t in tensors]


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


def sgd_step_multi(params, grads, bufs, *, lr, momentum, dampening, nesterov, weight_decay, first_steps,
                   maximize=False):
    """sgd_step on every params[i] from grads[i] in one call. `bufs` lists the momentum
    buffers (None when momentum == 0); first_steps[i] marks a buffer to set, not blend.
    maximize=True ascends (the gradients are negated inside the kernel)."""
    op = "sgd_step_multi"
    ps = _arrays(op, "params", params)
    if not ps:
        return
    device = params[0].device
    _kernels(device).sgd_step_multi(ps, _arrays(op, "grads", grads),
                                    _arrays(op, "momentum_bufs", bufs, optional=True),
                                    float(lr), float(momentum), float(dampening), bool(nesterov),
                                    float(weight_decay), [bool(f) for f in first_steps], bool(maximize))


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, steps, lr, beta1, beta2, eps,
                    weight_decay, amsgrad, decoupled, maximize=False):
    """adam_step on every params[i] in one call; steps[i] counts this update of params[i].
    max_exp_avg_sqs is used (and required) only when amsgrad. maximize=True ascends."""
    op = "adamw_step_multi" if decoupled else "adam_step_multi"
    ps = _arrays(op, "params", params)
    if not ps:
        return
    device = params[0].device
    _kernels(device).adam_step_multi(ps, _arrays(op, "grads", grads),
                                     _arrays(op, "exp_avgs", exp_avgs),
                                     _arrays(op, "exp_avg_sqs", exp_avg_sqs),
                                     _arrays(op, "max_exp_avg_sqs", max_exp_avg_sqs, optional=True),
                                     [int(s) for s in steps], float(lr), float(beta1), float(beta2), float(eps),
                                     float(weight_decay), bool(amsgrad), bool(decoupled), bool(maximize))


__all__ = ["sgd_step", "adam_step", "sgd_step_multi", "adam_step_multi"]
