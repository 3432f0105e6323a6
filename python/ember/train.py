"""A small training loop: fit() and evaluate(), callbacks (EarlyStopping, ModelCheckpoint)
and whole-training-state checkpoints that resume bit-for-bit on CPU.

fit() runs epochs of forward / loss / backward / optimizer.step over a DataLoader, steps
the scheduler (per epoch, or per batch for OneCycleLR), evaluates on val_loader, and
returns a history dict of per-epoch lists. Progress shows with tqdm when it is installed,
otherwise as one line per epoch.
"""
import math
import sys
import time

import numpy as np

from .autograd import no_grad
from .optim.lr_scheduler import OneCycleLR
from .serialization import load, save


def _generator():
    return sys.modules["ember.tensor"].default_generator


def _to(batch, device):
    if device is None:
        return batch
    return tuple(t.to(device=device) if hasattr(t, "to") else t for t in batch)


def _count_correct(out, y):
    """Number of rows of logits `out` whose argmax equals the class index in y (0 when y
    is not a class-index vector, e.g. for regression targets)."""
    if out.ndim != 2 or y.ndim != 1 or y.dtype.is_floating_point:
        return 0
    pred = out.detach().numpy(force=True).argmax(axis=1)
    return int((pred == y.numpy(force=True)).sum())


def evaluate(model, loader, loss_fn=None, device=None):
    """Mean loss (when loss_fn is given) and accuracy of model over loader, in eval mode
    and without recording a graph. Returns {'loss': float or None, 'accuracy': float}."""
    was_training = model.training
    model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    try:
        with no_grad():
            for batch in loader:
                x, y = _to(batch, device)[:2]
                out = model(x)
                n = x.shape[0]
                if loss_fn is not None:
                    loss_sum += float(loss_fn(out, y).item()) * n
                correct += _count_correct(out, y)
                total += n
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {"loss": loss_sum / total if loss_fn is not None else None, "accuracy": correct / total}


class FitState:
    """What callbacks see: the objects being trained, the epoch just finished (0-based),
    its logs (train_loss, train_acc, val_loss, val_acc, lr, time, images_per_s), the
    history so far, and stop_training, which a callback sets to end fit() early."""

    def __init__(self, model, optimizer, scheduler, history):
        self.model, self.optimizer, self.scheduler, self.history = model, optimizer, scheduler, history
        self.epoch, self.logs, self.stop_training = -1, {}, False


