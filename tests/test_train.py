"""ember.train: fit / evaluate, callbacks, bit-for-bit resume from a checkpoint, and the
`ember train` command."""
import re

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember import data, optim
from ember.cli import main
from ember.train import EarlyStopping, ModelCheckpoint, evaluate, fit, load_checkpoint


def _blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    y = rng.integers(0, 3, n)
    x = centers[y] + 0.5 * rng.standard_normal((n, 4)).astype(np.float32)
    return data.TensorDataset(ember.from_numpy(x), ember.from_numpy(y.astype(np.int64)))


def _setup(dropout=0.2, lr=1e-2):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    loader = data.DataLoader(_blobs(), batch_size=8, shuffle=True)
    return model, opt, sched, loader


def test_fit_learns_and_reports_history(capsys, device):
    model, opt, sched, loader = _setup()
    val = data.DataLoader(_blobs(seed=1), batch_size=32)
    hist = fit(model, nn.CrossEntropyLoss(), opt, loader, val, epochs=4, scheduler=sched, device=device)
    assert all(p.device == device for p in model.parameters())
    assert sorted(hist) == sorted(["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time",
                                   "images_per_s"])
    assert hist["epoch"] == [1, 2, 3, 4]
    assert hist["lr"] == pytest.approx([1e-2 * 0.7 ** e for e in range(4)])
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_acc"][-1] > 0.9
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and re.match(r"epoch 4/4  loss \d\.\d{4}  acc \d\.\d{4}  val_loss .* img/s", out[-1])
    ev = evaluate(model, val, nn.CrossEntropyLoss(), device=device)
    assert ev["accuracy"] == pytest.approx(hist["val_acc"][-1]) and ev["loss"] == pytest.approx(hist["val_loss"][-1])
    assert model.training  # evaluate restores the mode
    # evaluate's accuracy is the fraction of argmax hits
    x, y = val.dataset.tensors
    with ember.no_grad():
        model.eval()
        pred = model(x.to(device)).numpy(force=True).argmax(1)
    assert ev["accuracy"] == pytest.approx((pred == y.numpy()).mean())


def test_fit_without_progress_prints_nothing(capsys):
    model, opt, _, loader = _setup()
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, progress=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="epochs must be a non-negative int"):
        fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=-1)


def test_early_stopping_and_checkpoint(tmp_path):
    model, _, _, loader = _setup()
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing changes: val_loss never improves after epoch 1
    model.eval()
    stop = EarlyStopping(monitor="val_loss", patience=2)
    val = data.DataLoader(_blobs(seed=1), batch_size=32)
    hist = fit(model, nn.CrossEntropyLoss(), opt, loader, val, epochs=10, callbacks=[stop], progress=False)
    assert len(hist["epoch"]) == 3 and stop.stopped_epoch == 2
    with pytest.raises(KeyError, match="'val_acc' is not in the epoch logs"):
        fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=1, callbacks=[EarlyStopping("val_acc")],
            progress=False)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="up")

    model, opt, sched, loader = _setup(lr=3e-2)
    path = tmp_path / "best.safetensors"
    ck = ModelCheckpoint(path, monitor="val_acc", mode="max")
    hist = fit(model, nn.CrossEntropyLoss(), opt, loader, val, epochs=4, scheduler=sched, callbacks=[ck],
               progress=False)
    best = int(np.argmax(hist["val_acc"]))
    saved = ember.load(path)
    assert ck.best_epoch == best and saved["epoch"] == best
    assert saved["extra"]["value"] == pytest.approx(hist["val_acc"][best])
    assert sorted(saved) == ["epoch", "extra", "history", "model", "optimizer", "rng", "scheduler"]


