"""ember.data: DataLoader batching / shuffling / collation, the bundled digits, MNIST and
Fashion-MNIST from real-format IDX files (plain and .gz), CIFAR-10 pickle batches, the
restricted unpickler, transforms, and clear errors for missing or corrupt files."""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import ember
from ember import data
from ember.data import transforms as T


# ---------------------------------------------------------------- DataLoader
# DataLoader has no device argument: batches are collated in host memory (fit and evaluate
# move them), so the device tests build datasets from device tensors and check the values.

def _np(t):
    return t.numpy(force=True)


def test_tensordataset_and_sequential_batches(device):
    x = ember.arange(20, device=device).reshape(10, 2).float()
    y = ember.arange(10, device=device)
    ds = data.TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    assert xi.device == device and _np(xi).tolist() == [6.0, 7.0] and yi.item() == 3
    dl = data.DataLoader(ds, batch_size=4)
    assert len(dl) == 3
    batches = list(dl)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    assert _np(batches[2][1]).tolist() == [8, 9]
    assert batches[0][0].dtype == ember.float32 and batches[0][1].dtype == ember.int64
    moved = [tuple(t.to(device) for t in b) for b in batches]
    assert all(t.device == device for b in moved for t in b)
    np.testing.assert_array_equal(np.concatenate([_np(b[0]) for b in moved]), _np(x))
    dl = data.DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [b[0].shape[0] for b in dl] == [4, 4]
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        data.TensorDataset(x, ember.arange(9, device=device))
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        data.DataLoader(ds, batch_size=0)


def test_shuffle_is_seeded_and_a_permutation(device):
    ds = data.TensorDataset(ember.arange(50, device=device))
    g1, g2 = ember.Generator(5), ember.Generator(5)
    a = [_np(b[0]).tolist() for b in data.DataLoader(ds, batch_size=8, shuffle=True, generator=g1)]
    b = [_np(b[0]).tolist() for b in data.DataLoader(ds, batch_size=8, shuffle=True, generator=g2)]
    assert a == b
    flat = sum(a, [])
    assert sorted(flat) == list(range(50)) and flat != list(range(50))
    # a new order each pass
    dl = data.DataLoader(ds, batch_size=50, shuffle=True, generator=ember.Generator(1))
    assert _np(next(iter(dl))[0]).tolist() != _np(next(iter(dl))[0]).tolist()
    # default generator follows ember.manual_seed
    ember.manual_seed(3)
    c = _np(next(iter(data.DataLoader(ds, batch_size=50, shuffle=True)))[0])
    ember.manual_seed(3)
    d = _np(next(iter(data.DataLoader(ds, batch_size=50, shuffle=True)))[0])
    np.testing.assert_array_equal(c, d)


