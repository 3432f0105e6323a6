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


def _pool_out(n, k, s, p, ceil_mode, d=1):
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
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


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, dilation=1):
    """(out, indices): max over each window (taps `dilation` apart, padding never wins);
    indices = h*W + w of the first maximum in row-major order (with NaN, the last NaN)."""
    x = _f64(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (_pair(v) for v in (kernel_size, stride or kernel_size, padding,
                                                                 dilation))
    N, C, H, W = x.shape
    P, Q = _pool_out(H, kh, sh, ph, ceil_mode, dh), _pool_out(W, kw, sw, pw, ceil_mode, dw)
    out = np.zeros((N, C, P, Q))
    idx = np.zeros((N, C, P, Q), dtype=np.int64)
    for p in range(P):
        rows = [h for h in range(p * sh - ph, p * sh - ph + dh * kh, dh) if 0 <= h < H]
        for q in range(Q):
            cols = [w for w in range(q * sw - pw, q * sw - pw + dw * kw, dw) if 0 <= w < W]
            flat = np.array([h * W + w for h in rows for w in cols])
            win = x.reshape(N, C, H * W)[:, :, flat]
            nan = np.isnan(win)
            # first maximum; with NaN present, the last NaN (torch's kernel keeps updating on NaN)
            j = np.where(nan.any(-1), win.shape[-1] - 1 - np.argmax(nan[..., ::-1], -1), np.argmax(win, -1))
            out[:, :, p, q] = np.take_along_axis(win, j[..., None], -1)[..., 0]
            idx[:, :, p, q] = flat[j]
    return out, idx


def max_pool2d_backward(dy, indices, x_shape):
    dy = _f64(dy)
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W))
    PQ = dy.shape[2] * dy.shape[3]
    np.add.at(dx, (np.arange(N * C)[:, None], indices.reshape(N * C, PQ)), dy.reshape(N * C, PQ))
    return dx.reshape(x_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x = _f64(x)
    (P, Q), wins = _pool_windows(x.shape, kernel_size, stride or kernel_size, padding, ceil_mode)
    out = np.zeros(x.shape[:2] + (P, Q))
    for (p, q), (hs, he, ws, we, full) in wins.items():
        div = divisor_override or (full if count_include_pad else (he - hs) * (we - ws))
        out[:, :, p, q] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / div
    return out


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    dy = _f64(dy)
    _, wins = _pool_windows(x_shape, kernel_size, stride or kernel_size, padding, ceil_mode)
    dx = np.zeros(x_shape)
    for (p, q), (hs, he, ws, we, full) in wins.items():
        div = divisor_override or (full if count_include_pad else (he - hs) * (we - ws))
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
# ---- activations, softmax and losses (float64; erfc from the math module for the
# gelu tails, where 1 + erf(x) would cancel)
_erfc = np.vectorize(__import__("math").erfc, otypes=[np.float64])


def relu(x): return np.where(_f64(x) > 0, _f64(x), np.where(np.isnan(x), np.nan, 0.0))
def relu_backward(g, y): return np.where(_f64(y) <= 0, 0.0, _f64(g))
def leaky_relu(x, negative_slope=0.01): x = _f64(x); return np.where(x > 0, x, x * negative_slope)
def leaky_relu_backward(g, x, negative_slope=0.01): return np.where(_f64(x) > 0, _f64(g), _f64(g) * negative_slope)


def sigmoid(x):
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1.0) / (1.0 + e)


def sigmoid_backward(g, y): y = _f64(y); return _f64(g) * y * (1 - y)
def tanh(x): return np.tanh(_f64(x))
def tanh_backward(g, y): return _f64(g) * (1 - _f64(y) ** 2)


def _gelu_tanh_arg(x): return 2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)


def gelu(x, approximate="none"):
    """x * Phi(x); 'tanh': x * (1 + tanh(u)) / 2 = x * sigmoid(2u)."""
    x = _f64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            return x * sigmoid(_gelu_tanh_arg(x))
        return 0.5 * x * _erfc(-x / np.sqrt(2))


def gelu_backward(g, x, approximate="none"):
    x = _f64(x)
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            a = _gelu_tanh_arg(x)
            s = sigmoid(a)
            return _f64(g) * (s + x * s * sigmoid(-a) * 2 * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2))
        return _f64(g) * (0.5 * _erfc(-x / np.sqrt(2)) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi))


def softmax(x, dim):
    x = _f64(x)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim):
    x = _f64(x)
    z = x - np.max(x, axis=dim, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=dim, keepdims=True))


