"""ember.save / ember.load: checkpoints in the safetensors format, written by our own code.

File layout (https://github.com/huggingface/safetensors):
  8 bytes   little-endian uint64 N, the header length
  N bytes   UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
            "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
  rest      the tensors' raw little-endian bytes; offsets are relative to the end of the
            header and must tile this region exactly

So that any nested object of tensors and plain values round-trips (e.g. {'model':
state_dict, 'optimizer': opt.state_dict(), 'epoch': 3, 'rng': gen.get_state()}), the
object's structure goes into __metadata__["ember.tree"] as JSON, with each tensor replaced
by its name in the file (the dotted path to it, e.g. "model.fc.weight"). Plain values
(None, bool, int, float, str, small NumPy arrays) are stored in that JSON. No pickle.
A file written by another safetensors writer loads as a dict name -> Tensor.

Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed,
fsync'ed and renamed over the target, so a crash mid-write leaves any old file intact.
"""
import json
import numbers
import os
import tempfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor, from_numpy

_TREE_KEY = "ember.tree"
_FORMAT_KEY = "format"
_MAX_HEADER = 100 * 1024 * 1024

# safetensors dtype code -> numpy dtype (ember's own dtypes first; others widen on load)
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "BOOL": np.dtype("bool")}
_WIDEN = {"F16": (np.dtype("<f2"), np.float32), "I32": (np.dtype("<i4"), np.int64),
          "I16": (np.dtype("<i2"), np.int64), "I8": (np.dtype("i1"), np.int64), "U8": (np.dtype("u1"), np.int64),
          "U16": (np.dtype("<u2"), np.int64), "U32": (np.dtype("<u4"), np.int64)}
_CODE = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
         np.dtype(np.bool_): "BOOL"}


# ---------------------------------------------------------------- encoding the object tree

def _encode(obj, path, tensors):
    """JSON-able description of obj; tensors found are appended to `tensors` as (name, array)."""
    if isinstance(obj, Tensor):
        name = ".".join(path) or "tensor"
        base, n = name, 1
        while name in tensors:
            n += 1
            name = f"{base}#{n}"
        arr = obj.detach().numpy(force=True)
        if arr.dtype not in _CODE:
            raise TypeError(f"ember.save: tensor {name} has unsupported dtype {arr.dtype}")
        tensors[name] = arr
        return {"T": name}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, np.generic):
                k = k.item()
            if not (k is None or isinstance(k, (str, bool, int, float))):
                raise TypeError(f"ember.save: dict key {k!r} at '{'.'.join(path)}' has type {type(k).__name__}; "
                                "keys must be str, int, float, bool or None")
            items.append([k, _encode(v, path + [str(k)], tensors)])
        return {"D": items}
    if isinstance(obj, (list, tuple)):
        tag = "L" if isinstance(obj, list) else "U"
        return {tag: [_encode(v, path + [str(i)], tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"ember.save: NumPy array at '{'.'.join(path)}' has unsupported dtype {obj.dtype}")
        return {"A": {"dtype": obj.dtype.str, "shape": list(obj.shape), "data": obj.ravel().tolist()}}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (str, bool, numbers.Integral, float)):
        return {"V": obj if not isinstance(obj, numbers.Integral) or isinstance(obj, bool) else int(obj)}
    raise TypeError(f"ember.save: cannot store an object of type {type(obj).__name__} at '{'.'.join(path)}' "
                    "(tensors, dicts, lists, tuples, numbers, strings, None and NumPy arrays only)")


def _decode(node, tensors, fname):
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"{fname}: corrupt ember.tree metadata (bad node {str(node)[:80]})")
    (tag, v), = node.items()
    if tag == "T":
        if v not in tensors:
            raise ValueError(f"{fname}: ember.tree refers to tensor {v!r}, which the file does not contain")
        return tensors[v]
    if tag == "D":
        return OrderedDict((k, _decode(x, tensors, fname)) for k, x in v)
    if tag == "L":
        return [_decode(x, tensors, fname) for x in v]
    if tag == "U":
        return tuple(_decode(x, tensors, fname) for x in v)
    if tag == "A":
        return np.array(v["data"], dtype=np.dtype(v["dtype"])).reshape(v["shape"])
    if tag == "V":
        return v
    raise ValueError(f"{fname}: corrupt ember.tree metadata (unknown tag {tag!r})")


