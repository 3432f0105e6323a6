"""The process group: which process this is (rank) among how many (world size), and the
collectives between them, on MPI (CPU tensors; CUDA tensors are staged through the host)
or NCCL (CUDA tensors, communicator set up over MPI).

Ranks come from the MPI launcher (`mpiexec -n N ...`) through mpi4py's COMM_WORLD; a
script started without a launcher is rank 0 of 1. Collectives work in place on the
tensor's own storage (the NumPy array behind a CPU tensor is the MPI buffer; for NCCL the
CuPy pointer, on CuPy's current stream), so nothing is copied on the way.

No rank may wait forever: every wait is non-blocking MPI polled against a deadline (the
`timeout` of init_process_group, default 600 s or $EMBER_DIST_TIMEOUT), and on expiry, or
on an uncaught exception in any rank, that rank calls MPI Abort, which ends the whole job
with a non-zero exit code and a message naming the rank and the operation.
"""
import datetime
import enum
import os
import sys
import time
import traceback

import numpy as np

_INSTALL_HINT = 'ember.distributed needs mpi4py and an MPI library: pip install "ember[distributed]"'


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from None
    return MPI


class ReduceOp(enum.Enum):
    SUM = "sum"
    MEAN = "mean"
    AVG = "mean"  # torch's other name for MEAN
    MAX = "max"
    MIN = "min"


_group = None


def _default_timeout():
    env = os.environ.get("EMBER_DIST_TIMEOUT")
    if env:
        try:
            return float(env)
        except ValueError:
            raise ValueError(f"EMBER_DIST_TIMEOUT must be a number of seconds, got {env!r}") from None
    return 600.0


def _seconds(timeout):
    if timeout is None:
        return _default_timeout()
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or a timedelta, got {timeout!r}")
    return float(timeout)


# ---------------------------------------------------------------- failing fast

def _abort(message, code=1):
    """End the whole MPI job now (every rank), after saying why on stderr."""
    MPI = _mpi()
    rank = MPI.COMM_WORLD.Get_rank()
    sys.stderr.write(f"ember.distributed: rank {rank}: {message}; aborting all ranks\n")
    sys.stderr.flush()
    sys.stdout.flush()
    # Give the launcher a moment to forward what this rank printed: Abort tears the job
    # down at once, and output still in the launcher's pipes would be lost with it.
    time.sleep(0.5)
    MPI.COMM_WORLD.Abort(code)


_prev_excepthook = None


def _excepthook(etype, value, tb):
    """An uncaught exception in one rank would leave the others waiting in a collective:
    print it, then abort the job."""
    try:
        (_prev_excepthook or sys.__excepthook__)(etype, value, tb)
    except Exception:
        traceback.print_exception(etype, value, tb)
    finally:
        if _group is not None and _group.size > 1:
            _abort(f"uncaught {etype.__name__}: {value}")


def _wait(req, what, timeout):
    """Complete an MPI request, polling so that a dead or stuck peer turns into an abort
    after `timeout` seconds instead of a hang. Like MPI's own blocking wait it polls
    without sleeping (a sleeping process may wait milliseconds to be scheduled again):
    the first polls back to back, then yielding the core between polls so that a peer rank
    sharing it can run; after `_SPIN_S` seconds it polls every millisecond, the watchdog
    regime."""
    if req.Test():
        return
    start = time.monotonic()
    deadline = start + timeout
    polls = 0
    while not req.Test():
        polls += 1
        if polls & 1023:
            if polls > 1024 and _HAVE_YIELD:
                os.sched_yield()
            continue
        now = time.monotonic()
        if now > deadline:
            _abort(f"{what} did not complete within {timeout:g} s (a peer rank died, hung or skipped it; "
                   "raise init_process_group(timeout=...) or $EMBER_DIST_TIMEOUT if a rank is just slow)")
        if now - start > _SPIN_S:
            time.sleep(1e-3)


_SPIN_S = 1.0
_HAVE_YIELD = hasattr(os, "sched_yield")


