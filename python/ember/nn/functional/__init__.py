"""ember.nn.functional: the neural-network ops (PyTorch's torch.nn.functional names),
one module per op family, each op differentiable through its own backward kernel."""
from .linear import linear  # noqa: F401
