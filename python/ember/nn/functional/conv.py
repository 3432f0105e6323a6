"""Convolutions: conv2d and conv1d (as conv2d with H = 1), torch.nn.functional semantics.

Forward and the three backward kernels (data, weight, bias) are ember._C / ember._cuda
kernels; this module checks the arguments, settles padding, and wires autograd.
"""
import numbers

from ...autograd import Function
from ...tensor import Tensor, _check_same_device, _empty, _kernels


def _int_tuple(v, n, name, op):
    """An int or a sequence of n ints, as a tuple of n Python ints."""
    if isinstance(v, (bool, str)):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    try:
        t = tuple(v)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}") from None
    if len(t) != n or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in t):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    return tuple(int(i) for i in t)


def _check_tensor(t, name, op):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


def _geometry(x_shape, w_shape, stride, padding, dilation, groups, op):
    """Validated (stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w,
    groups) for x (N,C,H,W) and weight (K,C/groups,R,S)."""
    stride = _int_tuple(stride, 2, "stride", op)
    dilation = _int_tuple(dilation, 2, "dilation", op)
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be >= 1, got {dilation}")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    if C % groups or K % groups:
        raise ValueError(f"{op}: groups={groups} must divide both in_channels ({C}) and out_channels ({K})")
    if Cg * groups != C:
        raise ValueError(f"{op}: weight of shape {tuple(w_shape)} expects {Cg * groups} input channels "
                         f"(weight.shape[1] * groups), but the input has {C}")
    if K == 0 or R == 0 or S == 0:
        raise ValueError(f"{op}: weight of shape {tuple(w_shape)} has a zero-size dimension")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
            # total padding d*(k-1) per dim; an odd total puts the extra row/column at the end (torch)
            th, tw = dilation[0] * (R - 1), dilation[1] * (S - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple of 2 ints, got {padding!r}")
    else:
        ph, pw = _int_tuple(padding, 2, "padding", op)
        if ph < 0 or pw < 0:
            raise ValueError(f"{op}: padding must be >= 0, got {(ph, pw)}")
        pads = (ph, ph, pw, pw)
    eh, ew = dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    if eh > Hp or ew > Wp:
        raise ValueError(f"{op}: kernel size ({R}, {S}) with dilation {dilation} spans ({eh}, {ew}), which is "
                         f"larger than the padded input ({Hp}, {Wp})")
    return stride + pads + dilation + (groups,)


def _out_shape(x_shape, w_shape, geo):
    sh, sw, pt, pb, pl, pr, dh, dw, _ = geo
    H, W = x_shape[2] + pt + pb, x_shape[3] + pl + pr
    return (x_shape[0], w_shape[0], (H - dh * (w_shape[2] - 1) - 1) // sh + 1, (W - dw * (w_shape[3] - 1) - 1) // sw + 1)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, geo):
        ctx.needs = (x.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)
        x, weight = x.contiguous(), weight.contiguous()
        bias = bias.contiguous() if bias is not None else None
        out = _empty(_out_shape(x.shape, weight.shape, geo), x.dtype, x.device)
        _kernels(x.device).conv2d_forward(x._data, weight._data, None if bias is None else bias._data, out._data,
                                          list(geo))
        ctx.save_for_backward(x, weight)
        ctx.geo = geo
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        g = g.contiguous()
        k = _kernels(g.device)
        gx = gw = gb = None
        if ctx.needs[0]:
            gx = _empty(x.shape, x.dtype, x.device)
            k.conv2d_backward_data(g._data, weight._data, gx._data, list(ctx.geo))
        if ctx.needs[1]:
            gw = _empty(weight.shape, weight.dtype, weight.device)
            k.conv2d_backward_weight(x._data, g._data, gw._data, list(ctx.geo))
        if ctx.needs[2]:
            gb = _empty((weight.shape[0],), weight.dtype, weight.device)
            k.conv2d_backward_bias(g._data, gb._data)
        return gx, gw, gb, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) of input (N,C,H,W) or (C,H,W) with weight
    (K,C/groups,R,S), as torch.nn.functional.conv2d. padding: int, (h, w), 'valid' or
    'same' (stride 1 only)."""
    op = "conv2d"
    _check_tensor(input, "input", op)
    _check_tensor(weight, "weight", op)
    if bias is not None:
        _check_tensor(bias, "bias", op)
        _check_same_device(op, input, weight, bias)
    else:
        _check_same_device(op, input, weight)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C,H,W) or 4-D (N,C,H,W) input, got shape {tuple(input.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(weight.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be float32 or float64, got {input.dtype.name}")
    if weight.dtype != input.dtype:
        raise TypeError(f"{op}: input ({input.dtype.name}) and weight ({weight.dtype.name}) must have the same dtype")
    if bias is not None:
        if bias.dtype != input.dtype:
            raise TypeError(f"{op}: bias ({bias.dtype.name}) must have the input's dtype ({input.dtype.name})")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},) (out_channels), "
                             f"got {tuple(bias.shape)}")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    geo = _geometry(x.shape, weight.shape, stride, padding, dilation, groups, op)
    out = Conv2d.apply(x, weight, bias, geo)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of input (N,C,L) or (C,L) with weight (K,C/groups,R), as
    torch.nn.functional.conv1d; runs as conv2d over (N,C,1,L)."""
    op = "conv1d"
    _check_tensor(input, "input", op)
    _check_tensor(weight, "weight", op)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D (C,L) or 3-D (N,C,L) input, got shape {tuple(input.shape)}")
    if weight.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D weight (out_channels, in_channels/groups, kL), "
                         f"got shape {tuple(weight.shape)}")
    stride = (1,) + _int_tuple(stride, 1, "stride", op)
    dilation = (1,) + _int_tuple(dilation, 1, "dilation", op)
    if not isinstance(padding, str):
        padding = (0,) + _int_tuple(padding, 1, "padding", op)
    out = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, stride, padding, dilation, groups)
    return out.squeeze(-2)
