"""Dataset and TensorDataset (torch.utils.data names)."""
from ..tensor import Tensor


class Dataset:
    """A map-style dataset: __getitem__(i) -> sample, __len__(). Subclasses may also define
    __getitems__(indices) -> list of samples, which DataLoader uses to fetch a batch at once."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors that share their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset takes ember Tensors, got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError("TensorDataset: tensors need a first (sample) dimension, got a 0-d tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("Size mismatch between tensors: first dimensions are "
                             + ", ".join(str(t.shape[0]) for t in tensors))
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        """The whole batch as one tuple of stacked tensors (one gather per tensor)."""
        import numpy as np
        from ..tensor import from_numpy
        idx = np.asarray(indices, dtype=np.int64)
        return _Batch(tuple(from_numpy(np.ascontiguousarray(t.numpy(force=True)[idx])) for t in self.tensors))

    def __len__(self):
        return self.tensors[0].shape[0]


class _Batch(tuple):
    """A batch already collated by a dataset's __getitems__."""
