"""Reverse-mode automatic differentiation.

An op is a ``Function`` with ``forward(ctx, *args)`` and ``backward(ctx, grad)``.
``Function.apply`` runs forward and, when grad mode is on and an input requires grad,
links the output to a ``Node`` holding ctx and the inputs. ``backward`` walks the
nodes in reverse topological order, calls each backward once with the summed incoming
gradient, and accumulates into the leaves' ``.grad``.
"""
import contextlib
import threading

_state = threading.local()
_Tensor = None  # ember.Tensor, set by tensor.py (which imports this module first)


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode):
    _state.enabled = bool(mode)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns graph recording off."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class enable_grad(contextlib.ContextDecorator):
    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False


class RemovableHandle:
    """Returned by hook registrations; remove() unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self.hooks.pop(self.id, None)


class Context:
    """Scratch space an op's forward leaves for its backward."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class Node:
    """One recorded op: its Function, ctx, and per input the tensor it came from."""

    __slots__ = ("fn", "ctx", "inputs", "freed", "__weakref__")

    def __init__(self, fn, ctx, inputs):
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs  # tuple: Tensor that requires grad, or None
        self.freed = False

    def name(self):
        return self.fn.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"


class Function:
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = Context()
        enabled = getattr(_state, "enabled", True)
        _state.enabled = False
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _state.enabled = enabled
        if enabled:
            for a in args:  # a plain loop: most calls record nothing, and return here cheaply
                if isinstance(a, _Tensor) and a.requires_grad:
                    out.requires_grad = True
                    out._node = Node(cls, ctx, tuple(t if isinstance(t, _Tensor) and t.requires_grad else None
                                                     for t in args))
                    break
        return out


def _topological_order(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t._node is not None and id(t._node) not in seen:
                stack.append((t._node, False))
    return order[::-1]  # root first


def queue_callback(fn):
    """Run fn() once when the backward pass now running has finished (torch's
    Variable._execution_engine.queue_callback); e.g. a post-accumulate-grad hook uses it
    to act once all of this backward's gradients are in."""
    queue = getattr(_state, "callbacks", None)
    if queue is None:
        raise RuntimeError("queue_callback can only be called during a backward pass")
    queue.append(fn)


def backward(tensor, gradient=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) * gradient into every leaf's .grad, then run the
    callbacks queued during it (queue_callback)."""
    outer = getattr(_state, "callbacks", None)
    _state.callbacks = queue = []
    try:
        _backward(tensor, gradient, retain_graph)
        while queue:
            queue.pop(0)()
    finally:
        _state.callbacks = outer


def _backward(tensor, gradient, retain_graph):
    from .tensor import Tensor
    from . import functional as F

    if not tensor.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if gradient is None:
        if tensor.numel() != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this tensor has shape "
                               f"{tuple(tensor.shape)}: pass gradient= of that shape")
        gradient = Tensor._wrap(tensor._xp().ones(tensor.shape, dtype=tensor.dtype.np))
    else:
        if not isinstance(gradient, Tensor):
            gradient = Tensor._wrap(tensor._xp().asarray(gradient, dtype=tensor.dtype.np))
        if tuple(gradient.shape) != tuple(tensor.shape):
            raise ValueError(f"gradient has shape {tuple(gradient.shape)}, expected {tuple(tensor.shape)}")
        if gradient.device != tensor.device:
            raise RuntimeError(f"gradient is on {gradient.device} but the tensor it is the gradient of is on "
                               f"{tensor.device}; move it with .to('{tensor.device}')")
        gradient = gradient.detach()
    handed_out = {id(gradient)}  # gradient tensors already stored in some .grad, or the caller's
    with no_grad():
        if tensor._node is None:  # a leaf
            _accumulate(tensor, gradient, handed_out)
            return
        grads = {id(tensor._node): gradient}
        for node in _topological_order(tensor._node):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.freed:
                raise RuntimeError("Trying to backward through the graph a second time (its saved tensors were "
                                   "freed after the first backward); pass retain_graph=True to the first call")
            in_grads = node.fn.backward(node.ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for t, ig in zip(node.inputs, in_grads):
                if t is None or ig is None:
                    continue
                if tuple(ig.shape) != tuple(t.shape):
                    raise RuntimeError(f"{node.name()} returned a gradient of shape {tuple(ig.shape)} for an input "
                                       f"of shape {tuple(t.shape)}")
                if t._node is None or t._retains_grad:
                    _accumulate(t, ig, handed_out)
                if t._node is not None:
                    k = id(t._node)
                    grads[k] = ig if k not in grads else F.add(grads[k], ig)
            if not retain_graph:
                node.ctx = None
                node.freed = True


def _accumulate(t, g, handed_out):
    from . import functional as F

    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    if t.grad is None:
        # .grad must own its buffer: one gradient tensor can flow to several inputs
        # (add's backward passes the same one on), and the caller keeps `gradient`.
        if id(g) in handed_out or g._data.base is not None:
            g = g.clone()
        handed_out.add(id(g))
        t.grad = g
    else:
        t.grad = F.add(t.grad, g)
    hooks = getattr(t, "_post_accumulate_grad_hooks", None)  # (unset on tensors copied slot by slot)
    if hooks:
        for hook in tuple(hooks.values()):
            hook(t)
