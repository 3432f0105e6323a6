"""F.linear: y = x @ weight^T + bias, on the GEMM kernel with its transpose flags (no
transposed copy is ever made).

    x (..., in)   weight (out, in)   bias (out,) or None   ->   y (..., out)
    backward:  dx = g @ W          (N,out) @ (out,in)
               dW = g^T @ x        trans_a: (out,N)^T-view of g times x (N,in)
               db = sum of g over the N = prod(...) rows
"""
from ...autograd import Function
from ...functional import _check_same_device, sum as _sum
from ...tensor import Tensor, _empty, _kernels


def _rows(t, n_in):
    """t (..., n_in) as a 2-D (N, n_in) array whose rows may be strided but whose last
    dim is contiguous, as the GEMM kernel requires (copied only when it is not)."""
    data = t._data
    if data.ndim == 2 and (data.strides[-1] == data.itemsize or data.shape[-1] <= 1):
        return data
    return t.contiguous()._data.reshape(-1, n_in)


class Linear(Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        n_out, n_in = weight.shape
        x2 = _rows(x, n_in)
        w = _rows(weight, n_in)
        out = _empty(tuple(x.shape[:-1]) + (n_out,), x.dtype, x.device)
        o2 = out._data.reshape(-1, n_out)
        k = _kernels(x.device)
        if bias is not None:
            # out = bias (broadcast over rows), then out += x @ W^T in the GEMM (beta = 1)
            k.copy(bias._xp().broadcast_to(bias._data, o2.shape), o2)
            k.matmul(x2, w, o2, False, True, 1.0, 1.0)
        else:
            k.matmul(x2, w, o2, False, True, 1.0, 0.0)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        n_out, n_in = weight.shape
        k = _kernels(g.device)
        g2 = _rows(g, n_out)
        gx = gw = gb = None
        if x.requires_grad:
            gx = _empty(x.shape, g.dtype, g.device)
            k.matmul(g2, _rows(weight, n_in), gx._data.reshape(-1, n_in), False, False, 1.0, 0.0)
        if weight.requires_grad:
            gw = _empty((n_out, n_in), g.dtype, g.device)
            k.matmul(g2, _rows(x, n_in), gw._data, True, False, 1.0, 0.0)
        if ctx.has_bias:
            gb = _sum(Tensor._wrap(g2), 0)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """y = input @ weight^T + bias, as torch.nn.functional.linear.

    input (..., in_features), weight (out_features, in_features), bias (out_features,)."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"linear: bias must be a Tensor or None, got {type(bias).__name__}")
    _check_same_device("linear", input, weight, *([bias] if bias is not None else []))
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    if input.ndim < 1:
        raise ValueError("linear: input must have at least 1 dimension (..., in_features)")
    n_out, n_in = weight.shape
    if input.shape[-1] != n_in:
        raise ValueError(f"linear: input's last dim {input.shape[-1]} does not match weight's in_features {n_in} "
                         f"(input {tuple(input.shape)}, weight {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (n_out,):
        raise ValueError(f"linear: bias must have shape ({n_out},), got {tuple(bias.shape)}")
    dts = [input.dtype, weight.dtype] + ([bias.dtype] if bias is not None else [])
    if any(not d.is_floating_point for d in dts):
        raise TypeError("linear: expected float32 or float64 tensors, got " + ", ".join(d.name for d in dts))
    if len(set(dts)) != 1:
        raise TypeError("linear: input, weight and bias must have the same dtype, got " +
                        ", ".join(d.name for d in dts))
    return Linear.apply(input, weight, bias)


__all__ = ["linear"]
