"""Image datasets: the bundled UCI digits, and MNIST / Fashion-MNIST (IDX files) and
CIFAR-10 (python pickle batches) read from a local folder.

Each sample is (image, label): image a float32 CHW ember Tensor scaled to [0, 1] (digits:
pixel / 16), label a Python int. ``.data`` holds the raw uint8 images and ``.targets``
the int64 labels as NumPy arrays.
"""
import gzip
import io
import os
import pickle

import numpy as np

from ..tensor import from_numpy
from .dataset import Dataset, _Batch

_HERE = os.path.dirname(os.path.abspath(__file__))


class _ImageDataset(Dataset):
    """data: uint8 (N, H, W) or (N, H, W, C); targets int64 (N,)."""

    scale = 255.0

    def _setup(self, data, targets, transform, target_transform):
        self.data, self.targets = data, targets.astype(np.int64)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def _image(self, idx):
        img = self.data[idx]
        return img[None] if img.ndim == 2 else img  # (H, W) -> (1, H, W)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
        img = from_numpy(np.ascontiguousarray(self._image(index), dtype=np.float32) / np.float32(self.scale))
        target = int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __getitems__(self, indices):
        if self.transform is not None or self.target_transform is not None:
            return [self[i] for i in indices]
        idx = np.asarray(indices, dtype=np.int64)
        imgs = self.data[idx]
        if imgs.ndim == 3:
            imgs = imgs[:, None]
        imgs = np.ascontiguousarray(imgs, dtype=np.float32) / np.float32(self.scale)
        return _Batch((from_numpy(imgs), from_numpy(np.ascontiguousarray(self.targets[idx]))))


# ---------------------------------------------------------------- digits (bundled)

DIGITS_FILE = os.path.join(_HERE, "digits.npz")
# Mean and std of the training split's pixels after /16 (for Normalize).
DIGITS_MEAN = 0.30545
DIGITS_STD = 0.37604


class Digits(_ImageDataset):
    """The 1,797 8x8 UCI optical-recognition digits (the set scikit-learn ships), bundled
    with ember. Fixed split: the 360 indices in digits.npz['test_index'] are the test set,
    the other 1,437 the training set (see README.md in this folder). Images are (1, 8, 8),
    pixel values 0..16 scaled by 1/16."""

    scale = 16.0

    def __init__(self, train=True, transform=None, target_transform=None):
        images, labels, test_index = _load_digits()
        mask = np.zeros(len(labels), dtype=bool)
        mask[test_index] = True
        keep = ~mask if train else mask
        self.train = train
        self._setup(images[keep], labels[keep], transform, target_transform)


def digits(train=True, transform=None, target_transform=None):
    return Digits(train=train, transform=transform, target_transform=target_transform)


def _load_digits():
    if not os.path.exists(DIGITS_FILE):
        raise FileNotFoundError(f"the bundled digits data file is missing: {DIGITS_FILE} (reinstall ember)")
    with np.load(DIGITS_FILE, allow_pickle=False) as z:
        images, labels, test_index = z["images"], z["labels"], z["test_index"]
    if images.shape != (1797, 8, 8) or labels.shape != (1797,) or test_index.shape != (360,):
        raise ValueError(f"{DIGITS_FILE} is corrupt: shapes {images.shape}, {labels.shape}, {test_index.shape}, "
                         "expected (1797, 8, 8), (1797,), (360,)")
    return images, labels.astype(np.int64), test_index.astype(np.int64)


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

_IDX_TYPES = {0x08: np.uint8}


def _open_maybe_gz(path):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: not a valid gzip file ({e})") from None
    return raw


