"""Activations and softmax, PyTorch's torch.nn.functional names and semantics.

Each op is an autograd Function whose forward and backward are our kernels
(csrc/cpu/activation.cpp): relu/sigmoid/tanh differentiate from their output,
leaky_relu/gelu from their input, softmax/log_softmax from their output.
Importing this module also gives Tensor the methods .relu(), .sigmoid(), .tanh(),
.softmax(dim) and .log_softmax(dim).
"""
import warnings

import numpy as np

from ... import autograd
from ... import dtypes as D
from ...autograd import Function
from ...functional import _cast, normalize_axes, to_dtype
from ..._backend import _C
from ...tensor import Tensor, _kernels

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]


def _check_tensor(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")


def _float_input(x, name, promote):
    """x as a float tensor: ints/bools are promoted to float32 where PyTorch does
    (sigmoid, tanh), refused elsewhere."""
    _check_tensor(x, name)
    if x._data.dtype.kind == "f":  # (x.dtype would build an ember dtype: slow per call)
        return x
    if promote:
        return _cast(x, D.float32)
    raise TypeError(f"{name}: expected a float32 or float64 tensor, got {x.dtype.name}; cast with .float()")


def _new_like(x):
    """An uninitialized C-contiguous tensor of x's shape, dtype and device. (The small-op
    path: ember's generic _empty re-derives and re-checks dtype, shape and size.)"""
    data = x._data
    xp = np if isinstance(data, np.ndarray) else x._xp()
    return Tensor._wrap(xp.empty(data.shape, data.dtype))


def _kernels_of(x):
    return _C if isinstance(x._data, np.ndarray) else _kernels(x.device)


def _run(kernel, x, *args):
    out = _new_like(x)
    getattr(_kernels_of(x), kernel)(x._data, *args, out._data)
    return out


def _run_backward(kernel, g, saved, *args):
    if g._data.dtype != saved._data.dtype:
        g = _cast(g, saved.dtype)
    gx = _new_like(saved)
    getattr(_kernels_of(saved), kernel)(g._data, saved._data, *args, gx._data)
    return gx


def _inplace(x, result, name):
    """Write result into x (inplace=True); only outside autograd, which cannot
    rewrite a recorded graph."""
    if autograd.is_grad_enabled() and x.requires_grad:
        raise RuntimeError(f"{name}(inplace=True): the input requires grad; in-place activations are supported "
                           "only under no_grad or on tensors that do not require grad (use inplace=False)")
    _kernels(x.device).copy(result._data, x._data)
    return x


# ---------------------------------------------------------------- elementwise


class _SavedOutput(Function):
    kernel = None

    @classmethod
    def forward(cls, ctx, x):
        out = _run(cls.kernel, x)
        ctx.save_for_backward(out)
        return out

    @classmethod
    def backward(cls, ctx, g):
        (out,) = ctx.saved_tensors
        return _run_backward(cls.kernel + "_backward", g, out)


class Relu(_SavedOutput):
    kernel = "relu"


class Sigmoid(_SavedOutput):
    kernel = "sigmoid"


class Tanh(_SavedOutput):
    kernel = "tanh"


class LeakyRelu(Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return _run("leaky_relu", x, negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _run_backward("leaky_relu_backward", g, x, ctx.negative_slope), None


class Gelu(Function):
    @staticmethod
    def forward(ctx, x, approximate_tanh):
        ctx.save_for_backward(x)
        ctx.approximate_tanh = approximate_tanh
        return _run("gelu", x, approximate_tanh)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _run_backward("gelu_backward", g, x, ctx.approximate_tanh), None


def relu(input, inplace=False):
    x = _float_input(input, "relu", False)
    out = Relu.apply(x)
    return _inplace(input, out, "relu") if inplace else out


def leaky_relu(input, negative_slope=0.01, inplace=False):
    x = _float_input(input, "leaky_relu", False)
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {type(negative_slope).__name__}")
    out = LeakyRelu.apply(x, float(negative_slope))
    return _inplace(input, out, "leaky_relu") if inplace else out


def sigmoid(input):
    return Sigmoid.apply(_float_input(input, "sigmoid", True))


def tanh(input):
    return Tanh.apply(_float_input(input, "tanh", True))


def gelu(input, approximate="none"):
    x = _float_input(input, "gelu", False)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(x, approximate == "tanh")


# ---------------------------------------------------------------- softmax


class _SoftmaxBase(Function):
    kernel = None

    @classmethod
    def forward(cls, ctx, x, dim):
        out = _run(cls.kernel, x, dim)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @classmethod
    def backward(cls, ctx, g):
        (out,) = ctx.saved_tensors
        return _run_backward(cls.kernel + "_backward", g, out, ctx.dim), None


class Softmax(_SoftmaxBase):
    kernel = "softmax"


class LogSoftmax(_SoftmaxBase):
    kernel = "log_softmax"


def _softmax_dim(x, dim, name):
    if dim is None:  # PyTorch's legacy implicit choice, with its warning
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=3)
        return 0 if x.ndim in (0, 1, 3) else 1
    if isinstance(dim, bool) or not isinstance(dim, int):
        try:
            dim = dim.__index__()
        except AttributeError:
            raise TypeError(f"{name}: dim must be an int, got {type(dim).__name__}") from None
    (d,) = normalize_axes(dim, x.ndim, name) or (0,)
    return d


def _softmax(fn, input, dim, dtype, name):
    if dtype is None and type(dim) is int and type(input) is Tensor and input._data.dtype.kind == "f":
        nd = input._data.ndim  # the common call, checked inline: this is most of a small softmax's time
        if -nd <= dim < nd:
            return fn.apply(input, dim % nd)
    _check_tensor(input, name)
    x = input
    if dtype is not None:
        x = to_dtype(x, dtype)
    x = _float_input(x, name, False)
    return fn.apply(x, _softmax_dim(x, dim, name))


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _softmax(Softmax, input, dim, dtype, "softmax")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    return _softmax(LogSoftmax, input, dim, dtype, "log_softmax")


# ---------------------------------------------------------------- Tensor methods

Tensor.relu = lambda self: relu(self)
Tensor.sigmoid = lambda self: sigmoid(self)
Tensor.tanh = lambda self: tanh(self)
Tensor.softmax = lambda self, dim, dtype=None: softmax(self, dim, dtype=dtype)
Tensor.log_softmax = lambda self, dim, dtype=None: log_softmax(self, dim, dtype=dtype)
