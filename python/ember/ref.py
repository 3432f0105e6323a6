"""NumPy reference implementations of every ember kernel, in float64.

Tests compare ember against these; ``ember bench`` times ember against them. Each
takes and returns NumPy arrays and is written for clarity, not speed.
"""
import numpy as np


def _f64(x):
    x = np.asarray(x)
    return x.astype(np.float64) if x.dtype.kind == "f" else x


# ---- elementwise
def add(a, b): return _f64(a) + _f64(b)
def sub(a, b): return _f64(a) - _f64(b)
def mul(a, b): return _f64(a) * _f64(b)
def div(a, b): return _f64(a) / _f64(b)
def maximum(a, b): return np.maximum(_f64(a), _f64(b))
def minimum(a, b): return np.minimum(_f64(a), _f64(b))
def pow(a, b): return np.power(_f64(a), _f64(b))
def eq(a, b): return np.equal(a, b)
def ne(a, b): return np.not_equal(a, b)
def lt(a, b): return np.less(a, b)
def le(a, b): return np.less_equal(a, b)
def gt(a, b): return np.greater(a, b)
def ge(a, b): return np.greater_equal(a, b)
def neg(x): return -_f64(x)
def abs(x): return np.abs(_f64(x))
def exp(x): return np.exp(_f64(x))
def log(x): return np.log(_f64(x))
def sqrt(x): return np.sqrt(_f64(x))
def pow_scalar(x, p): return np.power(_f64(x), p)
def where(cond, a, b): return np.where(cond, _f64(a), _f64(b))


# ---- reductions
def sum(x, axis=None, keepdims=False): return np.sum(_f64(x), axis=axis, keepdims=keepdims)
def mean(x, axis=None, keepdims=False): return np.mean(_f64(x), axis=axis, keepdims=keepdims)
def amax(x, axis=None, keepdims=False): return np.max(_f64(x), axis=axis, keepdims=keepdims)
def amin(x, axis=None, keepdims=False): return np.min(_f64(x), axis=axis, keepdims=keepdims)
def argmax(x, axis=None): return np.argmax(x, axis=axis)
def argmin(x, axis=None): return np.argmin(x, axis=axis)


# ---- gemm
def matmul(a, b, trans_a=False, trans_b=False):
    a, b = _f64(a), _f64(b)
    if trans_a:
        a = np.swapaxes(a, -1, -2)
    if trans_b:
        b = np.swapaxes(b, -1, -2)
    return a @ b


# ---- linear (nn.functional.linear)
def linear(x, weight, bias=None):
    """x (..., in) @ weight (out, in)^T + bias (out,), in float64."""
    y = _f64(x) @ _f64(weight).T
    return y + _f64(bias) if bias is not None else y