def test_resume_is_bit_for_bit(tmp_path, device):
    """4 epochs straight == 2 epochs, checkpoint, fresh objects, load, 2 more epochs: same
    parameters to the bit (shuffling, dropout masks, Adam state, scheduler all restored). On
    a GPU the checkpoint is written from the device and loaded beside a fresh CPU model,
    which fit moves back with the optimizer state."""
    loss = nn.CrossEntropyLoss()
    model, opt, sched, loader = _setup()
    full = fit(model, loss, opt, loader, epochs=4, scheduler=sched, progress=False, device=device)
    straight = {k: v.numpy(force=True).copy() for k, v in model.state_dict().items()}

    path = tmp_path / "ck.safetensors"
    model, opt, sched, loader = _setup()
    fit(model, loss, opt, loader, epochs=2, scheduler=sched, progress=False, device=device,
        callbacks=[ModelCheckpoint(path, monitor="train_loss", save_best_only=False)])
    model, opt, sched, loader = _setup()
    ember.manual_seed(999)  # the checkpoint's RNG state must win over whatever state we are in
    ck = load_checkpoint(path, model, opt, sched)
    assert ck["epoch"] == 1
    resumed = fit(model, loss, opt, loader, epochs=4, scheduler=sched, progress=False, device=device,
                  start_epoch=ck["epoch"] + 1, history=ck["history"])
    for k, v in model.state_dict().items():
        assert v.device == device
        np.testing.assert_array_equal(v.numpy(force=True), straight[k], err_msg=k)
    assert resumed["train_loss"] == full["train_loss"] and resumed["lr"] == full["lr"]
    with pytest.raises(ValueError, match="not an ember training checkpoint"):
        ember.save({"x": ember.ones(1)}, tmp_path / "other.safetensors")
        load_checkpoint(tmp_path / "other.safetensors", model)


def _cli(capsys, *args):
    code = main(["train", *args])
    return code, capsys.readouterr()


def test_cli_train_mlp_and_resume(tmp_path, capsys, device):
    ck = str(tmp_path / "run.safetensors")
    code, out = _cli(capsys, "--model", "mlp", "--epochs", "1", "--batch-size", "64", "--checkpoint", ck,
                     "--threads", "2", "--device", device)
    assert code == 0
    assert "mlp (" in out.out and "epoch 1/1" in out.out
    m = re.search(r"^test accuracy: (0\.\d{3}|1\.000)$", out.out, re.M)
    assert m and float(m.group(1)) > 0.7
    code, out = _cli(capsys, "--model", "mlp", "--epochs", "2", "--batch-size", "64", "--checkpoint", ck,
                     "--resume", "--quiet", "--device", device)
    assert code == 0
    assert "resumed from" in out.out and float(out.out.strip().splitlines()[-1].split()[-1]) > 0.8
    assert ember.load(ck)["epoch"] == 1


def test_cli_errors(tmp_path, capsys):
    code, out = _cli(capsys, "--dataset", "mnist", "--quiet")
    assert code == 1 and "--dataset mnist needs --root" in out.err
    code, out = _cli(capsys, "--dataset", "mnist", "--root", str(tmp_path), "--quiet")
    assert code == 1 and "train-images-idx3-ubyte not found" in out.err
    code, out = _cli(capsys, "--resume")
    assert code == 2 and "--resume needs --checkpoint" in out.err
    code, out = _cli(capsys, "--epochs", "0")
    assert code == 2 and "--epochs must be positive" in out.err
    code, out = _cli(capsys, "--device", "tpu")
    assert code == 2 and "--device tpu: unknown device 'tpu'" in out.err
    if not ember.cuda.is_available():  # a clean message, not a traceback
        code, out = _cli(capsys, "--device", "cuda")
        assert code == 2 and "--device cuda: CUDA is not available" in out.err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, out = _cli(capsys, "--plot", str(tmp_path / "c.png"))
        assert code == 2 and "--plot needs matplotlib" in out.err
    with pytest.raises(SystemExit):
        main(["train", "--model", "vgg"])


def test_onecycle_steps_per_batch(device):
    model, _, _, loader = _setup(dropout=0.0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=len(loader))
    hist = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, scheduler=sched, progress=False, device=device)
    assert sched.last_epoch == 3 * len(loader)
    # lr at the start of each epoch follows the one-cycle curve: warm-up first, then annealing
    assert hist["lr"][0] == pytest.approx(0.1 / 25)
    assert hist["lr"][1] > hist["lr"][0] and hist["lr"][2] < hist["lr"][1]


def test_fit_and_checkpoint_on_device(device, tmp_path):
    """The same loop on each device: batches are moved by fit, and a checkpoint written from
    the device loads back into a CPU model."""
    model, _, _, loader = _setup(dropout=0.0)
    model.to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert all(p.device == device for p in model.parameters())
    hist = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=2, device=device, progress=False)
    assert hist["train_loss"][1] < hist["train_loss"][0]
    ember.save(model.state_dict(), tmp_path / "m.safetensors")
    cpu_model, _, _, _ = _setup(dropout=0.0)
    cpu_model.load_state_dict(ember.load(tmp_path / "m.safetensors"))
    for a, b in zip(model.parameters(), cpu_model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(force=True), b.detach().numpy())
