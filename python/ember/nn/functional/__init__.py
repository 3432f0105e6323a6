"""ember.nn.functional: the neural-network ops (PyTorch's torch.nn.functional names),
one module per op family, each op differentiable through its own backward kernel."""
from .norm import batch_norm  # noqa: F401
from .dropout import dropout  # noqa: F401
