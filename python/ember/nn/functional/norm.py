"""Batch normalization (torch.nn.functional.batch_norm) over ember's fused kernels:
one kernel computes the batch statistics and normalizes, one computes dx, dweight and
dbias. The kernels see x as (N, C, S), S the product of the spatial dims."""
import numbers

from ...autograd import Function
from ...tensor import Tensor, _empty, _kernels


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _arr(t):
    return None if t is None else t._data


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        N, C = x.shape[0], x.shape[1]
        S = _prod(x.shape[2:])
        x = x.contiguous()
        out = _empty(x.shape, x.dtype, x.device)
        save_mean = _empty((C,), x.dtype, x.device)
        save_invstd = _empty((C,), x.dtype, x.device)
        # In training the kernel updates the running stats it is given; momentum=None
        # means "do not update", so they are not passed.
        update = not training or momentum is not None
        _kernels(x.device).batch_norm_forward(
            x._data.reshape(N, C, S), _arr(weight), _arr(bias),
            _arr(running_mean) if update else None, _arr(running_var) if update else None,
            out._data.reshape(N, C, S), save_mean._data, save_invstd._data,
            bool(training), float(momentum or 0.0), float(eps))
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.training = bool(training)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, save_mean, save_invstd = ctx.saved_tensors
        N, C = x.shape[0], x.shape[1]
        S = _prod(x.shape[2:])
        g = g.contiguous()
        dx = _empty(x.shape, x.dtype, x.device)
        dw = _empty((C,), x.dtype, x.device) if weight is not None else None
        db = _empty((C,), x.dtype, x.device) if ctx.has_bias else None
        _kernels(x.device).batch_norm_backward(
            g._data.reshape(N, C, S), x._data.reshape(N, C, S), save_mean._data, save_invstd._data,
            _arr(weight), ctx.training, dx._data.reshape(N, C, S), _arr(dw), _arr(db))
        return dx, dw, db, None, None, None, None, None


def _check_channel_tensor(t, name, x, C):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"batch_norm: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.device != x.device:
        raise RuntimeError(f"batch_norm: expected all tensors on the same device, {name} is on {t.device} "
                           f"and input on {x.device}")
    if t.dtype != x.dtype:
        raise TypeError(f"batch_norm: {name} must have the input's dtype {x.dtype.name}, got {t.dtype.name}")
    if tuple(t.shape) != (C,):
        raise ValueError(f"batch_norm: {name} must have shape ({C},) (one value per channel of input "
                         f"{tuple(x.shape)}), got {tuple(t.shape)}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over dim 1 of input (N, C) or (N, C, *spatial), as torch.

    training: normalize with the batch mean and biased variance and, when running stats
    are given and momentum is not None, update them in place:
    running = (1 - momentum) * running + momentum * batch_stat (unbiased variance).
    momentum=None leaves the running stats untouched (nn.BatchNorm computes its own
    cumulative-average factor and passes it as momentum).
    eval: normalize with running_mean and running_var (required)."""
    x = input
    if not isinstance(x, Tensor):
        raise TypeError(f"batch_norm: input must be a Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"batch_norm: input must be float32 or float64, got {x.dtype.name}")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, *spatial), got shape {tuple(x.shape)}")
    C = x.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"), (bias, "bias")):
        _check_channel_tensor(t, name, x, C)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both be None")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)):
        raise TypeError(f"batch_norm: momentum must be a float or None, got {type(momentum).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"batch_norm: eps must be a non-negative number, got {eps!r}")
    if training and _prod(x.shape) // max(C, 1) == 1 and C > 0:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
    return BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training), momentum, float(eps))


__all__ = ["batch_norm"]