# ---------------------------------------------------------------- save

def save(obj, path):
    """Write `obj` (a tensor, or nested dicts/lists/tuples of tensors and plain values) to
    `path` in the safetensors format, atomically."""
    path = os.fspath(path)
    tensors = OrderedDict()
    tree = _encode(obj, [], tensors)
    header = {"__metadata__": {_FORMAT_KEY: "ember", _TREE_KEY: json.dumps(tree, separators=(",", ":"))}}
    offset = 0
    for name, arr in tensors.items():
        header[name] = {"dtype": _CODE[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)  # keep the data 8-byte aligned

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(hbytes).to_bytes(8, "little"))
            f.write(hbytes)
            for arr in tensors.values():
                a = np.ascontiguousarray(arr)
                if a.dtype.byteorder == ">":
                    a = a.astype(a.dtype.newbyteorder("<"))
                f.write(memoryview(a.reshape(-1)).cast("B") if a.size else b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# ---------------------------------------------------------------- load

def _bad(path, what):
    return ValueError(f"{path}: not a valid ember/safetensors checkpoint: {what}")


def load(path, map_location=None):
    """Read a file written by ember.save (returns the same structure, tensors as new ember
    Tensors) or any safetensors file (returns an ordered dict name -> Tensor).
    map_location: a device to put the tensors on (default cpu)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise _bad(path, f"the file has {len(raw)} bytes, too few for the 8-byte header length")
    n = int.from_bytes(raw[:8], "little")
    if n > _MAX_HEADER:
        raise _bad(path, f"header length {n} is implausible (larger than {_MAX_HEADER} bytes); wrong format?")
    if 8 + n > len(raw):
        raise _bad(path, f"header length {n} runs past the end of the {len(raw)}-byte file (truncated?)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"the header is not valid UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise _bad(path, f"the header is a JSON {type(header).__name__}, expected an object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _bad(path, "__metadata__ must map strings to strings")
    data = memoryview(raw)[8 + n:]
    spans, tensors = [], OrderedDict()
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise _bad(path, f"entry {name!r} lacks dtype, shape or data_offsets")
        code, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if code in _DTYPES:
            dt, widen = _DTYPES[code], None
        elif code in _WIDEN:
            dt, widen = _WIDEN[code]
        else:
            raise _bad(path, f"tensor {name!r} has dtype {code!r}, which ember cannot hold")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                  for s in shape):
            raise _bad(path, f"tensor {name!r} has an invalid shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= len(data)):
            raise _bad(path, f"tensor {name!r} has data_offsets {offs!r} outside the {len(data)}-byte data "
                       "region (truncated?)")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if offs[1] - offs[0] != nbytes:
            raise _bad(path, f"tensor {name!r} of shape {shape} and dtype {code} needs {nbytes} bytes, its "
                       f"data_offsets span {offs[1] - offs[0]}")
        spans.append((offs[0], offs[1], name))
        arr = np.frombuffer(data[offs[0]:offs[1]], dtype=dt).reshape(shape)
        arr = arr.astype(widen) if widen is not None else arr.astype(dt.newbyteorder("="), copy=True)
        tensors[name] = arr
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            raise _bad(path, f"tensor data is not contiguous: {'overlap' if b < pos else 'gap'} before {name!r}")
        pos = e
    if pos != len(data):
        raise _bad(path, f"{len(data) - pos} bytes after the last tensor (the data region must be tiled exactly)")
    out = OrderedDict()
    for b, e, name in sorted(spans):
        t = from_numpy(tensors[name])  # a fresh, contiguous copy (0-d stays 0-d)
        out[name] = t.to(device=map_location) if map_location is not None else t
    if _TREE_KEY in meta:
        try:
            tree = json.loads(meta[_TREE_KEY])
        except json.JSONDecodeError as e:
            raise _bad(path, f"ember.tree metadata is not valid JSON ({e})") from None
        try:
            return _decode(tree, out, path)
        except (TypeError, KeyError, AttributeError) as e:
            raise _bad(path, f"corrupt ember.tree metadata ({e})") from None
    return out
