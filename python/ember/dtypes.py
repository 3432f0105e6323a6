"""ember's dtypes: float32 (the default), float64, int64 and bool."""
import numpy as np


class dtype:
    __slots__ = ("name", "np", "is_floating_point", "itemsize")

    def __init__(self, name):
        self.name = name
        self.np = np.dtype(name)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize

    def __repr__(self):
        return f"ember.{self.name}"

    def __eq__(self, other):
        if isinstance(other, dtype):
            return self.name == other.name
        try:
            return self.np == as_dtype(other).np
        except (TypeError, ValueError):
            return False

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        return (as_dtype, (self.name,))


float32 = dtype("float32")
float64 = dtype("float64")
int64 = dtype("int64")
bool_ = dtype("bool")
_ALL = {"float32": float32, "float64": float64, "int64": int64, "bool": bool_}
_ALIASES = {"float": float32, "double": float64, "long": int64, "f4": float32, "f8": float64, "i8": int64}


def as_dtype(d):
    """ember dtype from an ember dtype, a NumPy dtype, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float32
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _ALIASES:
        return _ALIASES[d]
    try:
        nd = np.dtype(d)
    except TypeError:
        raise TypeError(f"unsupported dtype {d!r}: expected float32, float64, int64 or bool") from None
    if nd.name in _ALL:
        return _ALL[nd.name]
    raise TypeError(f"unsupported dtype {d!r}: expected float32, float64, int64 or bool")


_BY_NUMPY = {np.dtype(n): d for n, d in _ALL.items()}


def from_numpy_dtype(nd, strict=False):
    """The ember dtype that stores a NumPy dtype; without `strict`, widen int/uint/float16."""
    hit = _BY_NUMPY.get(nd)
    if hit is not None:
        return hit
    nd = np.dtype(nd)
    if nd.name in _ALL:
        return _ALL[nd.name]
    if strict:
        raise TypeError(f"unsupported dtype {nd}: expected float32, float64, int64 or bool")
    if nd.kind == "f" and nd.itemsize < 4:
        return float32
    if nd.kind in "iu":
        return int64
    raise TypeError(f"unsupported dtype {nd}: ember tensors hold float32, float64, int64 or bool")


_RANK = {bool_: 0, int64: 1, float32: 2, float64: 3}


def promote(a, b):
    """Result dtype of a binary op on two tensors (PyTorch's rules for these four types)."""
    return a if _RANK[a] >= _RANK[b] else b


def promote_scalar(t, s):
    """Result dtype of tensor (dtype t) op Python scalar s: the scalar never widens a float tensor."""
    if isinstance(s, bool):
        return t
    if isinstance(s, int):
        return int64 if t == bool_ else t
    if isinstance(s, float):
        return t if t.is_floating_point else float32
    raise TypeError(f"unsupported operand type {type(s).__name__}: expected a Tensor, int, float or bool")
