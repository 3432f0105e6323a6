"""ember.distributed: data-parallel training across processes and machines.

    mpiexec -n 4 python train.py          # or: ember train --nproc 4

    import ember.distributed as dist
    dist.init_process_group("mpi")        # "nccl" for one GPU per rank
    model = dist.DistributedDataParallel(model)
    sampler = dist.DistributedSampler(train_set)
    loader = ember.data.DataLoader(train_set, batch_size=B // dist.get_world_size(), sampler=sampler)
    for epoch in range(E):
        sampler.set_epoch(epoch)
        for x, y in loader: ... loss.backward(); opt.step()

Collectives (all_reduce, broadcast, all_gather, barrier) work in place on ember tensors;
save(obj, path) is ember.save on rank 0 only, followed by a barrier.
mpi4py is imported only by init_process_group: without it, that call raises an
ImportError saying `pip install "ember[distributed]"`.
"""
from .process_group import (
    ReduceOp,
    Work,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
)
from .ddp import DistributedDataParallel, save
from .sampler import DistributedSampler

__all__ = ["ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast", "destroy_process_group",
           "get_backend", "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
           "DistributedDataParallel", "DistributedSampler", "save"]
