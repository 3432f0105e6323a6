"""LeNet training-step throughput, ember vs PyTorch (CPU, same threads), plus a per-op
time profile of ember's step so the next bottleneck is visible.

  PYTHONPATH=python python3 bench/bench_train.py [--threads 2] [--batches 64 256] [--steps 20]

Model (28x28, 1 channel): conv 1->32 3x3 pad 1, ReLU, maxpool 2, conv 32->64 3x3 pad 1,
ReLU, maxpool 2, flatten, linear 3136->128, ReLU, linear 128->10; cross-entropy; Adam.
One step = forward + loss + zero_grad + backward + optimizer.step. Both frameworks run
side by side in one process on the same random data; we report the median step time after
warm-up as images/s. The profile wraps every autograd Function: forward and backward time
per op class (inclusive: an op that calls other ops inside its forward counts them too),
plus the optimizer step.
"""
import argparse
import collections
import platform
import statistics
import time

import numpy as np

import ember
from ember import autograd, models, nn, optim



def _lenet_flops():
    """Multiply-adds x 2 of forward; a training step is ~3x (forward, two backward GEMMs)."""
    conv1 = 28 * 28 * 32 * 1 * 9
    conv2 = 14 * 14 * 64 * 32 * 9
    fc = 3136 * 128 + 128 * 10
    return 2 * 3 * (conv1 + conv2 + fc)


def _median_step(step, steps, warmup=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (max(times) - min(times)) / statistics.median(times)


def ember_step_fn(batch, seed=0):
    ember.manual_seed(seed)
    model = models.LeNet(28)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    x = ember.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = ember.from_numpy(rng.integers(0, 10, batch).astype(np.int64))

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step, opt


def torch_step_fn(batch, seed=0):
    import torch
    import torch.nn as tnn

    torch.manual_seed(seed)
    model = tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                           tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                           tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch).astype(np.int64))
    loss_fn = tnn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


class _Profiler:
    """Times each autograd Function's forward (via Function.apply) and backward (via a timed
    subclass put into each recorded Node), and the optimizer step."""

    def __init__(self):
        self.fwd = collections.defaultdict(float)
        self.bwd = collections.defaultdict(float)
        self.calls = collections.Counter()
        self._timed = {}

    def _timed_cls(self, fn):
        if fn not in self._timed:
            prof, name, orig = self, fn.__name__, fn.backward

            def backward(ctx, g):
                t0 = time.perf_counter()
                try:
                    return orig(ctx, g)
                finally:
                    prof.bwd[name] += time.perf_counter() - t0

            self._timed[fn] = type(name, (fn,), {"backward": staticmethod(backward)})
        return self._timed[fn]

    def __enter__(self):
        prof = self
        self._apply = autograd.Function.__dict__["apply"]
        self._node_init = autograd.Node.__init__
        orig_apply = self._apply.__func__
        orig_init = self._node_init

        def apply(cls, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return orig_apply(cls, *args, **kwargs)
            finally:
                prof.fwd[cls.__name__] += time.perf_counter() - t0
                prof.calls[cls.__name__] += 1

        def node_init(node, fn, ctx, inputs):
            orig_init(node, prof._timed_cls(fn), ctx, inputs)

        autograd.Function.apply = classmethod(apply)
        autograd.Node.__init__ = node_init
        return self

    def __exit__(self, *exc):
        autograd.Function.apply = self._apply
        autograd.Node.__init__ = self._node_init
        return False


def profile_ember(batch, steps):
    step, opt = ember_step_fn(batch)
    for _ in range(3):
        step()
    opt_time = 0.0
    orig = opt.step

    def timed_step(*a, **k):
        nonlocal opt_time
        t0 = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            opt_time += time.perf_counter() - t0

    opt.step = timed_step
    with _Profiler() as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - t0
    opt.step = orig
    rows = []
    for name in set(prof.fwd) | set(prof.bwd):
        rows.append((name, prof.calls[name] / steps, prof.fwd[name] / steps, prof.bwd[name] / steps))
    rows.sort(key=lambda r: -(r[2] + r[3]))
    return rows, opt_time / steps, total / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="*", default=[64, 256])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3, help="side-by-side rounds (median of each)")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)

    ember.set_num_threads(args.threads)
    have_torch = False
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            have_torch = True
        except ImportError:
            print("(PyTorch not installed: ember only)")
    flops = _lenet_flops()
    print(f"# LeNet training step, 28x28, Adam — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
          f"{args.threads} threads, ember ISA {ember.cpu_isa()}")
    print(f"# {flops / 1e6:.1f} MFLOP per image per step (forward + backward)\n")
    print("| batch | ember img/s | ember GFLOP/s | torch img/s | torch GFLOP/s | ember / torch | spread |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for b in args.batches:
        e_step, _ = ember_step_fn(b)
        t_step = torch_step_fn(b) if have_torch else None
        e_times, t_times, spreads = [], [], []
        for _ in range(args.repeat):  # interleave so both see the same machine load
            te, se = _median_step(e_step, args.steps)
            e_times.append(te)
            spreads.append(se)
            if t_step is not None:
                tt, _ = _median_step(t_step, args.steps)
                t_times.append(tt)
        te = statistics.median(e_times)
        e_ips = b / te
        row = f"| {b} | {e_ips:.0f} | {e_ips * flops / 1e9:.1f} |"
        if t_times:
            tt = statistics.median(t_times)
            t_ips = b / tt
            row += f" {t_ips:.0f} | {t_ips * flops / 1e9:.1f} | {e_ips / t_ips:.2f} |"
        else:
            row += " - | - | - |"
        print(row + f" {statistics.median(spreads):.0%} |")

    for b in args.batches:
        rows, opt_ms, step_s = profile_ember(b, max(3, args.steps // 2))
        print(f"\n## ember per-op profile, batch {b} (step {step_s * 1e3:.1f} ms, profiled)\n")
        print("| op (autograd Function) | calls/step | forward ms | backward ms | % of step |")
        print("|---|---:|---:|---:|---:|")
        for name, calls, f, bw in rows:
            print(f"| {name} | {calls:.0f} | {f * 1e3:.2f} | {bw * 1e3:.2f} | {(f + bw) / step_s:.0%} |")
        print(f"| optimizer.step (Adam) | 1 | {opt_ms * 1e3:.2f} | - | {opt_ms / step_s:.0%} |")


if __name__ == "__main__":
    main()
