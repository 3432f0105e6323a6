"""Losses, PyTorch's torch.nn.functional names and semantics: cross_entropy (one fused
softmax + NLL kernel; class indices or class probabilities), nll_loss, mse_loss,
binary_cross_entropy_with_logits.

Each kernel writes the unreduced loss; 'sum' and 'mean' are our sum kernel and a
division. For the class-indexed losses 'mean' divides by the total weight of the
non-ignored targets (the kernel writes it as a 0-d tensor), as PyTorch does; with
probability targets it divides by the number of samples (N * d1 * ...), as PyTorch does.
"""
import numpy as np

from ... import dtypes as D
from ...autograd import Function
from ...functional import _cast, broadcast_shapes, div, reshape, sum_to_shape, to_dtype
from ...functional import sum as _sum
from ...tensor import Tensor, _empty, _kernels, _check_same_device

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, size_average, reduce, name):
    if size_average is not None or reduce is not None:  # PyTorch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")
    return reduction


def _check_float(x, name, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name}: {what} must be float32 or float64, got {x.dtype.name}")


def _reduce(loss, weight_sum, reduction):
    """loss (any shape) reduced; weight_sum is the 'mean' divisor (a 0-d tensor or a number)."""
    if reduction == "none":
        return loss
    total = _sum(loss)
    return div(total, weight_sum) if reduction == "mean" else total


def _grad_per_element(g, shape, weight_sum, reduction):
    """The upstream gradient as an array of `shape` (a stride-0 view for a reduced loss)."""
    if reduction == "none":
        return g._data
    if reduction == "mean":
        g = div(g, weight_sum)
    return g._xp().broadcast_to(g._data, shape)


# ---------------------------------------------------------------- class-indexed losses


def _class_inputs(input, target, weight, name):
    """Checked (input, target, weight) and the (N, C, K) the kernels see them as: (C,) is
    one sample, (N, C, d1, ...) has K = d1 * ... positions per sample."""
    _check_float(input, name)
    if not isinstance(target, Tensor):
        raise TypeError(f"{name}: target must be a Tensor, got {type(target).__name__}")
    _check_same_device(name, input, target, *([weight] if isinstance(weight, Tensor) else []))
    if target.dtype != D.int64:
        raise TypeError(f"{name}: target must be int64 class indices, got {target.dtype.name}")
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have at least 1 dimension (C,) or (N, C, ...), got a 0-d tensor")
    if input.ndim == 1:  # unbatched (C,) with a 0-d target
        if target.ndim != 0:
            raise ValueError(f"{name}: for input of shape {tuple(input.shape)} (unbatched), target must be 0-d, "
                             f"got shape {tuple(target.shape)}")
        return input, target, _class_weight(weight, input.shape[0], input.dtype, name), (1, input.shape[0], 1)
    expect = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expect:
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match input shape "
                         f"{tuple(input.shape)} (expected {expect})")
    n, c = input.shape[:2]
    k = int(np.prod(input.shape[2:])) if input.ndim > 2 else 1
    return input, target, _class_weight(weight, c, input.dtype, name), (n, c, k)


def _class_weight(weight, c, dtype, name):
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{name}: weight must be a Tensor or None, got {type(weight).__name__}")
    if weight.ndim != 1 or weight.shape[0] != c:
        raise ValueError(f"{name}: weight must have shape ({c},), one per class, got {tuple(weight.shape)}")
    return _cast(weight, dtype)


