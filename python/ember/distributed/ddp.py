"""DistributedDataParallel: the same model on every rank, each on its own part of the
batch, gradients averaged across ranks after backward so every rank takes the same step.

How the averaging overlaps backward. Parameters are grouped, in reverse registration
order (roughly the order backward produces their gradients), into buckets of about
bucket_cap_mb. Each parameter has a post-accumulate-grad hook. When every gradient of a
bucket is in, the bucket's gradients are copied into one flat buffer, divided by the world
size, and a non-blocking all-reduce (MPI Iallreduce, or NCCL on the current stream) is
started on it, while backward goes on computing the next layers' gradients. Buckets start
strictly in index order, so every rank issues the same collectives in the same order.
When backward has finished (a callback queued with ember.autograd.queue_callback), any
bucket not started yet (parameters that got no gradient) is started, all are waited for
(with the process group's watchdog) and the averaged values are copied back into .grad,
so optimizer.step() sees the averaged gradients.

Which accumulation makes a gradient "in": a parameter used k times in the graph gets k
accumulations per backward. The first synchronised backward counts them and starts every
bucket only at its end; later backwards start a bucket as soon as each of its parameters
has had its count. A parameter that accumulates more often than counted (the graph
changed) raises a RuntimeError rather than averaging a partial gradient.

Each bucket also carries one slot per parameter holding 1 where that rank produced a
gradient: after the reduction it says how many ranks did, so a parameter no rank used
keeps grad None (the optimizer skips it) and a parameter some ranks used gets the average
on every rank (ranks stay identical).

state_dict / load_state_dict: the wrapped module's own keys, without torch's "module."
prefix, so a checkpoint written from a DDP model loads into the plain model and back;
load_state_dict also accepts keys carrying the "module." prefix (torch checkpoints).
"""
import contextlib

import numpy as np

from .. import autograd
from ..nn.module import Module
from ..tensor import Tensor
from . import process_group as pg