def read_idx(path, expected_ndim):
    """Read an IDX file (plain or .gz): magic 0x0000 <type 0x08 = ubyte> <ndim>, then ndim
    big-endian uint32 sizes, then the data. Checks the magic number, ndim and that the
    file holds exactly the data its header describes."""
    raw = _open_maybe_gz(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: file too short ({len(raw)} bytes) to be an IDX file")
    zero, dtype_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype_code not in _IDX_TYPES:
        raise ValueError(f"{path}: bad IDX magic number 0x{int.from_bytes(raw[:4], 'big'):08x} (expected "
                         f"0x{0x800 + expected_ndim:08x}: unsigned bytes, {expected_ndim} dims)")
    if ndim != expected_ndim:
        raise ValueError(f"{path}: IDX file has {ndim} dims, expected {expected_ndim} (magic "
                         f"0x{int.from_bytes(raw[:4], 'big'):08x})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != n:
        raise ValueError(f"{path}: IDX header says shape {dims} ({n} bytes of data) but the file has "
                         f"{len(raw) - header} bytes after the header (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find(root, folder, name):
    """The first of root/name[.gz], root/folder/raw/name[.gz] that exists, else None."""
    cands = []
    for d in (root, os.path.join(root, folder, "raw"), os.path.join(root, folder)):
        for suffix in ("", ".gz"):
            cands.append(os.path.join(d, name + suffix))
    for c in cands:
        if os.path.isfile(c):
            return c, cands
    return None, cands


class MNIST(_ImageDataset):
    """MNIST from the standard IDX files in `root` (or root/MNIST/raw): train-images-idx3-ubyte,
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz.
    Nothing is downloaded. Images are (1, 28, 28) in [0, 1]."""

    folder = "MNIST"

    def __init__(self, root, train=True, transform=None, target_transform=None):
        self.root, self.train = os.fspath(root), train
        prefix = "train" if train else "t10k"
        names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
        paths = []
        for name in names:
            path, cands = _find(self.root, self.folder, name)
            if path is None:
                raise FileNotFoundError(
                    f"{type(self).__name__}: {name} not found; looked for " + ", ".join(cands) +
                    f". Put the {'training' if train else 'test'} files {names[0]}[.gz] and {names[1]}[.gz] in "
                    f"{self.root} (ember does not download data)")
            paths.append(path)
        images = read_idx(paths[0], 3)
        labels = read_idx(paths[1], 1)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{paths[0]} has {images.shape[0]} images but {paths[1]} has {labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{paths[1]}: label {int(labels.max())} out of range 0..9")
        self._setup(images, labels, transform, target_transform)


class FashionMNIST(MNIST):
    """Fashion-MNIST: the same IDX file names as MNIST, in root or root/FashionMNIST/raw."""

    folder = "FashionMNIST"


# ---------------------------------------------------------------- CIFAR-10

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickling runs code named by the file; the CIFAR-10 python batches are pickles, so
    only the few globals needed to rebuild a dict of lists, bytes and NumPy arrays are
    allowed and anything else is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name} (only NumPy arrays are "
                                     "allowed in CIFAR-10 batches)")


def _load_cifar_batch(path):
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{path}: not a valid CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels' (keys: {sorted(map(str, d))})")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels out of range 0..9")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10(_ImageDataset):
    """CIFAR-10 from the python batches in root/cifar-10-batches-py (or root): data_batch_1 ..
    data_batch_5 for training, test_batch for testing. Images are (3, 32, 32) in [0, 1]."""

    def __init__(self, root, train=True, transform=None, target_transform=None):
        self.root, self.train = os.fspath(root), train
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        base = os.path.join(self.root, "cifar-10-batches-py")
        if not os.path.isdir(base):
            base = self.root
        missing = [n for n in names if not os.path.isfile(os.path.join(base, n))]
        if missing:
            raise FileNotFoundError(f"CIFAR10: missing {', '.join(missing)} in {base} (expected "
                                    f"{', '.join(names)} from cifar-10-python.tar.gz, extracted under {self.root}; "
                                    "ember does not download data)")
        parts = [_load_cifar_batch(os.path.join(base, n)) for n in names]
        self._setup(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    transform, target_transform)

