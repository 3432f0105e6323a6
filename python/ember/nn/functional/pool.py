"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d with torch.nn.functional semantics.

Each op's forward and backward is a kernel in ember._C / ember._cuda; max_pool2d keeps the
argmax indices (h*W + w within each plane, as torch) for its backward.
"""
import numbers

from ... import dtypes as D
from ...autograd import Function
from ...tensor import Tensor, _empty, _kernels
from .conv import _int_tuple


def _pool_out(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:  # the last window must start inside the input or left padding
        out -= 1
    return out


def _pool_geometry(x, kernel_size, stride, padding, ceil_mode, op, dilation=1):
    """Kernel geometry (kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode) and the output (P, Q)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C,H,W) or 4-D (N,C,H,W) input, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype.name}")
    k = _int_tuple(kernel_size, 2, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else \
        _int_tuple(stride, 2, "stride", op)
    p = _int_tuple(padding, 2, "padding", op)
    d = _int_tuple(dilation, 2, "dilation", op)
    if min(k) < 1:
        raise ValueError(f"{op}: kernel_size must be >= 1, got {k}")
    if min(s) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {s}")
    if min(p) < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {p}")
    if min(d) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {d}")
    if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
        raise ValueError(f"{op}: padding should be at most half of the kernel size, got padding {p} for kernel {k}")
    H, W = x.shape[-2:]
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    if span[0] > H + 2 * p[0] or span[1] > W + 2 * p[1]:
        raise ValueError(f"{op}: kernel size {k} with dilation {d} spans {span}, larger than the padded input "
                         f"({H + 2 * p[0]}, {W + 2 * p[1]})")
    out_hw = (_pool_out(H, k[0], s[0], p[0], d[0], ceil_mode), _pool_out(W, k[1], s[1], p[1], d[1], ceil_mode))
    return k + s + p + d + (int(bool(ceil_mode)),), out_hw


def _batched(x):
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, indices, geo, out_hw):
        needs_grad = x.requires_grad
        x = x.contiguous()
        out = _empty(x.shape[:2] + out_hw, x.dtype, x.device)
        if indices is None and needs_grad:
            indices = _empty(out.shape, D.int64, x.device)
        _kernels(x.device).max_pool2d_forward(x._data, out._data, None if indices is None else indices._data,
                                              list(geo))
        ctx.indices, ctx.x_shape = indices, x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        gx = _empty(ctx.x_shape, g.dtype, g.device)
        _kernels(g.device).max_pool2d_backward(g.contiguous()._data, ctx.indices._data, gx._data)
        return gx, None, None, None


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows whose taps are `dilation` apart (stride defaults to
    kernel_size; padding at most half the kernel, padded positions never win). With
    return_indices, also the argmax of each window as h*W + w within its (H, W) plane."""
    op = "max_pool2d"
    geo, out_hw = _pool_geometry(input, kernel_size, stride, padding, ceil_mode, op, dilation)
    x, unbatched = _batched(input)
    indices = _empty(x.shape[:2] + out_hw, D.int64, x.device) if return_indices else None
    out = MaxPool2d.apply(x, indices, geo, out_hw)
    if unbatched:
        out = out.squeeze(0)
        indices = indices.squeeze(0) if indices is not None else None
    return (out, indices) if return_indices else out


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, geo, out_hw, count_include_pad, divisor_override):
        x = x.contiguous()
        out = _empty(x.shape[:2] + out_hw, x.dtype, x.device)
        _kernels(x.device).avg_pool2d_forward(x._data, out._data, list(geo), count_include_pad, divisor_override)
        ctx.x_shape, ctx.geo, ctx.cip, ctx.divisor = x.shape, geo, count_include_pad, divisor_override
        return out

    @staticmethod
    def backward(ctx, g):
        gx = _empty(ctx.x_shape, g.dtype, g.device)
        _kernels(g.device).avg_pool2d_backward(g.contiguous()._data, gx._data, list(ctx.geo), ctx.cip, ctx.divisor)
        return gx, None, None, None, None


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows; the divisor is divisor_override if given, else the
    window's size, counting the zero padding inside it when count_include_pad (torch's default)."""
    op = "avg_pool2d"
    if divisor_override is None:
        divisor_override = 0  # the kernels' "none"
    elif isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
        raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
    elif divisor_override < 1:
        raise ValueError(f"{op}: divisor_override must be >= 1, got {divisor_override}")
    geo, out_hw = _pool_geometry(input, kernel_size, stride, padding, ceil_mode, op)
    x, unbatched = _batched(input)
    out = AvgPool2d.apply(x, geo, out_hw, bool(count_include_pad), int(divisor_override))
    return out.squeeze(0) if unbatched else out


class AdaptiveAvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, out_hw):
        x = x.contiguous()
        out = _empty(x.shape[:2] + out_hw, x.dtype, x.device)
        _kernels(x.device).adaptive_avg_pool2d_forward(x._data, out._data)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        gx = _empty(ctx.x_shape, g.dtype, g.device)
        _kernels(g.device).adaptive_avg_pool2d_backward(g.contiguous()._data, gx._data)
        return gx, None


def adaptive_avg_pool2d(input, output_size):
    """Average over output_size windows that tile the input: window i spans rows
    [floor(i*H/P), ceil((i+1)*H/P)). output_size: int, (P, Q), None entries keep the input size."""
    op = "adaptive_avg_pool2d"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C,H,W) or 4-D (N,C,H,W) input, got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be float32 or float64, got {input.dtype.name}")
    H, W = input.shape[-2:]
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be an int or a tuple of 2, got {output_size!r}")
        output_size = tuple(s if s is not None else d for s, d in zip(output_size, (H, W)))
    out_hw = _int_tuple(output_size, 2, "output_size", op)
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output_size must be >= 1, got {out_hw}")
    if H < 1 or W < 1:
        raise ValueError(f"{op}: input spatial size ({H}, {W}) must be non-empty")
    x, unbatched = _batched(input)
    out = AdaptiveAvgPool2d.apply(x, out_hw)
    return out.squeeze(0) if unbatched else out
