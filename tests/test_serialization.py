"""ember.save / ember.load: safetensors layout (checked with an independent reader),
round trips of nested checkpoints, foreign safetensors files, atomic writes, and clear
errors for truncated, corrupt and wrong-format files."""
import json
import os
import pickle
import struct

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember import optim


def _read_safetensors(path):
    """A minimal reader written from the format description, independent of ember's."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    codes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "BOOL": "?"}
    out = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=codes[v["dtype"]]).reshape(v["shape"])
    return out, meta, n


def test_layout_is_safetensors(tmp_path, device):
    path = tmp_path / "t.safetensors"
    w = ember.randn(3, 4, device=device)
    obj = {"w": w, "b": ember.tensor([True, False], device=device), "i": ember.arange(5, device=device),
           "d": ember.randn(2, dtype=ember.float64, device=device), "note": "hi"}
    ember.save(obj, path)
    tensors, meta, n = _read_safetensors(path)
    assert n % 8 == 0
    assert sorted(tensors) == ["b", "d", "i", "w"]
    np.testing.assert_array_equal(tensors["w"], w.numpy(force=True))
    np.testing.assert_array_equal(tensors["i"], np.arange(5))
    np.testing.assert_array_equal(tensors["b"], [True, False])
    np.testing.assert_array_equal(tensors["d"], obj["d"].numpy(force=True))
    assert meta["format"] == "ember" and all(isinstance(v, str) for v in meta.values())
    assert '"hi"' in meta["ember.tree"]


@pytest.mark.parametrize("map_location", [None, "device"])
def test_nested_round_trip(tmp_path, device, map_location):
    path = tmp_path / "ck.safetensors"
    gen_state = ember.Generator(11).get_state()
    d = dict(device=device)
    obj = {"model": {"fc.weight": ember.randn(2, 3, **d), "fc.bias": ember.zeros(2, **d)},
           "optimizer": {"state": {0: {"step": 3, "exp_avg": ember.ones(2, 3, **d)}, 1: {"step": 3}},
                         "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "name": None}]},
           "epoch": 3, "loss": float("inf"), "ok": True, "rng": gen_state,
           "scalar": ember.tensor(np.array(2.5, np.float32), **d), "empty": ember.zeros(0, 4, **d),
           "list": [1, "two", [3.0]]}
    ember.save(obj, path)
    dest = "cpu" if map_location is None else device
    back = ember.load(path, map_location=None if map_location is None else device)
    for t in (back["model"]["fc.weight"], back["optimizer"]["state"][0]["exp_avg"], back["scalar"], back["empty"]):
        assert t.device == dest
    assert back["epoch"] == 3 and back["loss"] == float("inf") and back["ok"] is True
    assert back["list"] == [1, "two", [3.0]]
    assert list(back["optimizer"]["state"]) == [0, 1]  # int keys stay ints
    pg = back["optimizer"]["param_groups"][0]
    assert pg["betas"] == (0.9, 0.999) and pg["params"] == [0, 1] and pg["name"] is None
    for k in ("fc.weight", "fc.bias"):
        np.testing.assert_array_equal(back["model"][k].numpy(force=True), obj["model"][k].numpy(force=True))
    assert back["scalar"].shape == () and back["scalar"].item() == 2.5
    assert back["empty"].shape == (0, 4)
    # the RNG state (NumPy uint64 arrays inside) restores the exact stream
    g = ember.Generator(0)
    g.set_state(back["rng"])
    ref = ember.Generator(11)
    np.testing.assert_array_equal(g.np.random(5), ref.np.random(5))


def test_model_and_optimizer_round_trip(tmp_path, device):
    """A model and optimizer on `device`, saved; loaded into a CPU model; saved from there and
    loaded back onto the device: every value survives both trips."""
    def make():
        return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m = make().to(device)
    opt = optim.AdamW(m.parameters(), lr=1e-2, amsgrad=True)
    m(ember.randn(5, 3, device=device)).sum().backward()  # also moves the BatchNorm running stats
    opt.step()
    path = tmp_path / "m.safetensors"
    ember.save({"model": m.state_dict(), "optimizer": opt.state_dict()}, path)
    back = ember.load(path)
    m2 = make()
    m2.load_state_dict(back["model"])
    opt2 = optim.AdamW(m2.parameters())
    opt2.load_state_dict(back["optimizer"])
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert b.device == "cpu"
        np.testing.assert_array_equal(a.numpy(force=True), b.numpy(), err_msg=k)
    assert back["model"]["1.num_batches_tracked"].dtype == ember.int64
    s1 = opt.state[m[0].weight]
    s2 = opt2.state[m2[0].weight]
    assert s2["step"] == 1 and opt2.param_groups[0]["amsgrad"] is True
    np.testing.assert_array_equal(s1["max_exp_avg_sq"].numpy(force=True), s2["max_exp_avg_sq"].numpy())
    # and back onto the device
    ember.save({"model": m2.state_dict(), "optimizer": opt2.state_dict()}, path)
    again = ember.load(path, map_location=device)
    m3 = make().to(device)
    m3.load_state_dict(again["model"])
    opt3 = optim.AdamW(m3.parameters())
    opt3.load_state_dict(again["optimizer"])
    for (k, a), (_, b) in zip(m.state_dict().items(), m3.state_dict().items()):
        assert b.device == device
        np.testing.assert_array_equal(a.numpy(force=True), b.numpy(force=True), err_msg=k)
    for p1, p3 in zip(m.parameters(), m3.parameters()):
        for k, v in opt.state[p1].items():
            if isinstance(v, ember.Tensor):
                assert opt3.state[p3][k].device == device
                np.testing.assert_array_equal(v.numpy(force=True), opt3.state[p3][k].numpy(force=True), err_msg=k)


# (the file-format tests below parse bytes on the host: CPU only)
def test_foreign_safetensors_file(tmp_path):
    """A file from another writer (no ember metadata, keys sorted, F16 / I32 data) loads as a
    flat dict, narrow types widened to ember's."""
    a = np.arange(6, dtype=np.float16).reshape(2, 3)
    b = np.array([1, -2], dtype=np.int32)
    header = {"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]},
              "b": {"dtype": "I32", "shape": [2], "data_offsets": [12, 20]},
              "__metadata__": {"source": "elsewhere"}}
    h = json.dumps(header).encode()
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(struct.pack("<Q", len(h)) + h + a.tobytes() + b.tobytes())
    back = ember.load(path)
    assert list(back) == ["a", "b"]
    assert back["a"].dtype == ember.float32 and back["b"].dtype == ember.int64
    np.testing.assert_array_equal(back["a"].numpy(), a.astype(np.float32))
    np.testing.assert_array_equal(back["b"].numpy(), [1, -2])


