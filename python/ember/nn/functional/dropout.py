"""Dropout (torch.nn.functional.dropout) with a counter-based generator: the mask of
element i depends only on (seed, offset, i) of ember.default_generator through
Philox4x32-10 (csrc/philox.h), so CPU and CUDA draw the same mask for one seed. Each
call advances the generator's offset by the randoms it used, rounded up to a multiple of 4.

The keep-mask is stored (1 byte per element) for backward: backward is then one
streaming multiply, cheaper than regenerating 10 Philox rounds per 4 elements, and it
does not depend on the generator state at backward time."""
import numbers

from ... import autograd
from ... import dtypes as D
from ...autograd import Function
from ...tensor import Tensor, _empty, _kernels, default_generator


def _draw(n):
    """(seed, offset) for a call that uses n randoms; advances the default generator."""
    g = default_generator  # manual_seed and set_state reseed this object in place
    seed, offset = g.seed, g.offset
    g.offset = offset + (n + 3) // 4 * 4
    return seed, offset


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p, keep_mask):
        x = x.contiguous()
        out = _empty(x.shape, x.dtype, x.device)
        mask = _empty(x.shape, D.bool_, x.device) if keep_mask else None
        seed, offset = _draw(x.numel())
        _kernels(x.device).dropout_forward(x._data, p, seed, offset, out._data, None if mask is None else mask._data)
        ctx.mask, ctx.p = mask, p
        return out

    @staticmethod
    def backward(ctx, g):
        g = g.contiguous()
        gi = _empty(g.shape, g.dtype, g.device)
        _kernels(g.device).dropout_backward(g._data, ctx.mask._data, ctx.p, gi._data)
        return gi, None, None


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (training);
    the identity when training=False. inplace=True overwrites input (only for a tensor
    that autograd does not track)."""
    x = input
    if not isinstance(x, Tensor):
        raise TypeError(f"dropout: input must be a Tensor, got {type(x).__name__}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout: p must be a number, got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"dropout: input must be float32 or float64, got {x.dtype.name}")
    if not training:
        return x
    if inplace:
        x._check_inplace("dropout_")
        if not x.is_contiguous():
            raise ValueError("dropout: inplace=True needs a contiguous input")
        seed, offset = _draw(x.numel())
        _kernels(x.device).dropout_forward(x._data, p, seed, offset, x._data, None)
        return x
    keep_mask = autograd.is_grad_enabled() and x.requires_grad
    return Dropout.apply(x, p, keep_mask)


__all__ = ["dropout"]