class _Samples(data.Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        img = np.full((1, 2, 2), i, dtype=np.uint8)
        return {"image": T.ToTensor()(img[0]), "label": i, "weight": 0.5 * i, "flag": i % 2 == 0,
                "pair": (np.float64(i), ember.tensor([i, i]))}


def test_default_collate_types():
    batch = next(iter(data.DataLoader(_Samples(), batch_size=3)))
    assert batch["image"].shape == (3, 1, 2, 2) and batch["image"].dtype == ember.float32
    np.testing.assert_allclose(_np(batch["image"])[2], 2 / 255)
    assert batch["label"].dtype == ember.int64 and _np(batch["label"]).tolist() == [0, 1, 2]
    assert batch["weight"].dtype == ember.float32
    assert batch["flag"].dtype == ember.bool and _np(batch["flag"]).tolist() == [True, False, True]
    assert batch["pair"][0].dtype == ember.float32 and batch["pair"][1].shape == (3, 2)
    with pytest.raises(ValueError, match="different shapes"):
        data.default_collate([ember.zeros(2), ember.zeros(3)])
    with pytest.raises(TypeError, match="don't know how to batch"):
        data.default_collate([object()])


# ---------------------------------------------------------------- digits
# (the datasets read files into host memory: CPU only)

def test_digits_bundled_split():
    tr, te = data.Digits(train=True), data.Digits(train=False)
    assert len(tr) == 1437 and len(te) == 360
    img, label = tr[0]
    assert img.shape == (1, 8, 8) and img.dtype == ember.float32 and isinstance(label, int)
    assert 0.0 <= float(_np(img).min()) and float(_np(img).max()) <= 1.0
    assert tr.data.max() == 16 and tr.data.dtype == np.uint8
    assert np.bincount(tr.targets, minlength=10).min() > 120 and np.bincount(te.targets).min() > 20
    # the split is a partition of the 1,797 images
    both = np.concatenate([tr.data.reshape(len(tr), -1), te.data.reshape(len(te), -1)])
    assert len(both) == 1797
    x = tr.data[:, None].astype(np.float32) / 16
    assert abs(x.mean() - data.DIGITS_MEAN) < 1e-4 and abs(x.std() - data.DIGITS_STD) < 1e-4
    batch = next(iter(data.DataLoader(te, batch_size=360)))
    np.testing.assert_allclose(_np(batch[0]), te.data[:, None] / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(_np(batch[1]), te.targets)


# ---------------------------------------------------------------- IDX files

def _idx_bytes(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _write(path, raw, gz=False):
    if gz:
        path = str(path) + ".gz"
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        with open(path, "wb") as f:
            f.write(raw)
    return path


def _mnist_files(folder, prefix, n, gz, rng):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    _write(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), _idx_bytes(images), gz)
    _write(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), _idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = _mnist_files(tmp_path, "train", 7, gz, rng)
    timages, tlabels = _mnist_files(tmp_path, "t10k", 3, gz, rng)
    ds = data.MNIST(tmp_path, train=True)
    assert len(ds) == 7
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    img, lab = ds[4]
    assert img.shape == (1, 28, 28) and lab == int(labels[4])
    np.testing.assert_allclose(_np(img)[0], images[4] / 255.0, rtol=1e-6)
    test = data.MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(test.targets, tlabels)
    x, y = next(iter(data.DataLoader(test, batch_size=3)))
    assert x.shape == (3, 1, 28, 28) and x.dtype == ember.float32 and y.dtype == ember.int64
    np.testing.assert_allclose(_np(x)[:, 0], timages / 255.0, rtol=1e-6)


def test_fashion_mnist_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = _mnist_files(raw, "t10k", 4, True, np.random.default_rng(1))
    ds = data.FashionMNIST(tmp_path, train=False, transform=T.Normalize(0.5, 0.25))
    img, lab = ds[2]
    np.testing.assert_allclose(_np(img)[0], (images[2] / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    assert lab == labels[2]


def test_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte not found; looked for " +
                       str(tmp_path / "train-images-idx3-ubyte").replace(".", r"\.")):
        data.MNIST(tmp_path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    img_path = tmp_path / "train-images-idx3-ubyte"
    lab_path = tmp_path / "train-labels-idx1-ubyte"
    _write(lab_path, _idx_bytes(np.arange(5)))
    # wrong magic
    _write(img_path, b"\x00\x00\x0d\x03" + _idx_bytes(images)[4:])
    with pytest.raises(ValueError, match="bad IDX magic number 0x00000d03 .*expected 0x00000803"):
        data.MNIST(tmp_path)
    # labels file given where images are expected (1 dim instead of 3)
    _write(img_path, _idx_bytes(np.arange(5)))
    with pytest.raises(ValueError, match="has 1 dims, expected 3"):
        data.MNIST(tmp_path)
    # truncated data
    _write(img_path, _idx_bytes(images)[:-10])
    with pytest.raises(ValueError, match=r"says shape \(5, 28, 28\) \(3920 bytes of data\) but the file has 3910"):
        data.MNIST(tmp_path)
    _write(img_path, b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        data.MNIST(tmp_path)
    # image / label count mismatch
    _write(img_path, _idx_bytes(images[:4]))
    with pytest.raises(ValueError, match="has 4 images but .* has 5 labels"):
        data.MNIST(tmp_path)
    # corrupt gzip
    os.remove(img_path)
    _write(str(img_path) + ".gz", b"this is not gzip")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        data.MNIST(tmp_path)
    # out-of-range label
    os.remove(str(img_path) + ".gz")
    _write(img_path, _idx_bytes(images))
    _write(lab_path, _idx_bytes([0, 1, 2, 3, 12]))
    with pytest.raises(ValueError, match="label 12 out of range"):
        data.MNIST(tmp_path)


# ---------------------------------------------------------------- CIFAR-10

def _cifar_batch(path, n, rng):
    d = {b"batch_label": b"batch", b"labels": rng.integers(0, 10, size=n).tolist(),
         b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
         b"filenames": [b"f%d.png" % i for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return d


def test_cifar10(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    parts = [_cifar_batch(base / f"data_batch_{i}", 3, rng) for i in range(1, 6)]
    test = _cifar_batch(base / "test_batch", 4, rng)
    tr = data.CIFAR10(tmp_path, train=True)
    assert len(tr) == 15 and tr.data.shape == (15, 3, 32, 32)
    np.testing.assert_array_equal(tr.targets, sum((p[b"labels"] for p in parts), []))
    img, lab = tr[4]
    np.testing.assert_allclose(_np(img), parts[1][b"data"][1].reshape(3, 32, 32) / 255.0, rtol=1e-6)
    te = data.CIFAR10(base, train=False)  # the batches folder itself also works
    x, y = next(iter(data.DataLoader(te, batch_size=4)))
    assert x.shape == (4, 3, 32, 32) and _np(y).tolist() == test[b"labels"]
    aug = data.CIFAR10(tmp_path, train=False, transform=T.Compose([T.RandomCrop(32, padding=4),
                                                                   T.RandomHorizontalFlip()]))
    x, _ = next(iter(data.DataLoader(aug, batch_size=4)))
    assert x.shape == (4, 3, 32, 32)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_errors_and_restricted_unpickler(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing test_batch in .*cifar-10-python.tar.gz"):
        data.CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": [0]}, f)
    with pytest.raises(ValueError, match="refusing to unpickle global .*system"):
        data.CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        f.write(b"\x80\x02garbage")
    with pytest.raises(ValueError, match="not a valid CIFAR-10 python batch"):
        data.CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"must be uint8 of shape \(N, 3072\)"):
        data.CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, f)
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        data.CIFAR10(tmp_path, train=False)


# ---------------------------------------------------------------- transforms

def test_transforms(device):
    img = ember.arange(2 * 3 * 4, device=device).reshape(2, 3, 4).float()
    n = T.Normalize([1.0, 2.0], [2.0, 4.0])(img)
    ref = (_np(img) - np.array([1, 2]).reshape(2, 1, 1)) / np.array([2, 4]).reshape(2, 1, 1)
    np.testing.assert_allclose(_np(n), ref)
    np.testing.assert_array_equal(_np(T.RandomHorizontalFlip(p=1.0)(img)), _np(img)[..., ::-1])
    np.testing.assert_array_equal(_np(T.RandomHorizontalFlip(p=0.0)(img)), _np(img))
    crop = T.RandomCrop(3, padding=1, generator=ember.Generator(0))
    seen = set()
    for _ in range(40):
        out = _np(crop(img))
        assert out.shape == (2, 3, 3)
        padded = np.pad(_np(img), ((0, 0), (1, 1), (1, 1)))
        hits = [(i, j) for i in range(3) for j in range(4) if np.array_equal(padded[:, i:i + 3, j:j + 3], out)]
        assert hits
        seen.add(hits[0])
    assert len(seen) > 5  # the window moves
    c = T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5)])
    out = c(np.full((4, 5, 3), 255, np.uint8))
    assert out.shape == (3, 4, 5) and np.allclose(_np(out), 1.0)
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="larger than the"):
        T.RandomCrop(10)(img)
    with pytest.raises(ValueError, match="3 channels"):
        T.Normalize([0, 0], [1, 1])(ember.zeros(3, 2, 2, device=device))


def test_custom_collate_gets_the_list_of_samples(device):
    ds = data.TensorDataset(ember.arange(6, device=device), ember.arange(6, device=device) * 2)
    seen = []
    dl = data.DataLoader(ds, batch_size=4, collate_fn=lambda samples: seen.append(samples) or len(samples))
    assert list(dl) == [4, 2]
    assert isinstance(seen[0], list) and len(seen[0]) == 4 and seen[0][1][1].item() == 2
    assert seen[0][1][1].device == device  # samples are the dataset's own rows
