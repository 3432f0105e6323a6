"""Models for the distributed test scripts and benchmark built only from ember.matmul and
elementwise ops (nn.Linear's F.linear lives in another op family's branch)."""
import ember
from ember import nn


class Linear(nn.Linear):
    """nn.Linear's parameters and init, forward through ember.matmul."""

    def forward(self, x):
        y = ember.matmul(x, self.weight.T)
        return y + self.bias if self.bias is not None else y


class SGD:
    """p -= lr * (grad + weight_decay * p) with ember's elementwise ops (the fused optimizer
    kernels live in another branch)."""

    def __init__(self, params, lr, weight_decay=0.0):
        self.params, self.lr, self.weight_decay = list(params), lr, weight_decay

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        with ember.no_grad():
            for p in self.params:
                if p.grad is None:
                    continue
                g = p.grad + p * self.weight_decay if self.weight_decay else p.grad
                p.sub_(g * self.lr)