class Work:
    """A collective in flight (async_op=True). wait() completes it (watchdog included) and
    finishes it (copy back, division for MEAN)."""

    def __init__(self, req, what, timeout, finish=None):
        self._req, self._what, self._timeout, self._finish = req, what, timeout, finish
        self._done = False

    def is_completed(self):
        if self._done:
            return True
        return self._req is None or bool(self._req.Test())

    def test(self):
        """Progress the collective without blocking (MPI needs calls to move data)."""
        if self._req is not None and not self._done:
            self._req.Test()

    def wait(self):
        if self._done:
            return True
        if self._req is not None:
            _wait(self._req, self._what, self._timeout)
        self._done = True
        if self._finish is not None:
            self._finish()
        return True


# ---------------------------------------------------------------- buffers

_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.MEAN: "SUM", ReduceOp.MAX: "MAX", ReduceOp.MIN: "MIN"}
_SUPPORTED = ("float32", "float64", "int64")


def _check_tensor(t, what):
    from ..tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected an ember.Tensor, got {type(t).__name__}")
    if t.dtype.name not in _SUPPORTED:
        raise TypeError(f"{what}: tensor dtype {t.dtype.name} is not supported (float32, float64 or int64)")
    if not t.is_contiguous():
        raise ValueError(f"{what}: tensors must be contiguous (call .contiguous() first)")


def _scale_inplace(data, factor):
    """data *= factor with ember's own kernel (the MEAN of a SUM)."""
    from ..tensor import Tensor
    from ..autograd import no_grad

    with no_grad():
        Tensor._wrap(data).div_(factor)


class _MPIGroup:
    """Collectives over an mpi4py communicator on host buffers (CUDA tensors go through a
    host copy: the mpich wheel is not CUDA-aware)."""

    backend = "mpi"

    def __init__(self, comm, timeout):
        self.comm, self.timeout = comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def _host(self, t):
        """(host array, write-back function) for tensor t: zero-copy on CPU."""
        if t.device == "cpu":
            return t._data, None
        host = t._data.get()
        return host, (lambda: t._data.set(host))

    def iallreduce(self, data, op, what="all_reduce"):
        """Start an in-place sum/max/min of the host array `data` (C-contiguous)."""
        MPI = _mpi()
        return self.comm.Iallreduce(MPI.IN_PLACE, data, getattr(MPI, _MPI_OPS[op]))

    def all_reduce(self, t, op, async_op):
        data, back = self._host(t)

        def finish():
            if op is ReduceOp.MEAN:
                _scale_inplace(data, self.size)
            if back is not None:
                back()

        w = Work(self.iallreduce(data, op), "all_reduce", self.timeout, finish)
        return w if async_op else w.wait()

    def broadcast(self, t, src, async_op):
        data, back = self._host(t)
        w = Work(self.comm.Ibcast(data, root=src), "broadcast", self.timeout, back)
        return w if async_op else w.wait()

    def all_gather(self, tensor_list, t, async_op):
        data, _ = self._host(t)
        recv = np.empty((self.size,) + data.shape, dtype=data.dtype)

        def finish():
            for out, part in zip(tensor_list, recv):
                if out.device == "cpu":
                    np.copyto(out._data, part)
                else:
                    out._data.set(part)

        w = Work(self.comm.Iallgather(data, recv), "all_gather", self.timeout, finish)
        return w if async_op else w.wait()

    def barrier(self):
        _wait(self.comm.Ibarrier(), "barrier", self.timeout)

    def close(self):
        pass


class _NCCLWork(Work):
    """An NCCL collective queued on a CUDA stream: wait() polls an event recorded after it,
    with the same deadline as MPI waits."""

    def __init__(self, event, what, timeout, finish=None):
        super().__init__(None, what, timeout, finish)
        self._event = event

    def is_completed(self):
        return self._done or self._event.done

    def wait(self):
        if self._done:
            return True
        deadline = time.monotonic() + self._timeout
        while not self._event.done:
            if time.monotonic() > deadline:
                _abort(f"NCCL {self._what} did not complete within {self._timeout:g} s")
            time.sleep(1e-5)
        self._done = True
        if self._finish is not None:
            self._finish()
        return True


