"""Per-sample image transforms (torchvision.transforms names). Each takes and returns a
CHW image as an ember Tensor; ToTensor turns an HWC/HW uint8 array into one. Random
transforms draw from ember.default_generator (or the generator given)."""
import numbers
import sys

import numpy as np

from ..tensor import Tensor, from_numpy


def _np(img):
    if isinstance(img, Tensor):
        return img.numpy(force=True)
    return np.asarray(img)


def _gen(generator):
    return (generator or sys.modules["ember.tensor"].default_generator).np


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class ToTensor:
    """HWC (or HW) uint8 array in [0, 255] -> CHW float32 Tensor in [0, 1]; float arrays are
    only transposed."""

    def __call__(self, img):
        arr = _np(img)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"ToTensor: expected an HW or HWC image, got shape {arr.shape}")
        arr = arr.transpose(2, 0, 1)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        return from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel of a CHW image."""

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float, leading to division by "
                             f"zero (std={std})")

    def __call__(self, img):
        arr = _np(img)
        if arr.ndim < 3:
            raise ValueError(f"Normalize: expected a CHW image, got shape {arr.shape}")
        c = arr.shape[-3]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} means / {self.std.size} stds for an image with {c} "
                             "channels")
        m = self.mean.reshape(-1, 1, 1)
        s = self.std.reshape(-1, 1, 1)
        out = ((arr - m) / s).astype(arr.dtype if arr.dtype.kind == "f" else np.float32)
        return from_numpy(np.ascontiguousarray(out))

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _pair(size, name):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: size must be an int or (h, w), got {size!r}")


class RandomCrop:
    """Zero-pad each side by `padding`, then cut a random size[0] x size[1] window."""

    def __init__(self, size, padding=0, generator=None):
        self.size = _pair(size, "RandomCrop")
        if padding < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, got {padding}")
        self.padding = int(padding)
        self.generator = generator

    def __call__(self, img):
        arr = _np(img)
        p = self.padding
        if p:
            arr = np.pad(arr, [(0, 0)] * (arr.ndim - 2) + [(p, p), (p, p)])
        h, w = arr.shape[-2:]
        th, tw = self.size
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {self.size} is larger than the (padded) image "
                             f"size {(h, w)}")
        g = _gen(self.generator)
        i = int(g.integers(0, h - th + 1))
        j = int(g.integers(0, w - tw + 1))
        return from_numpy(np.ascontiguousarray(arr[..., i:i + th, j:j + tw]))

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability p."""

    def __init__(self, p=0.5, generator=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def __call__(self, img):
        arr = _np(img)
        if _gen(self.generator).random() < self.p:
            arr = arr[..., ::-1]
        return from_numpy(np.ascontiguousarray(arr))

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
