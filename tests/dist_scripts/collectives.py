"""Run under mpiexec [backend device] (default: mpi cpu; nccl cuda for GPUs): check every
collective against the exact expected values; exit 0 if all match. Each rank r
contributes values that depend on r, so the expected results are known in closed form."""
import sys

import numpy as np

import ember
import ember.distributed as dist


def check(name, got, want):
    got = got.numpy(force=True) if isinstance(got, ember.Tensor) else np.asarray(got)
    if got.dtype != np.asarray(want).dtype or not np.array_equal(got, want):
        raise AssertionError(f"rank {dist.get_rank()}: {name}: got {got!r}, expected {want!r}")


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "mpi"
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    dist.init_process_group(backend, timeout=20)
    r, n = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and dist.get_backend() == backend

    def T(arr):  # a tensor on the device under test
        return ember.from_numpy(np.ascontiguousarray(arr)).to(device=device)

    ranks = list(range(n))
    for dt in (np.float32, np.float64, np.int64):
        base = np.array([[1, -2, 3], [4, 5, -6]], dtype=dt)
        # values exactly representable, so sums are exact in every dtype
        mine = lambda k: base * (k + 1) + k  # noqa: E731
        t = T(mine(r))
        keep = t._data
        dist.all_reduce(t)
        assert t._data is keep  # in place, same storage
        check(f"sum {dt.__name__}", t, sum(mine(k) for k in ranks).astype(dt))
        t = T(mine(r))
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        check(f"max {dt.__name__}", t, np.max([mine(k) for k in ranks], axis=0).astype(dt))
        t = T(mine(r))
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        check(f"min {dt.__name__}", t, np.min([mine(k) for k in ranks], axis=0).astype(dt))
        if dt != np.int64:
            t = T(mine(r))
            dist.all_reduce(t, op=dist.ReduceOp.MEAN)
            check(f"mean {dt.__name__}", t, (sum(mine(k) for k in ranks) / dt(n)).astype(dt))
        else:
            try:
                dist.all_reduce(T(mine(r)), op=dist.ReduceOp.MEAN)
                raise AssertionError("MEAN of int64 should raise")
            except TypeError as e:
                assert "floating-point" in str(e)
        for src in range(n):
            t = T(mine(r))
            dist.broadcast(t, src=src)
            check(f"broadcast from {src} {dt.__name__}", t, mine(src))
        outs = [ember.zeros(2, 3, dtype=ember.as_dtype(dt), device=device) for _ in range(n)]
        dist.all_gather(outs, T(mine(r)))
        for k in ranks:
            check(f"all_gather[{k}] {dt.__name__}", outs[k], mine(k))
    # 0-d and empty tensors, async_op
    t = ember.tensor(float(r + 1), device=device)
    dist.all_reduce(t)
    check("0-d sum", t, np.array(n * (n + 1) / 2, dtype=np.float32))
    t = ember.zeros(0, device=device)
    dist.all_reduce(t)
    check("empty", t, np.zeros(0, np.float32))
    t = ember.full((1000,), float(r), device=device)
    w = dist.all_reduce(t, async_op=True)
    w.wait()
    assert w.is_completed()
    check("async sum", t, np.full(1000, sum(ranks), np.float32))
    # bad arguments
    for call, exc, msg in [
        (lambda: dist.all_reduce(ember.zeros(3, 4).T), ValueError, "contiguous"),
        (lambda: dist.all_reduce(ember.zeros(3, dtype=ember.bool)), TypeError, "dtype bool"),
        (lambda: dist.all_reduce(np.zeros(3)), TypeError, "ember.Tensor"),
        (lambda: dist.all_reduce(ember.zeros(3), op="sum"), TypeError, "ReduceOp"),
        (lambda: dist.broadcast(ember.zeros(3), src=n), ValueError, "src must be a rank"),
        (lambda: dist.all_gather([ember.zeros(3)] * (n + 1), ember.zeros(3)), ValueError, "list of"),
        (lambda: dist.all_gather([ember.zeros(4)] * n, ember.zeros(3)), ValueError, "shape"),
        (lambda: dist.init_process_group(), RuntimeError, "already"),
    ] + ([(lambda: dist.all_reduce(ember.zeros(3)), ValueError, "works on cuda tensors")] if backend == "nccl" else []):
        try:
            call()
        except exc as e:
            assert msg in str(e), (msg, str(e))
        else:
            raise AssertionError(f"expected {exc.__name__} matching {msg!r}")
    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print(f"rank {r}/{n}: collectives ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