class _NCCLGroup:
    """Collectives with NCCL (cupy.cuda.nccl) on CUDA tensors, on CuPy's current stream.
    Each rank uses the GPU of its local rank; the NCCL unique id travels from rank 0 to
    the others over MPI. Barriers go through MPI after a stream sync. Not run in CI (no
    GPU there)."""

    backend = "nccl"

    def __init__(self, comm, timeout):
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as e:
            raise ImportError(f'backend="nccl" needs CuPy with NCCL (pip install "ember[cuda]"): {e}') from None
        if not getattr(nccl, "available", True):
            raise RuntimeError('backend="nccl": this CuPy build has no NCCL support')
        MPI = _mpi()
        self.comm, self.timeout = comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._cupy, self._nccl = cupy, nccl
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        local_rank, local_size = local.Get_rank(), local.Get_size()
        local.Free()
        # One GPU per rank. ember computes on "the" GPU (CuPy's device 0 in a fresh process),
        # so show each rank only its own, by local rank; this takes effect when CUDA has not
        # been initialised in this process yet, otherwise the device is selected below.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(local_rank)
        else:
            ids = [v for v in visible.split(",") if v.strip()]
            if len(ids) >= local_size:
                os.environ["CUDA_VISIBLE_DEVICES"] = ids[local_rank]
        try:
            n_dev = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError:
            n_dev = 0
        if n_dev == 0:
            raise RuntimeError(f'backend="nccl": rank {self.rank} (local rank {local_rank} of {local_size} on this '
                               f"machine) sees no CUDA device (CUDA_VISIBLE_DEVICES="
                               f"{os.environ.get('CUDA_VISIBLE_DEVICES')}); run one rank per GPU")
        self.device_index = 0 if n_dev == 1 else local_rank % n_dev
        cupy.cuda.Device(self.device_index).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._dtypes = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64, "int64": nccl.NCCL_INT64}
        self._ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.MEAN: nccl.NCCL_SUM, ReduceOp.MAX: nccl.NCCL_MAX,
                     ReduceOp.MIN: nccl.NCCL_MIN}

    def _check(self, t, what):
        if t.device != "cuda":
            raise ValueError(f'{what}: backend "nccl" works on cuda tensors; this one is on {t.device} '
                             '(use backend="mpi" for CPU tensors)')

    def _work(self, what, finish=None):
        stream = self._cupy.cuda.get_current_stream()
        event = self._cupy.cuda.Event(disable_timing=True)
        event.record(stream)
        return _NCCLWork(event, what, self.timeout, finish)

    def iallreduce(self, data, op, what="all_reduce"):
        stream = self._cupy.cuda.get_current_stream().ptr
        self.nccl_comm.allReduce(data.data.ptr, data.data.ptr, data.size, self._dtypes[data.dtype.name],
                                 self._ops[op], stream)
        return self._work(what)

    def all_reduce(self, t, op, async_op):
        self._check(t, "all_reduce")
        data = t._data
        self.iallreduce(data, op)
        if op is ReduceOp.MEAN:
            _scale_inplace(data, self.size)  # queued on the same stream, after the sum
        w = self._work("all_reduce")
        return w if async_op else w.wait()

    def broadcast(self, t, src, async_op):
        self._check(t, "broadcast")
        d = t._data
        self.nccl_comm.broadcast(d.data.ptr, d.data.ptr, d.size, self._dtypes[d.dtype.name], src,
                                 self._cupy.cuda.get_current_stream().ptr)
        w = self._work("broadcast")
        return w if async_op else w.wait()

    def all_gather(self, tensor_list, t, async_op):
        self._check(t, "all_gather")
        for out in tensor_list:
            self._check(out, "all_gather")
        d = t._data
        recv = self._cupy.empty((self.size,) + d.shape, dtype=d.dtype)
        self.nccl_comm.allGather(d.data.ptr, recv.data.ptr, d.size, self._dtypes[d.dtype.name],
                                 self._cupy.cuda.get_current_stream().ptr)
        for out, part in zip(tensor_list, recv):
            out._data[...] = part
        w = self._work("all_gather")
        return w if async_op else w.wait()

    def barrier(self):
        self._work("barrier (device work before it)").wait()
        _wait(self.comm.Ibarrier(), "barrier", self.timeout)

    def close(self):
        self.nccl_comm.destroy()


