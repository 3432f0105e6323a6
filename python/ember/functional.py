"""ember's tensor ops: each runs our kernels and, where differentiable, records itself
for autograd with a backward built from our kernels too.

Shapes and dtypes are settled here (broadcasting, type promotion, axis
normalization); the kernels in ember._C / ember._cuda check what they are given again.
"""
import numbers

import numpy as np

from . import dtypes as D
from .autograd import Function
from .tensor import Tensor, _empty, _kernels, _check_same_device

# ---------------------------------------------------------------- helpers


def _cast(t, dtype):
    """t as a Tensor of `dtype` (no copy when it already is)."""
    if t.dtype == dtype:
        return t
    out = _empty(t.shape, dtype, t.device)
    _kernels(t.device).copy(t._data, out._data)
    return out


def _is_scalar(x):
    return isinstance(x, (numbers.Number, np.bool_)) and not isinstance(x, Tensor)


def _operands(a, b, name):
    """Two operands as same-dtype Tensors (a Python scalar becomes a 0-d tensor)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor operand")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        _check_same_device(name, a, b)
        dt = D.promote(a.dtype, b.dtype)
    elif isinstance(a, Tensor):
        b = _scalar_value(b, name)
        dt = D.promote_scalar(a.dtype, b)
        b = Tensor._scalar(b, dt, a.device)
    else:
        a = _scalar_value(a, name)
        dt = D.promote_scalar(b.dtype, a)
        a = Tensor._scalar(a, dt, b.device)
    return a, b, dt


def _scalar_value(x, name):
    if isinstance(x, np.generic):
        x = x.item()
    if not isinstance(x, (bool, int, float)):
        raise TypeError(f"{name}: unsupported operand type {type(x).__name__} (expected Tensor, int, float or bool)")
    return x


def broadcast_shapes(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError("shapes " + ", ".join(str(tuple(s)) for s in shapes) +
                         " cannot be broadcast together (each dim must match or be 1)") from None


def _broadcast_data(t, shape):
    """Stride-0 view of t's array at `shape` (no copy)."""
    if tuple(t.shape) == tuple(shape):
        return t._data
    return t._xp().broadcast_to(t._data, shape)