def _as_ncK(x, t, nck):
    """x as (N, C, K) and t as (N, K) arrays: views (a copy by our kernel only when x's
    strides cannot be viewed that way). Outside autograd: the Functions take the
    original tensors and return gradients of their shapes, so no reshape node (and no
    copy of the gradient through it) is recorded."""
    n, c, k = nck
    return reshape(x, nck)._data, reshape(t, (n, k))._data


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx, input, target, weight, nck, ignore_index, label_smoothing, reduction):
        n, c, k = nck
        x, t = _as_ncK(input, target, nck)
        loss = _empty((n, k), input.dtype, input.device)
        stats = _empty((n, k, 2), input.dtype, input.device)
        weight_sum = _empty((), input.dtype, input.device)
        _kernels(input.device).cross_entropy(x, t, None if weight is None else weight._data, ignore_index,
                                             label_smoothing, loss._data, stats._data, weight_sum._data)
        ctx.save_for_backward(Tensor._wrap(x), Tensor._wrap(t), weight, stats, weight_sum)
        ctx.args = (input.shape, ignore_index, label_smoothing, reduction)
        return _reduce(loss, weight_sum, reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, weight, stats, weight_sum = ctx.saved_tensors
        shape, ignore_index, label_smoothing, reduction = ctx.args
        n, c, k = x.shape
        g = _cast(g, x.dtype)
        gx = _empty(shape, x.dtype, x.device)
        _kernels(x.device).cross_entropy_backward(
            x._data, t._data, None if weight is None else weight._data, stats._data,
            _grad_per_element(g, (n, k), weight_sum, reduction), ignore_index, label_smoothing,
            gx._data.reshape(x.shape))
        return gx, None, None, None, None, None, None


class CrossEntropyProbs(Function):
    """Probability targets: input and target (N, C, d1, ...) seen as (N, C, K)."""

    @staticmethod
    def forward(ctx, input, target, weight, nck, label_smoothing, reduction):
        n, c, k = nck
        x, t = reshape(input, nck)._data, reshape(target, nck)._data
        loss = _empty((n, k), input.dtype, input.device)
        stats = _empty((n, k, 2), input.dtype, input.device)
        _kernels(input.device).cross_entropy_probs(x, t, None if weight is None else weight._data, label_smoothing,
                                                   loss._data, stats._data)
        ctx.save_for_backward(Tensor._wrap(x), Tensor._wrap(t), weight, stats)
        ctx.args = (input.shape, label_smoothing, reduction, target.requires_grad)
        return _reduce(loss, float(n * k), reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, weight, stats = ctx.saved_tensors
        shape, label_smoothing, reduction, target_grad = ctx.args
        n, c, k = x.shape
        g = _cast(g, x.dtype)
        gx = _empty(shape, x.dtype, x.device)
        gt = _empty(shape, x.dtype, x.device) if target_grad else None
        _kernels(x.device).cross_entropy_probs_backward(
            x._data, t._data, None if weight is None else weight._data, stats._data,
            _grad_per_element(g, (n, k), float(n * k), reduction), label_smoothing, gx._data.reshape(x.shape),
            None if gt is None else gt._data.reshape(x.shape))
        return gx, gt, None, None, None, None


def _cross_entropy_probs(input, target, weight, ignore_index, label_smoothing, reduction):
    """cross_entropy with a float target of the input's shape: class probabilities."""
    name = "cross_entropy"
    _check_same_device(name, input, target, *([weight] if isinstance(weight, Tensor) else []))
    if ignore_index >= 0:  # PyTorch's rule: a non-negative ignore_index would silently do nothing
        raise ValueError(f"{name}: ignore_index={ignore_index} is not supported with class-probability targets")
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have at least 1 dimension (C,) or (N, C, ...), got a 0-d tensor")
    if input.ndim == 1:  # unbatched (C,)
        nck = (1, input.shape[0], 1)
    else:
        nck = (input.shape[0], input.shape[1], int(np.prod(input.shape[2:])) if input.ndim > 2 else 1)
    w = _class_weight(weight, nck[1], input.dtype, name)
    out = CrossEntropyProbs.apply(input, to_dtype(target, input.dtype), w, nck, float(label_smoothing), reduction)
    if reduction != "none":
        return out
    return reshape(out, () if input.ndim == 1 else (input.shape[0],) + tuple(input.shape[2:]))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """target: int64 class indices (N, d1, ...), or class probabilities of the input's
    shape (N, C, d1, ...), float, each (n, :, ...) summing to 1 (not checked, as PyTorch)."""
    reduction = _reduction(reduction, size_average, reduce, "cross_entropy")
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if (isinstance(input, Tensor) and isinstance(target, Tensor) and input.dtype.is_floating_point
            and target.dtype.is_floating_point and tuple(target.shape) == tuple(input.shape)):
        return _cross_entropy_probs(input, target, weight, int(ignore_index), label_smoothing, reduction)
    x, t, w, nck = _class_inputs(input, target, weight, "cross_entropy")
    out = CrossEntropy.apply(x, t, w, nck, int(ignore_index), float(label_smoothing), reduction)
    return reshape(out, t.shape) if reduction == "none" else out


class NLLLoss(Function):
    @staticmethod
    def forward(ctx, input, target, weight, nck, ignore_index, reduction):
        n, c, k = nck
        x, t = _as_ncK(input, target, nck)
        loss = _empty((n, k), input.dtype, input.device)
        weight_sum = _empty((), input.dtype, input.device)
        _kernels(input.device).nll_loss(x, t, None if weight is None else weight._data, ignore_index, loss._data,
                                        weight_sum._data)
        ctx.save_for_backward(Tensor._wrap(t), weight, weight_sum)
        ctx.args = (input.shape, nck, input.dtype, ignore_index, reduction)
        return _reduce(loss, weight_sum, reduction)

    @staticmethod
    def backward(ctx, g):
        t, weight, weight_sum = ctx.saved_tensors
        shape, (n, c, k), dtype, ignore_index, reduction = ctx.args
        g = _cast(g, dtype)
        gx = _empty(shape, dtype, g.device)
        _kernels(g.device).nll_loss_backward(t._data, None if weight is None else weight._data,
                                             _grad_per_element(g, (n, k), weight_sum, reduction), ignore_index,
                                             gx._data.reshape(n, c, k))
        return gx, None, None, None, None, None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    reduction = _reduction(reduction, size_average, reduce, "nll_loss")
    x, t, w, nck = _class_inputs(input, target, weight, "nll_loss")
    out = NLLLoss.apply(x, t, w, nck, int(ignore_index), reduction)
    return reshape(out, t.shape) if reduction == "none" else out


# ---------------------------------------------------------------- elementwise losses


class MSELoss(Function):
    @staticmethod
    def forward(ctx, input, target, reduction):
        shape = broadcast_shapes(input.shape, target.shape)
        x = input._xp().broadcast_to(input._data, shape)
        t = target._xp().broadcast_to(_cast(target, input.dtype)._data, shape)
        out = _empty(shape, input.dtype, input.device)
        _kernels(input.device).mse_loss(x, t, out._data)
        ctx.save_for_backward(input, target)
        ctx.args = (shape, reduction, target.requires_grad and target.dtype.is_floating_point)
        return _reduce(out, float(out.numel()), reduction)

    @staticmethod
    def backward(ctx, g):
        input, target = ctx.saved_tensors
        shape, reduction, target_grad = ctx.args
        g = _cast(g, input.dtype)
        x = input._xp().broadcast_to(input._data, shape)
        t = target._xp().broadcast_to(_cast(target, input.dtype)._data, shape)
        numel = int(np.prod(shape)) if shape else 1
        gb = g._data if reduction == "none" else g._xp().broadcast_to(g._data, shape)
        scale = 1.0 / numel if reduction == "mean" and numel else 1.0
        gx = _empty(shape, input.dtype, input.device)
        _kernels(input.device).mse_loss_backward(x, t, gb, scale, gx._data)
        gt = None
        if target_grad:
            gt = _cast(sum_to_shape(-gx, target.shape), target.dtype)
        return sum_to_shape(gx, input.shape), gt, None


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _reduction(reduction, size_average, reduce, "mse_loss")
    _check_float(input, "mse_loss")
    if not isinstance(target, Tensor):
        raise TypeError(f"mse_loss: target must be a Tensor, got {type(target).__name__}")
    _check_same_device("mse_loss", input, target)
    return MSELoss.apply(input, target, reduction)


class BCEWithLogits(Function):
    @staticmethod
    def _operands(input, target, weight, pos_weight):
        xp, shape = input._xp(), input.shape

        def expand(t):
            return xp.broadcast_to(xp.asarray(1, dtype=input.dtype.np) if t is None else t._data, shape)

        return input._data, target._data, expand(weight), expand(pos_weight)

    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction):
        out = _empty(input.shape, input.dtype, input.device)
        _kernels(input.device).binary_cross_entropy_with_logits(
            *BCEWithLogits._operands(input, target, weight, pos_weight), out._data)
        ctx.save_for_backward(input, target, weight, pos_weight)
        ctx.args = (reduction, target.requires_grad)
        return _reduce(out, float(out.numel()), reduction)

    @staticmethod
    def backward(ctx, g):
        input, target, weight, pos_weight = ctx.saved_tensors
        reduction, target_grad = ctx.args
        shape, numel = input.shape, input.numel()
        g = _cast(g, input.dtype)
        gb = g._data if reduction == "none" else g._xp().broadcast_to(g._data, shape)
        scale = 1.0 / numel if reduction == "mean" and numel else 1.0
        gx = _empty(shape, input.dtype, input.device)
        gt = _empty(shape, input.dtype, input.device) if target_grad else None
        _kernels(input.device).binary_cross_entropy_with_logits_backward(
            *BCEWithLogits._operands(input, target, weight, pos_weight), gb, scale, gx._data,
            None if gt is None else gt._data)
        return gx, gt, None, None, None


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(reduction, size_average, reduce, name)
    _check_float(input, name)
    _check_float(target, name, "target")
    _check_same_device(name, input, target, *[t for t in (weight, pos_weight) if isinstance(t, Tensor)])
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    target = to_dtype(target, input.dtype)
    extra = []
    for what, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is not None:
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {what} must be a Tensor or None, got {type(t).__name__}")
            try:
                ok = broadcast_shapes(t.shape, input.shape) == tuple(input.shape)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name}: {what} of shape {tuple(t.shape)} cannot be broadcast to the input shape "
                                 f"{tuple(input.shape)}")
            t = _cast(t, input.dtype)
        extra.append(t)
    return BCEWithLogits.apply(input, target, extra[0], extra[1], reduction)
