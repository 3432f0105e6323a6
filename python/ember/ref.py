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


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross_entropy with class indices: (1 - eps) nll + eps / C * sum_c -w_c log p_c."""
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