def sum_to_shape(g, shape):
    """Sum gradient g over the dims that broadcasting added or stretched to reach `shape`."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    out = sum(g, axes, keepdim=True) if axes else g
    return reshape(out, shape)


# ---------------------------------------------------------------- elementwise


def _run_binary(kernel, a, b, dt, out_dtype):
    shape = broadcast_shapes(a.shape, b.shape)
    a, b = _cast(a, dt), _cast(b, dt)
    out = _empty(shape, out_dtype, a.device)
    getattr(_kernels(a.device), kernel)(_broadcast_data(a, shape), _broadcast_data(b, shape), out._data)
    return out


class _Binary(Function):
    kernel = None

    @classmethod
    def run(cls, a, b, dt):
        return _run_binary(cls.kernel, a, b, dt, dt)

    @classmethod
    def forward(cls, ctx, a, b, dt):
        ctx.shapes = (a.shape, b.shape)
        ctx.dtypes = (a.dtype, b.dtype)
        out = cls.run(a, b, dt)
        cls.save(ctx, _cast(a, dt), _cast(b, dt), out)
        return out

    @staticmethod
    def save(ctx, a, b, out):
        pass

    @staticmethod
    def _finish(ctx, ga, gb):
        sa, sb = ctx.shapes
        ta, tb = ctx.dtypes
        ga = _cast(sum_to_shape(ga, sa), ta) if ga is not None and ta.is_floating_point else None
        gb = _cast(sum_to_shape(gb, sb), tb) if gb is not None and tb.is_floating_point else None
        return ga, gb, None


class Add(_Binary):
    kernel = "add"

    @staticmethod
    def backward(ctx, g):
        return Add._finish(ctx, g, g)


class Sub(_Binary):
    kernel = "sub"

    @staticmethod
    def backward(ctx, g):
        return Sub._finish(ctx, g, neg(g))


class Mul(_Binary):
    kernel = "mul"

    @staticmethod
    def save(ctx, a, b, out):
        ctx.save_for_backward(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return Mul._finish(ctx, mul(g, b), mul(g, a))


class Div(_Binary):
    kernel = "div"

    @staticmethod
    def save(ctx, a, b, out):
        ctx.save_for_backward(b, out)

    @staticmethod
    def backward(ctx, g):
        b, out = ctx.saved_tensors
        ga = div(g, b)
        return Div._finish(ctx, ga, neg(mul(ga, out)))  # d(a/b)/db = -(a/b)/b


class Pow(_Binary):
    kernel = "pow"

    @staticmethod
    def save(ctx, a, b, out):
        ctx.save_for_backward(a, b, out)

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        ga = mul(g, mul(b, Pow.run(a, sub(b, 1), a.dtype)))
        # d(a^b)/db = a^b log a, taken as 0 where a == 0 (as PyTorch does)
        gb = mul(g, where(eq(a, 0), 0.0, mul(out, log(a))))
        return Pow._finish(ctx, ga, gb)


class _MaxMin(_Binary):
    @staticmethod
    def save(ctx, a, b, out):
        ctx.save_for_backward(a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_tensors
        # Ties split the gradient evenly, as torch.maximum does.
        wins = (gt if cls.kernel == "maximum" else lt)(a, b)
        tie = eq(a, b)
        half = mul(g, 0.5)
        ga = where(wins, g, where(tie, half, 0.0))
        gb = where(wins, 0.0, where(tie, half, g))
        return cls._finish(ctx, ga, gb)


class Maximum(_MaxMin):
    kernel = "maximum"


class Minimum(_MaxMin):
    kernel = "minimum"


def _arith(fn, a, b, name):
    a, b, dt = _operands(a, b, name)
    if dt == D.bool_:  # arithmetic on two bools counts in int64
        dt = D.int64
    return fn.apply(a, b, dt)


def add(a, b):
    return _arith(Add, a, b, "add")


def sub(a, b):
    return _arith(Sub, a, b, "sub")


def mul(a, b):
    return _arith(Mul, a, b, "mul")


def div(a, b):
    a, b, dt = _operands(a, b, "div")
    return Div.apply(a, b, dt if dt.is_floating_point else D.float32)  # true division


def pow(a, b):
    if isinstance(a, Tensor) and _is_scalar(b) and not isinstance(b, bool):
        return pow_scalar(a, b)
    a, b, dt = _operands(a, b, "pow")
    return Pow.apply(a, b, dt if dt.is_floating_point else D.float32)


def maximum(a, b):
    return _arith(Maximum, a, b, "maximum")


def minimum(a, b):
    return _arith(Minimum, a, b, "minimum")


def _compare(kernel, a, b):
    a, b, dt = _operands(a, b, kernel)
    return _run_binary(kernel, a, b, dt, D.bool_)


def eq(a, b):
    return _compare("eq", a, b)


def ne(a, b):
    return _compare("ne", a, b)


def lt(a, b):
    return _compare("lt", a, b)


def le(a, b):
    return _compare("le", a, b)


def gt(a, b):
    return _compare("gt", a, b)


def ge(a, b):
    return _compare("ge", a, b)


class _Unary(Function):
    kernel = None
    floating = True  # kernel needs a float input

    @classmethod
    def run(cls, x):
        if cls.floating and not x.dtype.is_floating_point:
            x = _cast(x, D.float32)
        out = _empty(x.shape, x.dtype, x.device)
        getattr(_kernels(x.device), cls.kernel)(x._data, out._data)
        return out

    @classmethod
    def forward(cls, ctx, x):
        out = cls.run(x)
        ctx.save_for_backward(x, out)
        return out


class Neg(_Unary):
    kernel, floating = "neg", False

    @staticmethod
    def backward(ctx, g):
        return neg(g)


class Exp(_Unary):
    kernel = "exp"

    @staticmethod
    def backward(ctx, g):
        return mul(g, ctx.saved_tensors[1])


class Log(_Unary):
    kernel = "log"

    @staticmethod
    def backward(ctx, g):
        return div(g, ctx.saved_tensors[0])


class Sqrt(_Unary):
    kernel = "sqrt"

    @staticmethod
    def backward(ctx, g):
        return div(g, mul(ctx.saved_tensors[1], 2.0))


class Abs(_Unary):
    kernel, floating = "abs", False

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_tensors[0]
        return mul(g, sub(_cast(gt(x, 0), g.dtype), _cast(lt(x, 0), g.dtype)))  # sign(x); 0 at 0


def neg(x):
    if x.dtype == D.bool_:
        raise TypeError("neg: negation of a bool tensor is not supported; use logical_not")
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs(x):
    return Abs.apply(_cast(x, D.int64) if x.dtype == D.bool_ else x)


class PowScalar(Function):
    @staticmethod
    def forward(ctx, x, p):
        out = _empty(x.shape, x.dtype, x.device)
        _kernels(x.device).pow_scalar(x._data, float(p), out._data)
        ctx.save_for_backward(x)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return mul(g, 0.0), None
        return mul(g, mul(pow_scalar(x, p - 1), float(p))), None


def pow_scalar(x, p):
    p = _scalar_value(p, "pow")
    if not x.dtype.is_floating_point:
        if isinstance(p, int) and p >= 0:  # integer power of an integer tensor stays integer
            out = x
            for _ in range(p - 1):
                out = mul(out, x)
            return out if p >= 1 else full_like(x, 1)
        x = _cast(x, D.float32)
    return PowScalar.apply(x, p)


def full_like(x, value):
    out = _empty(x.shape, x.dtype, x.device)
    out._data[...] = value
    return out


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b, dt):
        shape = broadcast_shapes(cond.shape, a.shape, b.shape)
        ctx.cond, ctx.shapes, ctx.dtypes = cond, (a.shape, b.shape), (a.dtype, b.dtype)
        a, b = _cast(a, dt), _cast(b, dt)
        out = _empty(shape, dt, a.device)
        _kernels(a.device).where(_broadcast_data(cond, shape), _broadcast_data(a, shape), _broadcast_data(b, shape),
                                 out._data)
        return out

    @staticmethod
    def backward(ctx, g):
        zero = Tensor._scalar(0, g.dtype, g.device)
        ga = where(ctx.cond, g, zero)
        gb = where(ctx.cond, zero, g)
        ga = _cast(sum_to_shape(ga, ctx.shapes[0]), ctx.dtypes[0]) if ctx.dtypes[0].is_floating_point else None
        gb = _cast(sum_to_shape(gb, ctx.shapes[1]), ctx.dtypes[1]) if ctx.dtypes[1].is_floating_point else None
        return None, ga, gb, None


def where(cond, a, b):
    if not isinstance(cond, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(cond).__name__}")
    if cond.dtype != D.bool_:
        raise TypeError(f"where: condition must be bool, got {cond.dtype.name}")
    a, b, dt = _operands(a, b, "where")
    _check_same_device("where", cond, a, b)
    return Where.apply(cond, a, b, dt)


# ---------------------------------------------------------------- reductions


def normalize_axes(axes, ndim, name):
    """Sorted, unique, non-negative axes; None means all."""
    if axes is None:
        return tuple(range(ndim))
    if type(axes) is int and -ndim <= axes < ndim:  # the common case, fast
        return (axes % ndim,)
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    if isinstance(axes, (str, bytes)):
        raise TypeError(f"{name}: dim must be an int, a tuple of ints or None, got {axes!r}")
    try:
        axes = tuple(int(a) for a in axes)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: dim must be an int, a tuple of ints or None, got {axes!r}") from None
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise IndexError(f"{name}: dim {a} is out of range for a {ndim}-D tensor "
                             f"(expected in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])")
        a = a % max(ndim, 1)
        if a in out:
            raise ValueError(f"{name}: dim {a} appears more than once")
        out.append(a)
    return tuple(sorted(a for a in out if a < ndim))


def _reduced_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduce_kernel(kernel, x, axes):
    if x.device != "cpu":
        x = x.contiguous()  # the CUDA kernels read a contiguous input; the CPU ones any strides
    kshape = _reduced_shape(x.shape, axes, True)
    out = _empty(kshape, x.dtype, x.device)
    getattr(_kernels(x.device), kernel)(x._data, list(axes), out._data)
    return out


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes = x.shape, axes
        out = _reduce_kernel("sum", x, axes)
        return out if keepdim else reshape(out, _reduced_shape(x.shape, axes, False))

    @staticmethod
    def backward(ctx, g):
        g = reshape(g, _reduced_shape(ctx.shape, ctx.axes, True))
        return expand(g, ctx.shape).contiguous(), None, None


class _Extreme(Function):
    kernel = None

    @classmethod
    def forward(cls, ctx, x, axes, keepdim):
        out = _reduce_kernel(cls.kernel, x, axes)
        ctx.save_for_backward(x, out)
        ctx.axes = axes
        return out if keepdim else reshape(out, _reduced_shape(x.shape, axes, False))

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        # The gradient goes to every element equal to the extreme, split evenly (as torch.amax).
        mask = _cast(eq(x, out), g.dtype)
        count = sum(mask, ctx.axes, keepdim=True)
        g = reshape(g, out.shape)
        return mul(mask, div(g, count)), None, None


class AMax(_Extreme):
    kernel = "amax"


class AMin(_Extreme):
    kernel = "amin"


def sum(x, dim=None, keepdim=False):
    axes = normalize_axes(dim, x.ndim, "sum")
    if not x.dtype.is_floating_point:
        x = _cast(x, D.int64)  # bool and int sum in int64, as torch
    return Sum.apply(x, axes, keepdim)


def mean(x, dim=None, keepdim=False):
    if not x.dtype.is_floating_point:
        raise TypeError(f"mean: input dtype must be floating point, got {x.dtype.name}; cast with .float()")
    axes = normalize_axes(dim, x.ndim, "mean")
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    s = Sum.apply(x, axes, keepdim)
    return div(s, float(count)) if count else mul(s, float("nan"))


def _extreme(fn, name, x, dim, keepdim):
    axes = normalize_axes(dim, x.ndim, name)
    if x.numel() == 0 and (dim is None or any(x.shape[a] == 0 for a in axes)):
        raise ValueError(f"{name}: cannot reduce a tensor of shape {tuple(x.shape)} over a zero-size dim "
                         "(there is no identity); pass a dim whose size is non-zero")
    if x.dtype == D.bool_:
        x = _cast(x, D.int64)
    return fn.apply(x, axes, keepdim)


def amax(x, dim=None, keepdim=False):
    return _extreme(AMax, "amax", x, dim, keepdim)


def amin(x, dim=None, keepdim=False):
    return _extreme(AMin, "amin", x, dim, keepdim)


def _arg(kernel, x, dim, keepdim):
    if x.dtype == D.bool_:
        x = _cast(x, D.int64)
    if dim is None:
        if x.numel() == 0:
            raise ValueError(f"{kernel}: cannot take {kernel} of an empty tensor")
        flat = reshape(x, (x.numel(),))
        out = _empty((1,), D.int64, x.device)
        getattr(_kernels(x.device), kernel)(flat._data, 0, out._data)
        return reshape(out, (1,) * x.ndim if keepdim else ())
    (axis,) = normalize_axes(int(dim), x.ndim, kernel) or (0,)
    if x.ndim == 0:
        return Tensor._scalar(0, D.int64, x.device)
    if x.shape[axis] == 0:
        raise ValueError(f"{kernel}: cannot take {kernel} over dim {axis} of size 0 (shape {tuple(x.shape)})")
    if x.device != "cpu":
        x = x.contiguous()
    kshape = _reduced_shape(x.shape, (axis,), True)
    out = _empty(kshape, D.int64, x.device)
    getattr(_kernels(x.device), kernel)(x._data, axis, out._data)
    return out if keepdim else reshape(out, _reduced_shape(x.shape, (axis,), False))


def argmax(x, dim=None, keepdim=False):
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", x, dim, keepdim)


# ---------------------------------------------------------------- views and copies


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return Tensor._wrap(x._view_data(shape))

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.shape), None


def reshape(x, shape):
    shape = x._infer_shape(shape)
    if tuple(shape) == tuple(x.shape):
        return x
    if not x._can_view(shape):
        x = x.contiguous()
    return Reshape.apply(x, shape)


def view(x, shape):
    shape = x._infer_shape(shape)
    if not x._can_view(shape):
        raise RuntimeError(f"view: shape {tuple(shape)} is not compatible with the strides of this tensor "
                           f"(shape {tuple(x.shape)}, strides {x.strides}); use .reshape() or .contiguous().view()")
    return Reshape.apply(x, shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return Tensor._wrap(x._data.transpose(dims))

    @staticmethod
    def backward(ctx, g):
        inv = tuple(np.argsort(ctx.dims))
        return permute(g, inv), None


def permute(x, dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = tuple(int(d) for d in dims)
    if len(dims) != x.ndim:
        raise ValueError(f"permute: got {len(dims)} dims for a {x.ndim}-D tensor")
    norm = normalize_axes(dims, x.ndim, "permute") if dims else ()
    if len(norm) != x.ndim:
        raise ValueError(f"permute: dims {dims} are not a permutation of range({x.ndim})")
    dims = tuple(d % x.ndim for d in dims)
    return Permute.apply(x, dims)


def transpose(x, dim0, dim1):
    if x.ndim == 0:
        return x
    d0, d1 = (normalize_axes(d, x.ndim, "transpose")[0] for d in (dim0, dim1))
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return Tensor._wrap(x._xp().broadcast_to(x._data, shape))

    @staticmethod
    def backward(ctx, g):
        return sum_to_shape(g, ctx.shape), None


def expand(x, shape):
    shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
    target = broadcast_shapes(x.shape, shape)
    if target != tuple(shape):
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {tuple(shape)}")
    return Expand.apply(x, target)


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        out = _empty(x.shape, x.dtype, x.device)
        _kernels(x.device).copy(x._data, out._data)
        return out

    @staticmethod
    def backward(ctx, g):
        return g


def clone(x):
    return Contiguous.apply(x)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return _cast(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return (_cast(g, ctx.dtype) if ctx.dtype.is_floating_point else None), None


def to_dtype(x, dtype):
    dtype = D.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    return Cast.apply(x, dtype)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        out = x._data[index]
        if not isinstance(out, x._xp().ndarray):  # NumPy returns a scalar for a full integer index
            out = x._xp().asarray(out)
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, g):
        out = zeros(ctx.shape, dtype=g.dtype, device=g.device)
        if _is_basic_index(ctx.index):  # a view of out: copy into it
            target = out._data[ctx.index]
            _kernels(g.device).copy(g._data.reshape(target.shape), target)
        else:  # advanced (array) index: duplicates must accumulate
            if g.device == "cpu":
                np.add.at(out._data, ctx.index, g._data)
            else:
                import cupyx
                cupyx.scatter_add(out._data, ctx.index, g._data)
        return out, None


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


def zeros(shape, dtype=None, device="cpu"):
    from .tensor import zeros as _zeros
    return _zeros(shape, dtype=dtype, device=device)


# ---------------------------------------------------------------- matmul


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _matmul_raw(a, b, False, False)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        # dA = g @ B^T, dB = A^T @ g, summed over broadcast batch dims
        ga = _matmul_raw(g, b, False, True) if a.requires_grad else None
        gb = _matmul_raw(a, g, True, False) if b.requires_grad else None
        if ga is not None:
            ga = sum_to_shape(ga, a.shape)
        if gb is not None:
            gb = sum_to_shape(gb, b.shape)
        return ga, gb


def _matmul_raw(a, b, ta, tb):
    """op(a) @ op(b) for a, b of ndim >= 2 with broadcast batch dims; ta/tb transpose the last two."""
    M = a.shape[-1] if ta else a.shape[-2]
    K = a.shape[-2] if ta else a.shape[-1]
    Kb = b.shape[-1] if tb else b.shape[-2]
    N = b.shape[-2] if tb else b.shape[-1]
    if K != Kb:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                         f"(inner dims {K} and {Kb} differ)")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    dt = a.dtype
    out = _empty(batch + (M, N), dt, a.device)
    if a.ndim == 2 and b.ndim == 2:
        (da, ta), (db, tb) = _gemm_operand(a, ta), _gemm_operand(b, tb)
        _kernels(a.device).matmul(da, db, out._data, ta, tb, 1.0, 0.0)
        return out
    nb = int(np.prod(batch)) if batch else 1
    _kernels(a.device).matmul(_batch3(a, batch, nb), _batch3(b, batch, nb), out._data.reshape((nb, M, N)),
                              ta, tb, 1.0, 0.0)
    return out


def _gemm_operand(t, trans):
    """2-D t as (array, trans) for the kernel, read in place: rows may be strided, and a
    column-major view (e.g. w.T) is passed as its transpose with the flag flipped.
    Copied only when neither dim is contiguous."""
    d = t._data
    if d.strides[-1] == d.itemsize or d.shape[-1] <= 1:
        return d, trans
    if d.strides[-2] == d.itemsize or d.shape[-2] <= 1:
        return d.T, not trans
    return t.contiguous()._data, trans


def _batch3(t, batch, nb):
    """t (..., R, C) as a contiguous-matrix (nb, R, C) array: a view, with batch stride 0
    when t is shared by every batch; copied only for a partial broadcast."""
    r, c = t.shape[-2:]
    if int(np.prod(t.shape[:-2])) == 1:
        return t._xp().broadcast_to(t.contiguous()._data.reshape(1, r, c), (nb, r, c))
    if tuple(t.shape[:-2]) != tuple(batch):
        t = expand(t, tuple(batch) + (r, c))
    return t.contiguous()._data.reshape(nb, r, c)


def matmul(a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    _check_same_device("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both operands must have at least 1 dimension; use * for scalars")
    dt = D.promote(a.dtype, b.dtype)
    if not dt.is_floating_point:
        raise TypeError(f"matmul: expected float32 or float64 operands, got {a.dtype.name} and {b.dtype.name}")
    a, b = to_dtype(a, dt), to_dtype(b, dt)
    va = reshape(a, (1,) + tuple(a.shape)) if a.ndim == 1 else a
    vb = reshape(b, tuple(b.shape) + (1,)) if b.ndim == 1 else b
    out = MatMul.apply(va, vb)
    if a.ndim == 1:
        out = reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = reshape(out, out.shape[:-1])
    return out
