"""Device plumbing: which kernel module and which array library serve a device.

CPU tensors store NumPy arrays and run kernels from ``ember._C``; CUDA tensors store
CuPy arrays and run kernels from ``ember._cuda``. Both modules expose the same names,
so the rest of ember never branches on the device.
"""
import numpy as np

from . import _C

_cuda_module = None
_cuda_error = None


def _load_cuda():
    """Import ember._cuda and CuPy once; remember why not if either is missing."""
    global _cuda_module, _cuda_error
    if _cuda_module is not None or _cuda_error is not None:
        return _cuda_module
    try:
        from . import _cuda as mod
    except ImportError as e:
        _cuda_error = f"ember was built without the CUDA backend (no nvcc at build time): {e}"
        return None
    n = mod.device_count()
    if n == 0:
        _cuda_error = f"no CUDA device is usable: {mod.device_count_error()}"
        return None
    try:
        import cupy  # noqa: F401
    except ImportError:
        _cuda_error = "CuPy is not installed; install it with pip install \"ember[cuda]\""
        return None
    _cuda_module = mod
    return mod


class Device(str):
    """A device name that compares equal to its string ("cpu", "cuda"), like torch.device."""

    def __new__(cls, spec="cpu"):
        if isinstance(spec, Device):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda', got {type(spec).__name__}")
        name = spec.split(":")[0]
        if name not in ("cpu", "cuda"):
            raise ValueError(f"unknown device '{spec}': expected 'cpu' or 'cuda'")
        if name == "cuda" and spec not in ("cuda", "cuda:0"):
            raise ValueError(f"unsupported device '{spec}': ember uses one GPU, 'cuda' (or 'cuda:0')")
        return super().__new__(cls, name)

    @property
    def type(self):
        return str(self)

    def __repr__(self):
        return f"device(type='{self}')"


def device(spec):
    """Validate a device spec; for 'cuda', check a GPU is usable and say why not."""
    d = Device(spec)
    if d == "cuda" and _load_cuda() is None:
        raise RuntimeError(f"CUDA is not available: {_cuda_error}")
    return d


def kernels(dev):
    """The kernel module for a device: ember._C or ember._cuda."""
    if dev == "cpu":
        return _C
    mod = _load_cuda()
    if mod is None:
        raise RuntimeError(f"CUDA is not available: {_cuda_error}")
    return mod


def xp(dev):
    """The array library for a device: numpy or cupy."""
    if dev == "cpu":
        return np
    kernels(dev)
    import cupy
    return cupy


CPU = Device("cpu")
CUDA = Device("cuda")


def device_of_array(arr):
    return CPU if isinstance(arr, np.ndarray) else CUDA