# ---- conv2d and pooling (NCHW)
def _conv_pads(padding):
    """(top, bottom, left, right) from an int, a pair (h, w) or a 4-tuple."""
    if np.isscalar(padding):
        return (int(padding),) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _conv_taps(xshape, wshape, stride, padding, dilation):
    """Padded input shape, output size and, per tap (r, s), the slices of the padded
    input that tap reads for every output position."""
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    pt, pb, pl, pr = _conv_pads(padding)
    H, W = xshape[2] + pt + pb, xshape[3] + pl + pr
    R, S = wshape[2], wshape[3]
    P = (H - dh * (R - 1) - 1) // sh + 1
    Q = (W - dw * (S - 1) - 1) // sw + 1
    taps = {(r, s): (slice(r * dh, r * dh + sh * (P - 1) + 1, sh), slice(s * dw, s * dw + sw * (Q - 1) + 1, sw))
            for r in range(R) for s in range(S)}
    return (pt, pb, pl, pr), (H, W), (P, Q), taps


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, k, p, q] = b[k] + sum_{c in k's group, r, s} w[k, c, r, s] x_pad[n, c, p*sh + r*dh, q*sw + s*dw]"""
    x, w = _f64(x), _f64(w)
    (pt, pb, pl, pr), _, (P, Q), taps = _conv_taps(x.shape, w.shape, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    N, K, Cg = x.shape[0], w.shape[0], w.shape[1]
    Kg = K // groups
    out = np.zeros((N, K, P, Q))
    for g in range(groups):
        for (r, s), (hs, ws) in taps.items():
            patch = xp[:, g * Cg:(g + 1) * Cg, hs, ws]  # (N, Cg, P, Q)
            out[:, g * Kg:(g + 1) * Kg] += np.einsum("ncpq,kc->nkpq", patch, w[g * Kg:(g + 1) * Kg, :, r, s])
    if b is not None:
        out += _f64(b)[None, :, None, None]
    return out


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """grad of sum(conv2d(x, w) * dy) with respect to x."""
    dy, w = _f64(dy), _f64(w)
    (pt, pb, pl, pr), (H, W), _, taps = _conv_taps(x_shape, w.shape, stride, padding, dilation)
    K, Cg = w.shape[0], w.shape[1]
    Kg = K // groups
    dxp = np.zeros((x_shape[0], x_shape[1], H, W))
    for g in range(groups):
        for (r, s), (hs, ws) in taps.items():
            dxp[:, g * Cg:(g + 1) * Cg, hs, ws] += np.einsum("nkpq,kc->ncpq", dy[:, g * Kg:(g + 1) * Kg],
                                                             w[g * Kg:(g + 1) * Kg, :, r, s])
    return dxp[:, :, pt:H - pb, pl:W - pr]


def conv2d_backward_weight(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """grad of sum(conv2d(x, w) * dy) with respect to w."""
    x, dy = _f64(x), _f64(dy)
    (pt, pb, pl, pr), _, _, taps = _conv_taps(x.shape, w_shape, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    K, Cg = w_shape[0], w_shape[1]
    Kg = K // groups
    dw = np.zeros(w_shape)
    for g in range(groups):
        for (r, s), (hs, ws) in taps.items():
            dw[g * Kg:(g + 1) * Kg, :, r, s] = np.einsum("nkpq,ncpq->kc", dy[:, g * Kg:(g + 1) * Kg],
                                                         xp[:, g * Cg:(g + 1) * Cg, hs, ws])
    return dw


def conv2d_backward_bias(dy):
    return _f64(dy).sum(axis=(0, 2, 3))


def _pool_out(n, k, s, p, ceil_mode):
    out = (-(-(n + 2 * p - k) // s) if ceil_mode else (n + 2 * p - k) // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_windows(shape, kernel_size, stride, padding, ceil_mode):
    """Per output (p, q): the window's row and column ranges clipped to the input, and the
    unclipped-but-inside-padding size (the count_include_pad divisor)."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    H, W = shape[-2:]
    P, Q = _pool_out(H, kh, sh, ph, ceil_mode), _pool_out(W, kw, sw, pw, ceil_mode)
    wins = {}
    for p in range(P):
        h0 = p * sh - ph
        h1 = min(h0 + kh, H + ph)
        for q in range(Q):
            w0 = q * sw - pw
            w1 = min(w0 + kw, W + pw)
            wins[p, q] = (max(h0, 0), min(h1, H), max(w0, 0), min(w1, W), (h1 - h0) * (w1 - w0))
    return (P, Q), wins


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """(out, indices): max over each window; indices = h*W + w of the first maximum (NaN wins)."""
    x = _f64(x)
    (P, Q), wins = _pool_windows(x.shape, kernel_size, stride or kernel_size, padding, ceil_mode)
    N, C, H, W = x.shape
    out = np.zeros((N, C, P, Q))
    idx = np.zeros((N, C, P, Q), dtype=np.int64)
    for (p, q), (hs, he, ws, we, _) in wins.items():
        win = x[:, :, hs:he, ws:we].reshape(N, C, (he - hs) * (we - ws))
        nan = np.isnan(win)
        # first maximum; with NaN present, the last NaN (torch's kernel keeps updating on NaN)
        j = np.where(nan.any(-1), win.shape[-1] - 1 - np.argmax(nan[..., ::-1], -1), np.argmax(win, -1))
        out[:, :, p, q] = np.take_along_axis(win, j[..., None], -1)[..., 0]
        idx[:, :, p, q] = (hs + j // (we - ws)) * W + ws + j % (we - ws)
    return out, idx


def max_pool2d_backward(dy, indices, x_shape):
    dy = _f64(dy)
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W))
    PQ = dy.shape[2] * dy.shape[3]
    np.add.at(dx, (np.arange(N * C)[:, None], indices.reshape(N * C, PQ)), dy.reshape(N * C, PQ))
    return dx.reshape(x_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x = _f64(x)
    (P, Q), wins = _pool_windows(x.shape, kernel_size, stride or kernel_size, padding, ceil_mode)
    out = np.zeros(x.shape[:2] + (P, Q))
    for (p, q), (hs, he, ws, we, full) in wins.items():
        div = full if count_include_pad else (he - hs) * (we - ws)
        out[:, :, p, q] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / div
    return out


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    dy = _f64(dy)
    _, wins = _pool_windows(x_shape, kernel_size, stride or kernel_size, padding, ceil_mode)
    dx = np.zeros(x_shape)
    for (p, q), (hs, he, ws, we, full) in wins.items():
        div = full if count_include_pad else (he - hs) * (we - ws)
        dx[:, :, hs:he, ws:we] += dy[:, :, p, q][:, :, None, None] / div
    return dx


def _adaptive_windows(n, out):
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def adaptive_avg_pool2d(x, output_size):
    x = _f64(x)
    P, Q = _pair(output_size)
    out = np.zeros(x.shape[:2] + (P, Q))
    for p, (hs, he) in enumerate(_adaptive_windows(x.shape[2], P)):
        for q, (ws, we) in enumerate(_adaptive_windows(x.shape[3], Q)):
            out[:, :, p, q] = x[:, :, hs:he, ws:we].mean(axis=(2, 3))
    return out


def adaptive_avg_pool2d_backward(dy, x_shape):
    dy = _f64(dy)
    P, Q = dy.shape[2:]
    dx = np.zeros(x_shape)
    for p, (hs, he) in enumerate(_adaptive_windows(x_shape[2], P)):
        for q, (ws, we) in enumerate(_adaptive_windows(x_shape[3], Q)):
            dx[:, :, hs:he, ws:we] += dy[:, :, p, q][:, :, None, None] / ((he - hs) * (we - ws))
    return dx
