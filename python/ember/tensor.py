"""ember.Tensor: an n-d array on a device (NumPy storage on CPU, CuPy on CUDA) with
reverse-mode autograd. Views (reshape, transpose, slicing) share storage as in NumPy;
all arithmetic runs in ember's kernels through ember.functional."""
import numbers

import numpy as np

from . import _backend
from . import autograd
from . import dtypes as D
from ._backend import Device

# Refuse allocations beyond this many bytes up front (NumPy would try, then fail late).
_MAX_BYTES = 1 << 46  # 64 TiB


def _kernels(device):
    return _backend.kernels(device)


def _check_shape(shape, name="shape"):
    """A tuple of non-negative ints whose product fits; raises a clear error otherwise."""
    if isinstance(shape, (numbers.Integral, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {type(shape).__name__}") from None
    out = []
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (numbers.Integral, np.integer)):
            raise TypeError(f"{name} must contain ints, got {s!r} of type {type(s).__name__}")
        if s < 0:
            raise ValueError(f"{name} {shape} has a negative dimension {s}")
        out.append(int(s))
    return tuple(out)


def _check_size(shape, dtype):
    n = 1
    for s in shape:
        n *= s
    if n * dtype.itemsize > _MAX_BYTES:
        raise MemoryError(f"refusing to allocate a tensor of shape {shape} ({n * dtype.itemsize / 2**40:.1f} TiB of "
                          f"{dtype.name}): more than the {_MAX_BYTES // 2**40} TiB limit")


def _empty(shape, dtype, device):
    """Uninitialized tensor; the one place ember allocates storage. `shape` is trusted
    (checked by the public creation functions, or derived from existing tensors)."""
    dtype = D.as_dtype(dtype)
    shape = tuple(shape)
    _check_size(shape, dtype)
    return Tensor._wrap(_backend.xp(device).empty(shape, dtype=dtype.np))


def _check_same_device(op, *tensors):
    devs = {t.device for t in tensors if isinstance(t, Tensor)}
    if len(devs) > 1:
        raise RuntimeError(f"{op}: expected all tensors on the same device, got " + " and ".join(sorted(devs)))


class Tensor:
    __slots__ = ("_data", "requires_grad", "grad", "_node", "_retains_grad", "_post_accumulate_grad_hooks",
                 "__weakref__")
    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected ops

    def __init__(self, data, dtype=None, device="cpu", requires_grad=False):
        t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        self._data, self.requires_grad, self.grad = t._data, t.requires_grad, None
        self._node, self._retains_grad = None, False
        self._post_accumulate_grad_hooks = None

    @classmethod
    def _wrap(cls, arr, requires_grad=False):
        t = object.__new__(cls)
        t._data = arr
        t.requires_grad = requires_grad
        t.grad = None
        t._node = None
        t._retains_grad = False
        t._post_accumulate_grad_hooks = None
        return t

    @classmethod
    def _scalar(cls, value, dtype, device):
        return cls._wrap(_backend.xp(device).asarray(value, dtype=D.as_dtype(dtype).np))

    def _xp(self):
        return _backend.xp(self.device)

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    @property
    def dtype(self):
        return D.from_numpy_dtype(self._data.dtype, strict=True)

    @property
    def device(self):
        return _backend.CPU if type(self._data) is np.ndarray else _backend.device_of_array(self._data)

    @property
    def is_cuda(self):
        return self.device == "cuda"

    @property
    def strides(self):
        """Strides in elements (NumPy's are in bytes)."""
        return tuple(s // self._data.itemsize for s in self._data.strides)

    def stride(self, dim=None):
        return self.strides if dim is None else self.strides[dim]

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[dim]

    def numel(self):
        return int(self._data.size)

    def element_size(self):
        return self._data.itemsize

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def _last_dim_contiguous(self):
        return self.ndim == 0 or self._data.strides[-1] == self._data.itemsize or self.shape[-1] <= 1

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__

    # ---------------------------------------------------------------- conversion out
    def numpy(self, force=False):
        """The NumPy array behind a CPU tensor (zero-copy)."""
        if self.device != "cpu":
            if not force:
                raise TypeError("can't convert a cuda tensor to numpy; call .cpu() first")
            return self._data.get()
        if self.requires_grad and not force:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; call .detach().numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy(force=True)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return np.array(arr, copy=True) if copy else arr

    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        if self.device != "cuda":
            raise AttributeError("__cuda_array_interface__ exists only for cuda tensors")
        return self._data.__cuda_array_interface__

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to Python scalars, "
                             f"this one has {self.numel()} elements")
        return self._data.reshape(()).item()

    def tolist(self):
        return self.numpy(force=True).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype != D.int64 or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.numel()} elements is ambiguous; "
                               "use .any() or .all()")
        return bool(self.item())

    def __repr__(self):
        return _format(self)

    __str__ = __repr__

    # ---------------------------------------------------------------- device and dtype
    def to(self, *args, dtype=None, device=None):
        for a in args:
            if isinstance(a, (str, Device)) and a.split(":")[0] in ("cpu", "cuda"):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = F.to_dtype(out, dtype)
        if device is not None:
            out = _to_device(out, _backend.device(device))
        return out

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self):
        return self.to(device="cuda")

    def float(self):
        return F.to_dtype(self, D.float32)

    def double(self):
        return F.to_dtype(self, D.float64)

    def long(self):
        return F.to_dtype(self, D.int64)

    def bool(self):
        return F.to_dtype(self, D.bool_)

    def type_as(self, other):
        return self.to(dtype=other.dtype)

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=False):
        autograd.backward(self, gradient, retain_graph)

    def detach(self):
        return Tensor._wrap(self._data)

    def detach_(self):
        self._node, self.requires_grad = None, False
        return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(f"only floating point tensors can require gradients, this one is {self.dtype.name}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        self._retains_grad = True

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) each time backward has accumulated a gradient into this leaf's
        .grad (as torch's). Returns a handle whose remove() unregisters it."""
        if not self.is_leaf:
            raise RuntimeError("post accumulate grad hooks can only be registered on leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if getattr(self, "_post_accumulate_grad_hooks", None) is None:
            self._post_accumulate_grad_hooks = {}
        handle = autograd.RemovableHandle(self._post_accumulate_grad_hooks)
        self._post_accumulate_grad_hooks[handle.id] = hook
        return handle

    def _check_inplace(self, op):
        if self.requires_grad and autograd.is_grad_enabled():
            kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor that is part of a graph"
            raise RuntimeError(f"{op}: in-place operation on {kind}; wrap it in ember.no_grad() or use the "
                               "out-of-place op")

    # ---------------------------------------------------------------- views
    def _infer_shape(self, shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        shape = tuple(int(s) for s in shape)
        if shape.count(-1) > 1:
            raise ValueError(f"reshape: only one dimension can be -1, got {shape}")
        known = 1
        for s in shape:
            if s < -1:
                raise ValueError(f"reshape: invalid dimension {s} in {shape}")
            if s != -1:
                known *= s
        n = self.numel()
        if -1 in shape:
            if known == 0 or n % known:
                raise ValueError(f"reshape: shape {shape} is invalid for a tensor of {n} elements")
            shape = tuple(n // known if s == -1 else s for s in shape)
        elif known != n:
            raise ValueError(f"reshape: shape {shape} is invalid for a tensor of {n} elements "
                             f"(shape {self.shape})")
        return shape

    def _can_view(self, shape):
        try:
            self._view_data(shape)
            return True
        except AttributeError:
            return False

    def _view_data(self, shape):
        v = self._data.view()
        v.shape = shape  # raises AttributeError when a copy would be needed
        return v

    def reshape(self, *shape):
        return F.reshape(self, shape)

    def view(self, *shape):
        return F.view(self, shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return F.reshape(self, (1,))
        s = start_dim % self.ndim
        e = end_dim % self.ndim
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        n = 1
        for d in self.shape[s:e + 1]:
            n *= d
        return F.reshape(self, self.shape[:s] + (n,) + self.shape[e + 1:])

    def transpose(self, dim0, dim1):
        return F.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return F.permute(self, dims)

    @property
    def T(self):
        return F.permute(self, tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        return F.transpose(self, -2, -1)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dims, got {self.ndim}; use transpose()")
        return self.T

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            axes = F.normalize_axes(dim, self.ndim, "squeeze")
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return F.reshape(self, shape)

    def unsqueeze(self, dim):
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} out of range for a {self.ndim}-D tensor "
                             f"(expected in [{-self.ndim - 1}, {self.ndim}])")
        dim = dim % (self.ndim + 1)
        return F.reshape(self, self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return F.expand(self, tuple(shape))

    def contiguous(self):
        return self if self.is_contiguous() else F.clone(self)

    def clone(self):
        return F.clone(self)

    def __getitem__(self, index):
        index = _unwrap_index(index, self.shape)
        return F.GetItem.apply(self, index)

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__")
        index = _unwrap_index(index, self.shape)
        target = self._data[index]
        xp = self._xp()
        if not isinstance(target, xp.ndarray) or not F._is_basic_index(index):
            if isinstance(value, Tensor):
                value = value._data
            self._data[index] = value  # advanced-index assignment: NumPy scatters
            return
        if isinstance(value, Tensor):
            _check_same_device("__setitem__", self, value)
            src = F._cast(value, self.dtype)
        else:
            src = Tensor._scalar(F._scalar_value(value, "__setitem__"), self.dtype, self.device)
        shape = F.broadcast_shapes(src.shape, target.shape)
        if shape != target.shape:
            raise ValueError(f"__setitem__: value of shape {src.shape} cannot fill a region of shape {target.shape}")
        _kernels(self.device).copy(F._broadcast_data(src, target.shape), target)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, o): return F.add(self, o)
    def __radd__(self, o): return F.add(o, self)
    def __sub__(self, o): return F.sub(self, o)
    def __rsub__(self, o): return F.sub(o, self)
    def __mul__(self, o): return F.mul(self, o)
    def __rmul__(self, o): return F.mul(o, self)
    def __truediv__(self, o): return F.div(self, o)
    def __rtruediv__(self, o): return F.div(o, self)
    def __pow__(self, o): return F.pow(self, o)
    def __rpow__(self, o): return F.pow(o, self)
    def __matmul__(self, o): return F.matmul(self, o)
    def __rmatmul__(self, o): return F.matmul(o, self)
    def __neg__(self): return F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return F.abs(self)
    def __eq__(self, o): return F.eq(self, o)
    def __ne__(self, o): return F.ne(self, o)
    def __lt__(self, o): return F.lt(self, o)
    def __le__(self, o): return F.le(self, o)
    def __gt__(self, o): return F.gt(self, o)
    def __ge__(self, o): return F.ge(self, o)

    def _inplace(self, fn, other, name):
        self._check_inplace(name)
        other_dtype = other.dtype if isinstance(other, Tensor) else D.promote_scalar(self.dtype, F._scalar_value(other, name))
        result = D.promote(self.dtype, other_dtype)
        if fn is F.div and not result.is_floating_point:
            result = D.float32
        if result != self.dtype and D._RANK[result] > D._RANK[self.dtype]:
            raise TypeError(f"{name}: result type {result.name} can't be cast to the in-place output type "
                            f"{self.dtype.name}")
        if isinstance(other, Tensor):
            _check_same_device(name, self, other)
            shape = F.broadcast_shapes(self.shape, other.shape)
            if shape != self.shape:
                raise ValueError(f"{name}: operand of shape {other.shape} would grow the in-place output "
                                 f"{self.shape} to {shape}")
            other = F._cast(other, self.dtype)
        else:
            other = Tensor._scalar(other, self.dtype, self.device)
        kernel = {F.add: "add", F.sub: "sub", F.mul: "mul", F.div: "div"}[fn]
        getattr(_kernels(self.device), kernel)(self._data, F._broadcast_data(other, self.shape), self._data)
        return self

    def add_(self, o, alpha=1):
        return self._inplace(F.add, o if alpha == 1 else o * alpha, "add_")

    def sub_(self, o, alpha=1):
        return self._inplace(F.sub, o if alpha == 1 else o * alpha, "sub_")

    def mul_(self, o): return self._inplace(F.mul, o, "mul_")
    def div_(self, o): return self._inplace(F.div, o, "div_")
    def __iadd__(self, o): return self._inplace(F.add, o, "+=")
    def __isub__(self, o): return self._inplace(F.sub, o, "-=")
    def __imul__(self, o): return self._inplace(F.mul, o, "*=")
    def __itruediv__(self, o): return self._inplace(F.div, o, "/=")

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._check_inplace("fill_")
        src = Tensor._scalar(F._scalar_value(value, "fill_"), self.dtype, self.device)
        _kernels(self.device).copy(F._broadcast_data(src, self.shape), self._data)
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        if not isinstance(src, Tensor):
            src = tensor(src, device=self.device)
        _check_same_device("copy_", self, src)
        shape = F.broadcast_shapes(self.shape, src.shape)
        if shape != self.shape:
            raise ValueError(f"copy_: source of shape {src.shape} cannot be broadcast to {self.shape}")
        _kernels(self.device).copy(F._broadcast_data(src, self.shape), self._data)
        return self

    def neg(self): return F.neg(self)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def abs(self): return F.abs(self)
    def pow(self, p): return F.pow(self, p)
    def maximum(self, o): return F.maximum(self, o)
    def minimum(self, o): return F.minimum(self, o)
    def matmul(self, o): return F.matmul(self, o)
    def eq(self, o): return F.eq(self, o)
    def ne(self, o): return F.ne(self, o)
    def lt(self, o): return F.lt(self, o)
    def le(self, o): return F.le(self, o)
    def gt(self, o): return F.gt(self, o)
    def ge(self, o): return F.ge(self, o)

    # ---------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _reduce_args(dim, keepdim, axis, keepdims)
        return F.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _reduce_args(dim, keepdim, axis, keepdims)
        return F.mean(self, dim, keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """max over all, or over dims. As torch, an int ``dim`` returns (values, indices);
        NumPy's ``axis=`` (or a tuple of dims) returns the values only."""
        return _max_min(self, F.amax, F.argmax, dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _max_min(self, F.amin, F.argmin, dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False):
        return F.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return F.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _reduce_args(dim, keepdim, axis, keepdims)
        return F.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _reduce_args(dim, keepdim, axis, keepdims)
        return F.argmin(self, dim, keepdim)


class MaxResult(tuple):
    """(values, indices) of max/min over one dim, like torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _reduce_args(dim, keepdim, axis, keepdims):
    if axis is not None:
        if dim is not None:
            raise TypeError("pass either dim= or axis=, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _max_min(x, values_fn, index_fn, dim, keepdim, axis, keepdims):
    numpy_style = axis is not None
    dim, keepdim = _reduce_args(dim, keepdim, axis, keepdims)
    if dim is None or numpy_style or isinstance(dim, (tuple, list)):
        return values_fn(x, dim, keepdim)
    return MaxResult(values_fn(x, dim, keepdim), index_fn(x, dim, keepdim))


def _unwrap_index(index, shape):
    """Tensors inside an index become their arrays; bounds are checked with a clear error."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for i in items:
        if isinstance(i, Tensor):
            i = i._data
        out.append(i)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _to_device(t, dev):
    if t.device == dev:
        return t
    return _ToDevice.apply(t, dev)


class _ToDevice(autograd.Function):
    @staticmethod
    def forward(ctx, x, dev):
        ctx.src = x.device
        if dev == "cpu":
            return Tensor._wrap(x._data.get())
        return Tensor._wrap(_backend.xp("cuda").asarray(x._data))

    @staticmethod
    def backward(ctx, g):
        return _to_device(g, ctx.src), None


# ---------------------------------------------------------------- creation


def _infer_dtype(arr):
    return D.from_numpy_dtype(arr.dtype)


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, scalars, arrays or Tensors).
    Python floats become float32, ints int64, bools bool; NumPy arrays keep float32,
    float64, int64 and bool, and other int/float types widen."""
    dev = _backend.device(device)
    if isinstance(data, Tensor):
        arr = data._data
        if data.device != "cpu":
            arr = arr.get()
        arr = np.array(arr, copy=True)
    else:
        arr = _to_numpy(data)
    dt = D.as_dtype(dtype) if dtype is not None else _python_default_dtype(data, arr)
    arr = np.asarray(arr, dtype=dt.np, order="C")
    if dev == "cuda":
        arr = _backend.xp("cuda").asarray(arr)
    elif isinstance(data, np.ndarray) and arr is data or (isinstance(data, np.ndarray) and np.shares_memory(arr, data)):
        arr = arr.copy()
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _python_default_dtype(data, arr):
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        return _infer_dtype(arr)
    if arr.dtype.kind == "f":
        return D.float32  # Python floats default to float32, as in torch
    return _infer_dtype(arr)


def _to_numpy(data):
    if hasattr(data, "__cuda_array_interface__") and not isinstance(data, np.ndarray):
        return data.get()
    try:
        arr = np.asarray(data)
    except ValueError as e:
        raise ValueError(f"tensor(): data is ragged or malformed (nested sequences must all have the same "
                         f"length): {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"tensor(): cannot build a tensor from data of type {arr.dtype} "
                        f"(expected numbers or booleans, got e.g. {type(data).__name__})")
    return arr


def from_numpy(arr):
    """A CPU tensor sharing memory with a NumPy array (no copy)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(arr).__name__}")
    D.from_numpy_dtype(arr.dtype, strict=True)
    if not arr.dtype.isnative:
        raise TypeError("from_numpy: byte-swapped (non-native) arrays are not supported; use arr.astype(arr.dtype.newbyteorder('='))")
    if arr.strides and any(s % arr.itemsize for s in arr.strides):
        raise ValueError("from_numpy: array strides are not multiples of its item size")
    return Tensor._wrap(arr)


def from_dlpack(obj):
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, torch, ...)."""
    dev_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if dev_type == 1:  # kDLCPU
        return from_numpy(np.from_dlpack(obj))
    return Tensor._wrap(_backend.xp("cuda").from_dlpack(obj))


def _creation(shape, dtype, device, requires_grad, fill):
    shape = _check_shape(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    dt = D.as_dtype(dtype) if dtype is not None else D.float32
    t = _empty(shape, dt, _backend.device(device))
    if fill is not None:
        t.fill_(fill)
    if requires_grad:
        t.requires_grad_(True)
    return t


def empty(*shape, dtype=None, device="cpu", requires_grad=False):
    return _creation(shape, dtype, device, requires_grad, None)


def zeros(*shape, dtype=None, device="cpu", requires_grad=False):
    return _creation(shape, dtype, device, requires_grad, 0)


def ones(*shape, dtype=None, device="cpu", requires_grad=False):
    return _creation(shape, dtype, device, requires_grad, 1)


def full(shape, fill_value, dtype=None, device="cpu", requires_grad=False):
    if dtype is None:
        fv = F._scalar_value(fill_value, "full")
        dtype = D.bool_ if isinstance(fv, bool) else D.int64 if isinstance(fv, int) else D.float32
    return _creation((shape,), dtype, device, requires_grad, fill_value)


def _like(t, dtype, device):
    return (D.as_dtype(dtype) if dtype is not None else t.dtype), (device if device is not None else t.device)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return empty(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return zeros(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return ones(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if not isinstance(v, (numbers.Real, np.number)) or isinstance(v, bool):
            raise TypeError(f"arange: {name} must be a number, got {type(v).__name__}")
        if not np.isfinite(v):
            raise ValueError(f"arange: {name} must be finite, got {v}")
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) / step > _MAX_BYTES:
        raise MemoryError(f"arange: {(end - start) / step:.3g} elements is too many")
    all_int = all(isinstance(v, (numbers.Integral, np.integer)) for v in (start, end, step))
    dt = D.as_dtype(dtype) if dtype is not None else (D.int64 if all_int else D.float32)
    arr = np.arange(start, end, step, dtype=np.float64 if not all_int else np.int64).astype(dt.np)
    t = tensor(arr, dtype=dt, device=device)
    return t.requires_grad_(True) if requires_grad else t


# ---------------------------------------------------------------- random numbers


class Generator:
    """ember's one random generator: NumPy's Philox bit generator for rand/randn and
    (seed, offset) of the counter-based stream that dropout kernels read."""

    def __init__(self, seed=0):
        self.manual_seed(seed)

    def manual_seed(self, seed):
        if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
            raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
        seed = int(seed)
        if not 0 <= seed < 2**64:
            raise ValueError(f"manual_seed: seed must be in [0, 2**64), got {seed}")
        self.seed = seed
        self.offset = 0
        self.np = np.random.Generator(np.random.Philox(seed))
        return self

    def initial_seed(self):
        return self.seed

    def get_state(self):
        return {"seed": self.seed, "offset": self.offset, "np": self.np.bit_generator.state}

    def set_state(self, state):
        self.seed, self.offset = state["seed"], state["offset"]
        self.np = np.random.Generator(np.random.Philox(self.seed))
        self.np.bit_generator.state = state["np"]


default_generator = Generator(0)


def manual_seed(seed):
    """Seed ember's generator (rand, randn, init, dropout, shuffling); returns it."""
    return default_generator.manual_seed(seed)


def _random(shape, dtype, device, requires_grad, draw, generator):
    shape = _check_shape(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    dt = D.as_dtype(dtype) if dtype is not None else D.float32
    if not dt.is_floating_point:
        raise TypeError(f"random floats need a floating dtype, got {dt.name}")
    _check_size(shape, dt)
    g = (generator or default_generator).np
    arr = draw(g, shape).astype(dt.np)
    t = tensor(arr, dtype=dt, device=device)
    return t.requires_grad_(True) if requires_grad else t


def rand(*shape, dtype=None, device="cpu", requires_grad=False, generator=None):
    """Uniform on [0, 1)."""
    return _random(shape, dtype, device, requires_grad, lambda g, s: g.random(s), generator)


def randn(*shape, dtype=None, device="cpu", requires_grad=False, generator=None):
    """Standard normal."""
    return _random(shape, dtype, device, requires_grad, lambda g, s: g.standard_normal(s), generator)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return rand(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(t, dtype, device)
    return randn(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None, device="cpu", generator=None):
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    shape = _check_shape(size)
    _check_size(shape, D.int64)
    arr = (generator or default_generator).np.integers(low, high, size=shape, dtype=np.int64)
    return tensor(arr, dtype=dtype or D.int64, device=device)


# ---------------------------------------------------------------- printing


def _format(t):
    arr = t.numpy(force=True)
    extra = []
    if t.device != "cpu":
        extra.append("device='cuda:0'")
    if t.dtype not in (D.float32, D.int64, D.bool_) or (t.numel() == 0 and t.dtype != D.float32):
        extra.append(f"dtype=ember.{t.dtype.name}")
    if t._node is not None:
        extra.append(f"grad_fn={t._node!r}")
    elif t.requires_grad:
        extra.append("requires_grad=True")
    if t.numel() == 0:
        body = "[]" if t.ndim <= 1 else "[]" 
        if t.ndim > 1:
            extra.insert(0, f"size={t.shape}")
    else:
        fmt = {}
        if arr.dtype.kind == "f":
            finite = arr[np.isfinite(arr)]
            integral = finite.size == 0 or bool(np.all(finite == np.round(finite))) and np.abs(finite).max() < 1e8
            big = finite.size and (np.abs(finite).max() >= 1e8 or (np.abs(finite[finite != 0]).min() < 1e-4
                                                                   if np.any(finite != 0) else False))
            if big:
                fmt["float_kind"] = lambda v: f"{v:.4e}"
            elif integral:
                fmt["float_kind"] = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)
            else:
                fmt["float_kind"] = lambda v: f"{v:.4f}"
        elif arr.dtype.kind == "b":
            fmt["bool"] = lambda v: "True" if v else "False"
        body = np.array2string(arr, separator=", ", prefix="tensor(", formatter=fmt, threshold=1000, edgeitems=3,
                               max_line_width=80)
    return "tensor(" + body + "".join(", " + e for e in extra) + ")"


autograd._Tensor = Tensor  # for Function.apply, without an import per call
from . import functional as F  # noqa: E402  (functional imports Tensor from this module)
