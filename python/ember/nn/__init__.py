"""ember.nn: layers, losses and initializers over ember's kernels."""
from . import functional