def test_atomic_write_leaves_no_temp_files_and_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    ember.save({"x": ember.ones(3)}, path)
    ember.save({"x": ember.zeros(3)}, path)  # overwrite in place
    assert os.listdir(tmp_path) == ["ck.safetensors"]
    np.testing.assert_array_equal(ember.load(path)["x"].numpy(), [0, 0, 0])

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        ember.save({"x": ember.full((3,), 7.0)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.safetensors"]
    np.testing.assert_array_equal(ember.load(path)["x"].numpy(), [0, 0, 0])
    # an unsupported value fails before anything is written
    with pytest.raises(TypeError, match="cannot store an object of type object at 'bad'"):
        ember.save({"bad": object()}, path)
    with pytest.raises(TypeError, match="dict key"):
        ember.save({(1, 2): 3}, path)
    assert os.listdir(tmp_path) == ["ck.safetensors"]


def _good(tmp_path):
    path = tmp_path / "good.safetensors"
    ember.save({"w": ember.randn(4, 4), "e": 1}, path)
    return path.read_bytes()


def test_corrupt_files(tmp_path):
    raw = _good(tmp_path)
    (n,) = struct.unpack("<Q", raw[:8])
    bad = tmp_path / "bad.safetensors"
    cases = [
        (b"", "0 bytes, too few for the 8-byte header length"),
        (raw[:5], "too few"),
        (raw[:8 + n // 2], "runs past the end"),
        (raw[:-4], "needs 64 bytes|outside the"),
        (raw + b"\0" * 8, "8 bytes after the last tensor"),
        (struct.pack("<Q", 1 << 40) + raw[8:], "implausible"),
        (raw[:8] + b"[" + raw[9:], "not valid UTF-8 JSON"),
        (pickle.dumps({"w": 1}), "implausible|runs past the end"),
    ]
    for content, match in cases:
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=f"bad.safetensors: not a valid ember/safetensors checkpoint: .*({match})"):
            ember.load(bad)
    header = json.loads(raw[8:8 + n])
    for mutate, match in [
        (lambda h: h["w"].update(dtype="C64"), "dtype 'C64'"),
        (lambda h: h["w"].update(shape=[4, -4]), "invalid shape"),
        (lambda h: h["w"].update(shape=[4, 5]), "needs 80 bytes, its data_offsets span 64"),
        (lambda h: h["w"].pop("data_offsets"), "lacks dtype, shape or data_offsets"),
        (lambda h: h["__metadata__"].update({"ember.tree": '{"T": "missing"}'}), "does not contain"),
        (lambda h: h["__metadata__"].update({"ember.tree": "{nope"}), "not valid JSON"),
        (lambda h: h["__metadata__"].update({"x": 1}), "__metadata__ must map strings to strings"),
    ]:
        h = json.loads(raw[8:8 + n])
        mutate(h)
        hb = json.dumps(h).encode()
        bad.write_bytes(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
        with pytest.raises(ValueError, match=match):
            ember.load(bad)
    assert header["w"]["dtype"] == "F32"


def test_save_load_device_tensors(tmp_path, device):
    sd = {"w": ember.randn(3, 4, device=device), "n": ember.arange(5, device=device)}
    path = tmp_path / "t.safetensors"
    ember.save(sd, path)  # written from host copies
    cpu = ember.load(path)
    assert all(t.device == "cpu" for t in cpu.values())
    on = ember.load(path, map_location=device)
    for k in sd:
        assert on[k].device == device
        np.testing.assert_array_equal(on[k].numpy(force=True), sd[k].numpy(force=True))