class _Bucket:
    __slots__ = ("index", "params", "offsets", "numel", "buffer", "work", "ready", "need", "dtype", "device")

    def __init__(self, index, params, dtype, device):
        self.index, self.params, self.dtype, self.device = index, params, dtype, device
        self.offsets, n = [], 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.numel = n
        # gradients, then one "this rank has a gradient" slot per parameter
        xp = np if device == "cpu" else __import__("cupy")
        self.buffer = xp.zeros(n + len(params), dtype=dtype.np)
        self.work, self.ready = None, 0
        self.need = len(params)  # parameters that get a gradient in each backward


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the default process group.

    At construction every parameter and buffer is broadcast from rank 0, so all ranks
    start identical. bucket_cap_mb: size of the gradient buckets (MB); smaller buckets
    start communicating earlier, larger ones pay the per-message latency less often.
    broadcast_buffers: copy rank 0's buffers (e.g. BatchNorm running statistics) to all
    ranks at every training-mode forward, as torch does. Move the model to its device
    before wrapping it (the buckets live there), and wrap a module only once (the hooks
    stay on its parameters). launched_during_backward and last_wait_s describe the last
    backward: buckets started before it ended, and seconds spent waiting after it."""

    def __init__(self, module, bucket_cap_mb=4.0, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps an ember.nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        group = pg._require("DistributedDataParallel")
        self.module = module
        self._group = group
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        params = [p for p in module.parameters() if p.requires_grad]
        self._sync_module_states()
        self._buckets = self._make_buckets(params)
        self._where = {}  # id(param) -> (bucket, position in bucket)
        for b in self._buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
        self._expected = None  # id(param) -> accumulations per backward, learned on the first sync
        self._counts = {}
        self._next = 0          # index of the next bucket to start
        self._in_backward = False
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad) for p in params]
        # time spent waiting for reductions after backward (the part communication did not hide)
        self.last_wait_s = 0.0
        # buckets started while backward was still running (the rest start at its end)
        self.launched_during_backward = 0

    # ---------------------------------------------------------------- setup
    def _sync_module_states(self):
        if self._group.size == 1:
            return
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            pg.broadcast(t.detach(), src=0)

    def _make_buckets(self, params):
        cap = self.bucket_cap_mb * 2**20
        buckets, current, size, key = [], [], 0, None
        for p in reversed(params):
            k = (p.dtype, p.device)
            nbytes = p.numel() * p.element_size()
            if current and (k != key or size + nbytes > cap):
                buckets.append(_Bucket(len(buckets), current, *key))
                current, size = [], 0
            current.append(p)
            size += nbytes
            key = k
        if current:
            buckets.append(_Bucket(len(buckets), current, *key))
        return buckets

    def bucket_sizes(self):
        """Number of gradient elements per bucket, in launch order."""
        return [b.numel for b in self._buckets]

    # ---------------------------------------------------------------- forward
    def forward(self, *args, **kwargs):
        if self._in_backward:  # a previous backward failed midway: forget its partial state
            self._reset()
        if self.broadcast_buffers and self.training and self._group.size > 1:
            for b in self.module.buffers():
                pg.broadcast(b, src=0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside this block only accumulate local gradients; the next
        backward outside it averages the accumulated sum (gradient accumulation)."""
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    # ---------------------------------------------------------------- backward hooks
    def _reset(self):
        for b in self._buckets:
            if b.work is not None:
                b.work.wait()
            b.work, b.ready = None, 0
        self._counts.clear()
        self._next = 0
        self._in_backward = False

    def _on_grad(self, p):
        if not self.require_backward_grad_sync:
            return
        if not self._in_backward:
            self._in_backward = True
            autograd.queue_callback(self._finalize)
        key = id(p)
        c = self._counts.get(key, 0) + 1
        self._counts[key] = c
        if self._expected is None:
            return  # first synchronised backward: just count
        want = self._expected.get(key, 0)
        if c > want:
            raise RuntimeError(
                f"DistributedDataParallel: a parameter of shape {tuple(p.shape)} received gradient "
                f"{c} times in this backward, but {want} times in the first one; its bucket was already "
                "being averaged. DDP needs the same graph structure on every iteration.")
        if c == want:
            b, _ = self._where[key]
            b.ready += 1
            self._launch_ready()
        for b in self._buckets[:self._next]:  # let MPI move data while backward runs
            if b.work is not None:
                b.work.test()

    def _launch_ready(self):
        while self._next < len(self._buckets):
            b = self._buckets[self._next]
            if b.ready < b.need:
                return
            self._launch(b)

    def _launch(self, b):
        n = self._group.size
        self._next = b.index + 1
        if n == 1:
            return  # nothing to average
        buf = b.buffer
        for p, off, i in zip(b.params, b.offsets, range(len(b.params))):
            k = p.numel()
            if p.grad is None:
                buf[off:off + k] = 0
                buf[b.numel + i] = 0
            else:
                buf[off:off + k] = p.grad._data.reshape(-1)
                buf[b.numel + i] = 1
        pg._scale_inplace(buf[:b.numel], n)
        b.work = self._start(buf)

    def _start(self, buf):
        g = self._group
        if g.backend == "nccl":
            return g.iallreduce(buf, pg.ReduceOp.SUM, "DDP gradient all_reduce")
        if not isinstance(buf, np.ndarray):  # CUDA tensors on MPI: staged through the host, blocking
            g.all_reduce(Tensor._wrap(buf), pg.ReduceOp.SUM, async_op=False)
            return pg.Work(None, "DDP gradient all_reduce", g.timeout)
        return pg.Work(g.iallreduce(buf, pg.ReduceOp.SUM), "DDP gradient all_reduce", g.timeout)

    def _finalize(self):
        import time

        if self._expected is None:
            self._expected = dict(self._counts)
            for b in self._buckets:
                b.need = sum(1 for p in b.params if self._expected.get(id(p), 0) > 0)
        self.launched_during_backward = self._next
        while self._next < len(self._buckets):
            self._launch(self._buckets[self._next])
        t0 = time.perf_counter()
        for b in self._buckets:
            if b.work is not None:
                b.work.wait()
        self.last_wait_s = time.perf_counter() - t0
        for b in self._buckets if self._group.size > 1 else ():
            buf = b.buffer
            for p, off, i in zip(b.params, b.offsets, range(len(b.params))):
                have = buf[b.numel + i]
                if not bool(have > 0):
                    continue  # no rank produced a gradient for p
                part = buf[off:off + p.numel()].reshape(p.shape)
                if p.grad is None:
                    p.grad = Tensor._wrap(part.copy())
                elif b.device == "cpu":
                    np.copyto(p.grad._data, part)
                else:
                    p.grad._data[...] = part
        for b in self._buckets:
            b.work, b.ready = None, 0
        self._counts.clear()
        self._next = 0
        self._in_backward = False

    # ---------------------------------------------------------------- state
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        return self.module.state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)

    def load_state_dict(self, state_dict, strict=True):
        if state_dict and all(isinstance(k, str) and k.startswith("module.") for k in state_dict):
            state_dict = type(state_dict)((k[len("module."):], v) for k, v in state_dict.items())
        return self.module.load_state_dict(state_dict, strict=strict)

    def extra_repr(self):
        return f"world_size={self._group.size}, buckets={len(self._buckets)}, bucket_cap_mb={self.bucket_cap_mb:g}"


def save(obj, path):
    """ember.save(obj, path) on rank 0 only (atomic: temporary file, fsync, rename), then a
    barrier so no rank reads the file before it is complete. Call it on every rank."""
    from ..serialization import save as save_file

    g = pg._group_or_none()
    if g is None or g.rank == 0:
        save_file(obj, path)
    if g is not None and g.size > 1:
        g.barrier()
