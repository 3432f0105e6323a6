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
