"""ember.optim: SGD, Adam, AdamW over fused update kernels, and lr schedulers."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD
