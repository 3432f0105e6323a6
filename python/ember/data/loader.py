"""DataLoader: batches of a map-style dataset, optionally shuffled by a seedable generator."""
import math
import sys
import numbers

import numpy as np

from ..tensor import Tensor, from_numpy
from .dataset import _Batch


def default_collate(batch):
    """Stack a list of samples into tensors: tensors and arrays are stacked along a new
    first dim (keeping their dtype, float64 arrays become float32), Python ints become an
    int64 tensor, floats float32, bools bool; tuples, lists and dicts are collated field by
    field."""
    if isinstance(batch, _Batch):
        return tuple(batch)
    if len(batch) == 0:
        raise ValueError("default_collate: empty batch")
    first = batch[0]
    if isinstance(first, Tensor):
        shapes = {tuple(b.shape) for b in batch}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: samples have different shapes {sorted(shapes)}; pass a collate_fn")
        return from_numpy(np.stack([b.numpy(force=True) for b in batch]))
    if isinstance(first, np.ndarray) or isinstance(first, np.generic):
        arr = np.stack([np.asarray(b) for b in batch])
        if arr.dtype == np.float64 or arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        return from_numpy(np.ascontiguousarray(arr))
    if isinstance(first, bool):
        return from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return from_numpy(np.array(batch, dtype=np.float32))
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        n = len(first)
        if any(len(b) != n for b in batch):
            raise ValueError("default_collate: samples have different numbers of fields")
        return type(first)(default_collate([b[i] for b in batch]) for i in range(n)) if isinstance(first, list) \
            else tuple(default_collate([b[i] for b in batch]) for i in range(n))
    if isinstance(first, (str, bytes)):
        return list(batch)
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`.

    shuffle=True draws a new permutation at the start of every pass from `generator` (an
    ember.Generator) or ember.default_generator, so ember.manual_seed fixes the order.
    drop_last drops a final short batch."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None, generator=None,
                 num_workers=0, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if num_workers != 0:
            raise ValueError("ember's DataLoader loads in the main process; num_workers must be 0")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader needs a map-style dataset (with __len__ and __getitem__), got "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.generator = generator
        # ---- sampler= (added for ember.distributed.DistributedSampler): any iterable of
        # indices with __len__; mutually exclusive with shuffle, as in torch.
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.sampler = sampler

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        if self.sampler is not None:
            return np.asarray(list(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self.generator is not None:
            g = self.generator
        else:
            g = sys.modules["ember.tensor"].default_generator  # (ember.tensor the attribute is a function)
        return g.np.permutation(n)

    def __iter__(self):
        order = self._order()
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        # A dataset's __getitems__ hands back an already-stacked batch, so use it only with
        # the default collate (a custom collate_fn gets the list of samples, as in torch).
        getitems = getattr(self.dataset, "__getitems__", None) if self.collate_fn is default_collate else None
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            if getitems is not None:
                samples = getitems(idx.tolist())
            else:
                samples = [self.dataset[int(i)] for i in idx]
            yield self.collate_fn(samples)

