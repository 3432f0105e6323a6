"""ember.nn.functional: the neural-network ops (PyTorch's torch.nn.functional names),
one module per op family, each op differentiable through its own backward kernel."""
from .linear import linear  # noqa: F401
from .conv import conv1d, conv2d  # noqa: E402,F401
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: E402,F401
from .activation import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
from .loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss  # noqa: F401
from .norm import batch_norm  # noqa: F401
from .dropout import dropout  # noqa: F401
