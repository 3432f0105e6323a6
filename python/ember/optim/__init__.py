"""ember.optim: optimizers over the fused update kernels in ember.optim._kernels."""
