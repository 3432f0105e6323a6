"""DistributedSampler: each rank's share of a data set's indices, as in
torch.utils.data.distributed.DistributedSampler.

Every rank draws the same permutation (from seed + epoch, so set_epoch(e) reshuffles the
same way on all ranks), pads it by repeating its first indices up to a multiple of
num_replicas (or, with drop_last, cuts the tail), and takes every num_replicas-th index
starting at its rank. Together the ranks cover the data set exactly once per epoch (plus
the padding repeats). Pass it to DataLoader(dataset, sampler=...).
"""
import math
import numbers

import numpy as np


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}")
    return int(value)


class DistributedSampler:
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler needs a dataset with __len__, got {type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from . import process_group as pg
            if not pg.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "ember.distributed.init_process_group() first")
            num_replicas = pg.get_world_size() if num_replicas is None else num_replicas
            rank = pg.get_rank() if rank is None else rank
        num_replicas, rank = _int(num_replicas, "num_replicas"), _int(rank, "rank")
        if num_replicas <= 0:
            raise ValueError(f"DistributedSampler: num_replicas must be positive, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = bool(shuffle), _int(seed, "seed"), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            # the largest per-rank count that every rank can fill without repeats
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch):
        """Use a different (but on every rank the same) shuffle for this epoch."""
        self.epoch = _int(epoch, "epoch")

    def __len__(self):
        return self.num_samples

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            seed = (self.seed + self.epoch) % 2**64
            order = np.random.Generator(np.random.Philox(seed)).permutation(n)
        else:
            order = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad > 0 and n > 0:
                order = np.concatenate([order, np.resize(order, pad)])  # repeats from the start
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())
