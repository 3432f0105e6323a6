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