# ---------------------------------------------------------------- public API

def is_available():
    """True when mpi4py (and so an MPI library) can be imported."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


def init_process_group(backend="mpi", timeout=None):
    """Join the job this process was launched into (mpiexec -n N; a plain run is rank 0 of
    1). backend: "mpi" (CPU tensors, any MPI) or "nccl" (CUDA tensors, one GPU per rank).
    timeout (seconds or timedelta): how long any collective may wait before the job is
    aborted. Installs an excepthook that aborts all ranks when one raises."""
    global _group, _prev_excepthook
    if _group is not None:
        raise RuntimeError("init_process_group was already called; call destroy_process_group first")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f'backend must be "mpi" or "nccl", got {backend!r}')
    timeout = _seconds(timeout)
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    group = _MPIGroup(comm, timeout) if backend == "mpi" else _NCCLGroup(comm, timeout)
    _group = group
    if sys.excepthook is not _excepthook:
        _prev_excepthook = sys.excepthook
        sys.excepthook = _excepthook


def destroy_process_group():
    """Leave the group (after a final barrier-free cleanup); init_process_group may follow."""
    global _group, _prev_excepthook
    g = _require("destroy_process_group")
    g.close()
    g.comm.Free()
    _group = None
    if sys.excepthook is _excepthook:
        sys.excepthook = _prev_excepthook or sys.__excepthook__
        _prev_excepthook = None


def is_initialized():
    return _group is not None


def _require(what):
    if _group is None:
        raise RuntimeError(f"{what}: the default process group is not initialized; call "
                           "ember.distributed.init_process_group() first")
    return _group


def get_backend():
    return _require("get_backend").backend


def get_rank():
    return _require("get_rank").rank


def get_world_size():
    return _require("get_world_size").size


def barrier():
    """Wait until every rank has reached this call."""
    _require("barrier").barrier()


def _check_op(op):
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be an ember.distributed.ReduceOp, got {op!r}")
    return op


def all_reduce(tensor, op=ReduceOp.SUM, async_op=False):
    """Reduce `tensor` across ranks in place: every rank ends with the SUM / MEAN / MAX /
    MIN of all ranks' tensors. async_op=True returns a Work to wait() on."""
    g = _require("all_reduce")
    _check_tensor(tensor, "all_reduce")
    op = _check_op(op)
    if op is ReduceOp.MEAN and not tensor.dtype.is_floating_point:
        raise TypeError(f"all_reduce: ReduceOp.MEAN needs a floating-point tensor, got {tensor.dtype.name} "
                        "(reduce with SUM and divide yourself)")
    return g.all_reduce(tensor, op, async_op)


def broadcast(tensor, src=0, async_op=False):
    """Copy rank `src`'s tensor into `tensor` on every rank, in place."""
    g = _require("broadcast")
    _check_tensor(tensor, "broadcast")
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < g.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {g.size}), got {src!r}")
    return g.broadcast(tensor, src, async_op)


def all_gather(tensor_list, tensor, async_op=False):
    """tensor_list[r] <- rank r's `tensor`, on every rank. tensor_list holds world-size
    tensors of tensor's shape and dtype."""
    g = _require("all_gather")
    _check_tensor(tensor, "all_gather")
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != g.size:
        n = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of {g.size} tensors (the world size), got {n}")
    for i, t in enumerate(tensor_list):
        _check_tensor(t, f"all_gather: tensor_list[{i}]")
        if t.shape != tensor.shape or t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {t.shape} and dtype {t.dtype.name}; "
                             f"expected {tensor.shape} and {tensor.dtype.name} like the input")
    return g.all_gather(tensor_list, tensor, async_op)


def _group_or_none():
    return _group