def softmax_backward(g, y, dim): y = _f64(y); g = _f64(g); return y * (g - (g * y).sum(axis=dim, keepdims=True))
def log_softmax_backward(g, y, dim): g = _f64(g); return g - np.exp(_f64(y)) * g.sum(axis=dim, keepdims=True)


def _reduce_loss(loss, reduction, divisor):
    if reduction == "none":
        return loss
    return loss.sum() / divisor if reduction == "mean" else loss.sum()


def nll_loss(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    """logp (N, C, ...) or (C,), target (N, ...) or (); mean divides by sum of w[target]."""
    logp, target = _f64(logp), np.asarray(target)
    if logp.ndim == 1:  # unbatched: the 'none' loss is 0-d
        out = nll_loss(logp[None], target[None], weight, ignore_index, reduction)
        return out[0] if reduction == "none" else out
    w = np.ones(logp.shape[1]) if weight is None else _f64(weight)
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    picked = np.take_along_axis(logp, t[:, None], axis=1)[:, 0]
    wt = np.where(keep, w[t], 0.0)
    return _reduce_loss(-wt * picked, reduction, wt.sum())


def cross_entropy_probs(logits, target, weight=None, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross_entropy with class-probability targets of the logits' shape:
    -sum_c w_c t'_c log p_c with t' = (1 - eps) t + eps / C; 'mean' divides by the sample
    count (N * d1 * ...), not by the weights."""
    logits, t = _f64(logits), _f64(target)
    if logits.ndim == 1:  # unbatched: the 'none' loss is 0-d
        out = cross_entropy_probs(logits[None], t[None], weight, reduction, label_smoothing)
        return out[0] if reduction == "none" else out
    c = logits.shape[1]
    t = (1 - label_smoothing) * t + label_smoothing / c
    w = np.ones(c) if weight is None else _f64(weight)
    w = w.reshape((1, c) + (1,) * (logits.ndim - 2))
    loss = -(w * t * log_softmax(logits, 1)).sum(axis=1)
    return _reduce_loss(loss, reduction, loss.size)


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross_entropy with class indices: (1 - eps) nll + eps / C * sum_c -w_c log p_c;
    a float target of the logits' shape holds class probabilities (cross_entropy_probs)."""
    if np.issubdtype(np.asarray(target).dtype, np.floating) and np.shape(target) == np.shape(logits):
        return cross_entropy_probs(logits, target, weight, reduction, label_smoothing)
    logits, target = _f64(logits), np.asarray(target)
    if logits.ndim == 1:  # unbatched: the 'none' loss is 0-d
        out = cross_entropy(logits[None], target[None], weight, ignore_index, reduction, label_smoothing)
        return out[0] if reduction == "none" else out
    c = logits.shape[1]
    logp = log_softmax(logits, 1)
    w = np.ones(c) if weight is None else _f64(weight)
    keep = target != ignore_index
    t = np.where(keep, target, 0)
    wt = np.where(keep, w[t], 0.0)
    nll = -wt * np.take_along_axis(logp, t[:, None], axis=1)[:, 0]
    wshape = (1, c) + (1,) * (logits.ndim - 2)
    smooth = np.where(keep, -(logp * w.reshape(wshape)).sum(axis=1), 0.0)
    loss = (1 - label_smoothing) * nll + label_smoothing / c * smooth
    return _reduce_loss(loss, reduction, wt.sum())


def mse_loss(x, t, reduction="mean"):
    d = (_f64(x) - _f64(t)) ** 2
    return _reduce_loss(d, reduction, d.size)


def binary_cross_entropy_with_logits(x, t, weight=None, reduction="mean", pos_weight=None):
    """w [(1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x))], log1p(exp(-|x|)) + max(-x, 0) for stability."""
    x, t = _f64(x), _f64(t)
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    w = 1.0 if weight is None else _f64(weight)
    softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
    loss = w * ((1 - t) * x + (1 + (pw - 1) * t) * softplus_neg)
    return _reduce_loss(loss, reduction, loss.size)
# ---- batch norm, dropout, optimizer updates (norm family)
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm for x (N, C, *spatial). Returns (y, new_running_mean,
    new_running_var) in float64; the running stats are returned, not modified."""
    x = _f64(x)
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, C) + (1,) * (x.ndim - 2)
    rm = None if running_mean is None else _f64(running_mean).copy()
    rv = None if running_var is None else _f64(running_var).copy()
    if training:
        m = x.size // C
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased, for normalizing
        if rm is not None and momentum is not None:
            rm = (1 - momentum) * rm + momentum * mean
            rv = (1 - momentum) * rv + momentum * var * m / (m - 1)  # unbiased
    else:
        mean, var = rm, rv
    y = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    if weight is not None:
        y = y * _f64(weight).reshape(bshape)
    if bias is not None:
        y = y + _f64(bias).reshape(bshape)
    return y, rm, rv


def batch_norm_backward(grad_out, x, weight=None, training=True, running_mean=None, running_var=None, eps=1e-5):
    """(dx, dweight, dbias) of batch_norm by the closed-form formulas, in float64."""
    g, x = _f64(grad_out), _f64(x)
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, C) + (1,) * (x.ndim - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    else:
        mean, var = _f64(running_mean), _f64(running_var)
    invstd = 1.0 / np.sqrt(var + eps)
    w = np.ones(C) if weight is None else _f64(weight)
    xhat = (x - mean.reshape(bshape)) * invstd.reshape(bshape)
    dbias = g.sum(axis=axes)
    dweight = (g * xhat).sum(axis=axes)
    k = (w * invstd).reshape(bshape)
    if training:
        m = x.size // C
        dx = k * (g - dbias.reshape(bshape) / m - xhat * dweight.reshape(bshape) / m)
    else:
        dx = k * g
    return dx, dweight, dbias


_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_U32 = 0xFFFFFFFF


def philox4x32_10(counter, key):
    """Philox4x32-10 (Random123) on one 4-word counter and 2-word key: the 4 output words."""
    c0, c1, c2, c3 = (int(v) & _U32 for v in counter)
    k0, k1 = (int(v) & _U32 for v in key)
    for _ in range(10):
        p0, p1 = _PHILOX_M[0] * c0, _PHILOX_M[1] * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & _U32, p1 & _U32, ((p0 >> 32) ^ c3 ^ k1) & _U32, p0 & _U32
        k0, k1 = (k0 + _PHILOX_W[0]) & _U32, (k1 + _PHILOX_W[1]) & _U32
    return [c0, c1, c2, c3]


def philox_words(seed, offset, n):
    """Words offset .. offset+n-1 of the stream for `seed` (csrc/philox.h): word j is
    word j % 4 of philox4x32_10(counter=(lo32(j//4), hi32(j//4), 0, 0), key=(lo32(seed), hi32(seed)))."""
    key = (seed & _U32, seed >> 32)
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        j = offset + i
        b = j // 4
        out[i] = philox4x32_10((b & _U32, b >> 32, 0, 0), key)[j % 4]
    return out


def dropout_uniform(seed, offset, n):
    """The uniform float of each element: (word >> 8) * 2**-24, in [0, 1)."""
    return (philox_words(seed, offset, n) >> np.uint64(8)).astype(np.float64) * 2.0 ** -24


def dropout_mask(seed, offset, n, p):
    """Keep-mask of dropout for n elements: uniform >= p."""
    return dropout_uniform(seed, offset, n) >= p


def dropout(x, mask, p):
    """x * mask / (1 - p), as torch (a NaN in a dropped element stays NaN); x * 0 for p = 1."""
    x = _f64(x)
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN is the intended result
        return x * np.where(mask, 1 / (1 - p) if p < 1 else 0.0, 0.0)


def sgd_step(param, grad, buf, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first_step=False):
    """One torch.optim.SGD step (single tensor); returns (param, buf), new arrays."""
    p, d = _f64(param).copy(), _f64(grad).copy()
    if weight_decay != 0:
        d = d + weight_decay * p
    if momentum != 0:
        buf = d.copy() if first_step else momentum * _f64(buf) + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay=0.0,
              amsgrad=False, decoupled=False):
    """One torch.optim.Adam (decoupled=False) or AdamW (decoupled=True) step, single tensor.
    Returns (param, exp_avg, exp_avg_sq, max_exp_avg_sq), new arrays."""
    p, g = _f64(param).copy(), _f64(grad).copy()
    if weight_decay != 0:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = beta1 * _f64(exp_avg) + (1 - beta1) * g
    v = beta2 * _f64(exp_avg_sq) + (1 - beta2) * g * g
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    vmax = None
    if amsgrad:
        vmax = np.maximum(_f64(max_exp_avg_sq), v)
        denom = np.sqrt(vmax) / np.sqrt(bc2) + eps
    else:
        denom = np.sqrt(v) / np.sqrt(bc2) + eps
    return p - lr / bc1 * m / denom, m, v, vmax