class Callback:
    def on_train_begin(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


class _Monitor(Callback):
    def __init__(self, monitor, mode, min_delta=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def _value(self, state):
        v = state.logs.get(self.monitor)
        if v is None:
            raise KeyError(f"{type(self).__name__}: metric {self.monitor!r} is not in the epoch logs "
                           f"({', '.join(k for k, x in state.logs.items() if x is not None)}); "
                           "pass val_loader to fit() to monitor val_* metrics")
        return v

    def _improved(self, v):
        if self.mode == "min":
            return v < self.best - self.min_delta
        return v > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved (by more than min_delta) for `patience` epochs."""

    def __init__(self, monitor="val_loss", patience=3, mode="min", min_delta=0.0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.wait, self.stopped_epoch = patience, 0, None

    def on_epoch_end(self, state):
        v = self._value(state)
        if self._improved(v):
            self.best, self.wait = v, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.stop_training = True
            self.stopped_epoch = state.epoch


class ModelCheckpoint(_Monitor):
    """Save the training state (see checkpoint_state) to `path` whenever `monitor` improves
    (or every epoch with save_best_only=False)."""

    def __init__(self, path, monitor="val_loss", mode="min", save_best_only=True):
        super().__init__(monitor, mode)
        self.path, self.save_best_only = path, save_best_only
        self.best_epoch = None

    def on_epoch_end(self, state):
        v = self._value(state)
        if self._improved(v) or not self.save_best_only:
            if self._improved(v):
                self.best, self.best_epoch = v, state.epoch
            save(checkpoint_state(state.model, state.optimizer, state.scheduler, state.epoch, state.history,
                                  extra={"monitor": self.monitor, "value": v}), self.path)


def checkpoint_state(model, optimizer=None, scheduler=None, epoch=None, history=None, extra=None):
    """Everything needed to continue training exactly: model, optimizer and scheduler state,
    the epoch just finished, the history, and ember's random generator state."""
    state = {"model": model.state_dict(), "epoch": epoch, "rng": _generator().get_state()}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if history is not None:
        state["history"] = history
    if extra:
        state["extra"] = extra
    return state


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=None, history=None):
    save(checkpoint_state(model, optimizer, scheduler, epoch, history), path)


def load_checkpoint(path, model, optimizer=None, scheduler=None, restore_rng=True):
    """Restore what save_checkpoint wrote; returns the checkpoint dict (its 'epoch' is the
    last finished epoch, 'history' the history so far)."""
    ck = load(path)
    if not isinstance(ck, dict) or "model" not in ck:
        raise ValueError(f"{path}: not an ember training checkpoint (no 'model' entry)")
    model.load_state_dict(ck["model"])
    if optimizer is not None:
        if "optimizer" not in ck:
            raise ValueError(f"{path}: checkpoint has no optimizer state")
        optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None:
        if "scheduler" not in ck:
            raise ValueError(f"{path}: checkpoint has no scheduler state")
        scheduler.load_state_dict(dict(ck["scheduler"]))
    if restore_rng and ck.get("rng") is not None:
        _generator().set_state(ck["rng"])
    return ck


def _progress_bar(loader, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=len(loader), desc=desc, leave=False, unit="batch")


_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time", "images_per_s")


def fit(model, loss_fn, optimizer, train_loader, val_loader=None, epochs=1, scheduler=None, callbacks=(),
        device="cpu", progress=True, start_epoch=0, history=None, log=print):
    """Train for epochs start_epoch .. epochs-1. Returns history: {'epoch': [...],
    'train_loss', 'train_acc', 'val_loss', 'val_acc', 'lr', 'time', 'images_per_s'}, one
    entry per epoch (val_* None without val_loader). OneCycleLR steps per batch, other
    schedulers per epoch. Pass start_epoch and history from load_checkpoint to resume."""
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if device is not None:
        model.to(device)
        optimizer._state_to_param_devices()  # a resumed optimizer's state was loaded beside the CPU model
    history = {k: list(history.get(k, [])) for k in _KEYS} if history else {k: [] for k in _KEYS}
    per_batch = isinstance(scheduler, OneCycleLR)
    state = FitState(model, optimizer, scheduler, history)
    callbacks = list(callbacks)
    for cb in callbacks:
        cb.on_train_begin(state)
    for epoch in range(start_epoch, epochs):
        model.train()
        t0 = time.perf_counter()
        seen, loss_sum, correct = 0, 0.0, 0
        lr = optimizer.param_groups[0]["lr"]
        bar = _progress_bar(train_loader, f"epoch {epoch + 1}/{epochs}", progress)
        for batch in train_loader:
            x, y = _to(batch, device)[:2]
            out = model(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if per_batch:
                scheduler.step()
            n = x.shape[0]
            lv = float(loss.item())
            if not math.isfinite(lv):
                raise FloatingPointError(f"loss became {lv} at epoch {epoch + 1}; lower the learning rate")
            seen += n
            loss_sum += lv * n
            correct += _count_correct(out, y)
            if bar is not None:
                el = time.perf_counter() - t0
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                                img_s=f"{seen / max(el, 1e-9):.0f}")
        if bar is not None:
            bar.close()
        if scheduler is not None and not per_batch:
            scheduler.step()
        train_time = time.perf_counter() - t0
        logs = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                "val_loss": None, "val_acc": None, "lr": lr, "time": train_time,
                "images_per_s": seen / max(train_time, 1e-9)}
        if val_loader is not None:
            ev = evaluate(model, val_loader, loss_fn, device)
            logs["val_loss"], logs["val_acc"] = ev["loss"], ev["accuracy"]
        for k in _KEYS:
            history[k].append(logs[k])
        if progress and log is not None:
            line = (f"epoch {epoch + 1}/{epochs}  loss {logs['train_loss']:.4f}  acc {logs['train_acc']:.4f}")
            if val_loader is not None:
                line += f"  val_loss {logs['val_loss']:.4f}  val_acc {logs['val_acc']:.4f}"
            line += f"  lr {lr:.3g}  {logs['images_per_s']:.0f} img/s  {train_time:.1f}s"
            log(line)
        state.epoch, state.logs = epoch, logs
        for cb in callbacks:
            cb.on_epoch_end(state)
        if state.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    return history


# ---------------------------------------------------------------- `ember train`

