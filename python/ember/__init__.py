"""ember: a small deep-learning framework whose hot operations are hand-written C++
(CPU) and CUDA (GPU) kernels, with a PyTorch-shaped Python API."""
from . import _C
from . import cuda
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .dtypes import as_dtype, bool_, dtype, float32, float64, int64
from ._backend import Device as device
from .serialization import load, save
from .tensor import (
    Generator,
    Tensor,
    arange,
    default_generator,
    empty,
    empty_like,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .functional import (
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    broadcast_shapes,
    clone,
    div,
    eq,
    exp,
    ge,
    gt,
    le,
    log,
    lt,
    matmul,
    maximum,
    mean,
    minimum,
    mul,
    ne,
    neg,
    permute,
    pow,
    reshape,
    sqrt,
    sub,
    sum,
    transpose,
    where,
)

long = int64
double = float64
float = float32  # noqa: A001  (torch spells it ember.float too)
bool = bool_  # noqa: A001

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads the CPU kernels use (OpenMP)."""
    _C.set_num_threads(int(n))


def get_num_threads():
    return _C.get_num_threads()


def cpu_isa():
    """The SIMD path the CPU kernels use: 'avx512', 'avx2' or 'scalar'."""
    return _C.cpu_isa()


def set_cpu_isa(isa):
    """Force a lower SIMD path ('scalar', 'avx2', 'avx512'); also EMBER_CPU_ISA at import."""
    _C.set_cpu_isa(isa)


def max(x, dim=None, keepdim=False, **kw):  # noqa: A001
    return x.max(dim, keepdim, **kw)


def min(x, dim=None, keepdim=False, **kw):  # noqa: A001
    return x.min(dim, keepdim, **kw)


def flatten(x, start_dim=0, end_dim=-1):
    return x.flatten(start_dim, end_dim)


def squeeze(x, dim=None):
    return x.squeeze(dim)


def unsqueeze(x, dim):
    return x.unsqueeze(dim)


from . import data, models, nn, optim  # noqa: E402  (after the core: they build on Tensor and functional)
