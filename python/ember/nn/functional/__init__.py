"""ember.nn.functional: the neural-network ops (PyTorch's torch.nn.functional names),
one module per op family, each op differentiable through its own backward kernel."""
from .linear import linear  # noqa: F401
from .conv import conv1d, conv2d  # noqa: E402,F401
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: E402,F401