# Per-channel (mean, std) of each training set's pixels in [0, 1] (digits: pixel / 16).
_NORM = {"mnist": ((0.1307,), (0.3081,)), "fashion-mnist": ((0.2860,), (0.3530,)),
         "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))}


def add_train_arguments(p):
    p.add_argument("--model", choices=("lenet", "mlp", "resnet"), default="lenet", help="network (default: lenet)")
    p.add_argument("--dataset", choices=("digits", "mnist", "fashion-mnist", "cifar10"), default="digits",
                   help="data set (default: digits, bundled with ember)")
    p.add_argument("--root", default=None, help="folder holding the mnist / fashion-mnist / cifar10 files "
                   "(digits is bundled)")
    p.add_argument("--epochs", type=int, default=20, help="default: 20")
    p.add_argument("--batch-size", type=int, default=32, help="default: 32")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine-annealed to 0 "
                   "(default: 0.002)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam",
                   help="default: adam (sgd uses Nesterov momentum 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="default: 0")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seeds init, shuffling and dropout (default: 0)")
    p.add_argument("--checkpoint", default=None, metavar="PATH", help="save the training state here after "
                   "every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="plot loss and accuracy curves (needs "
                   "matplotlib)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the kernels")
    p.add_argument("--val", action="store_true", help="evaluate on the test split after every epoch")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def _datasets(name, root):
    from . import data
    from .data import transforms as T
    from .tensor import from_numpy

    if name == "digits":
        def arrays(train):
            ds = data.Digits(train=train)
            x = (ds.data[:, None].astype(np.float32) / 16.0 - data.DIGITS_MEAN) / data.DIGITS_STD
            return data.TensorDataset(from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                                      from_numpy(ds.targets.copy()))
        return arrays(True), arrays(False), (1, 8, 8)
    if root is None:
        raise ValueError(f"--dataset {name} needs --root, the folder with its files (ember does not "
                         "download data)")
    mean, std = _NORM[name]
    if name == "cifar10":
        train = data.CIFAR10(root, train=True, transform=T.Compose([T.RandomCrop(32, padding=4),
                                                                     T.RandomHorizontalFlip(),
                                                                     T.Normalize(mean, std)]))
        test = data.CIFAR10(root, train=False)
        shape = (3, 32, 32)
    else:
        cls = data.MNIST if name == "mnist" else data.FashionMNIST
        train, test = cls(root, train=True), cls(root, train=False)
        shape = (1,) + train.data.shape[1:]

    def normalized(ds):
        x = ds.data.astype(np.float32) / 255.0
        if x.ndim == 3:
            x = x[:, None]
        x = (x - np.asarray(mean, np.float32).reshape(1, -1, 1, 1)) / np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        return data.TensorDataset(from_numpy(np.ascontiguousarray(x)), from_numpy(ds.targets.copy()))

    return (train if name == "cifar10" else normalized(train)), normalized(test), shape


def _model(name, shape):
    from . import models

    c, h, w = shape
    if name == "lenet":
        return models.LeNet((h, w), in_channels=c)
    if name == "mlp":
        return models.MLP(c * h * w, hidden=(256, 128))
    return models.ResNet(8 if h <= 16 else 20, in_channels=c)


def _plot(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = history["epoch"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, history["train_loss"], label="train")
    b.plot(ep, history["train_acc"], label="train")
    if any(v is not None for v in history["val_loss"]):
        a.plot(ep, history["val_loss"], label="test")
        b.plot(ep, history["val_acc"], label="test")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend()
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.legend()
    fig.tight_layout()
    fig.savefig(path)


def check_train_args(args):
    """What is wrong with `ember train`'s arguments (single or distributed), or None."""
    if args.resume and not args.checkpoint:
        return "--resume needs --checkpoint PATH"
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    try:
        from ._backend import device
        device(args.device)
    except (TypeError, ValueError, RuntimeError) as e:
        return f"--device {args.device}: {e}"
    return None


def run_train(args):
    """The `ember train` command; returns the process exit code."""
    import os
    from . import _C, nn, optim
    from .data import DataLoader
    from .tensor import manual_seed

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("ember train: --plot needs matplotlib, which is not installed (pip install matplotlib)",
                  file=sys.stderr)
            return 2
    problem = check_train_args(args)
    if problem:
        print(f"ember train: {problem}", file=sys.stderr)
        return 2
    if args.threads is not None:
        _C.set_num_threads(args.threads)
    manual_seed(args.seed)
    try:
        train_ds, test_ds, shape = _datasets(args.dataset, args.root)
    except (FileNotFoundError, ValueError) as e:
        print(f"ember train: {e}", file=sys.stderr)
        return 1
    model = _model(args.model, shape)
    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    else:
        cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
        opt = cls(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=256)
    start, history = 0, None
    if args.resume and os.path.exists(args.checkpoint):
        ck = load_checkpoint(args.checkpoint, model, opt, sched)
        start, history = int(ck["epoch"]) + 1, ck.get("history")
        print(f"resumed from {args.checkpoint} after epoch {start}")
    callbacks = []
    if args.checkpoint:
        callbacks.append(ModelCheckpoint(args.checkpoint, monitor="train_loss", save_best_only=False))
    n_params = sum(p.numel() for p in model.parameters())
    if not args.quiet:
        print(f"{args.model} ({n_params} parameters) on {args.dataset}: {len(train_ds)} train / {len(test_ds)} test "
              f"images, {args.optimizer} lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs, "
              f"device {args.device}")
    t0 = time.perf_counter()
    history = fit(model, nn.CrossEntropyLoss(), opt, train_loader, test_loader if args.val else None,
                  epochs=args.epochs, scheduler=sched, callbacks=callbacks, device=args.device,
                  progress=not args.quiet, start_epoch=start, history=history)
    result = evaluate(model, test_loader, device=args.device)
    if not args.quiet:
        print(f"trained in {time.perf_counter() - t0:.1f}s")
    if args.plot:
        _plot(history, args.plot)
        print(f"wrote {args.plot}")
    print(f"test accuracy: {result['accuracy']:.3f}")
    return 0
