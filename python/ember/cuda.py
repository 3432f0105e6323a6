"""ember.cuda: GPU queries. Without the CUDA module, CuPy, a driver or a device,
is_available() is False and device_count() is 0; nothing here raises for that."""
from . import _backend


def is_available():
    return _backend._load_cuda() is not None


def why_unavailable():
    """'' when CUDA is available, else the reason."""
    return "" if is_available() else _backend._cuda_error


def device_count():
    try:
        from . import _cuda
    except ImportError:
        return 0
    return _cuda.device_count()


def get_device_name(device=0):
    return _backend.kernels("cuda").get_device_name(device)


def synchronize():
    _backend.kernels("cuda").synchronize()


def manual_seed(seed):
    """As torch.cuda.manual_seed: ember has one generator for both devices (CUDA tensors
    draw on the host and copy; dropout's Philox stream is keyed by the same seed), so
    this seeds it, like ember.manual_seed, and works without a GPU."""
    from .tensor import manual_seed as seed_all
    return seed_all(seed)


manual_seed_all = manual_seed
