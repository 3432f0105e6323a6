"""Activations, softmax and cross-entropy: ember vs the equivalent NumPy expression vs
PyTorch (CPU, same thread count), with a plain copy of the same bytes (np.copyto) as the
bandwidth ceiling. Float32, 1M and 16M elements.

    OMP_WAIT_POLICY=passive PYTHONPATH=python python3 bench/bench_activation.py [--quick] [--threads 2]

On an oversubscribed machine (more runnable threads than cores) set OMP_WAIT_POLICY=passive:
with libgomp's default spin-waiting, a 2-thread parallel region there often waits a whole
scheduler time slice (5-25 ms) for its second thread, for ember and torch alike.

Each row is timed in two phases, each calling its implementations once per round,
interleaved, for `repeat` rounds after a warm-up, and reporting medians (the shared
machine is noisy; interleaving keeps slow spells from landing on one implementation;
--stat min reports the best round instead, for a loaded machine):
  1. ember and the copy alone: the ceiling. (With torch interleaved, its OpenMP workers
     keep spinning after each call and compete with whatever runs next: the copy's
     median moved between 0.31 and 0.59 ms from run to run at 1M, and the ratio with it.
     Alone with ember it stays at 0.30-0.31 ms.)
  2. ember, NumPy and torch: the peers, under the same load.
Columns:
  ember ms  phase 1 (ember beside the copy only)
  GB/s      bytes the op must move (reads + writes, once) / ember's time in phase 1
  copy GB/s the same bytes moved by np.copyto (read + write), the ceiling
  vs copy   ember time / copy time, phase 1 (goal <= 1.5)
  vs numpy  numpy time / ember time, phase 2 (goal >= 1.0)
  vs torch  torch time / ember time, phase 2
"""
import argparse
import platform
import time

import numpy as np

import ember
import ember.nn.functional as F
from ember.nn.functional import activation as A

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the benchmark still runs, without the torch column
    torch = None

try:
    from scipy.special import erf as _erf  # NumPy itself has no erf
except ImportError:
    _erf = None


def _interleaved_medians(fns, repeat, warmup=2, stat=np.median):
    for f in fns.values():
        for _ in range(warmup):
            f()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(stat(v)) for k, v in times.items()}


def _copy_fn(nbytes):
    """np.copyto of nbytes/2 read + nbytes/2 written: the bandwidth ceiling for nbytes."""
    n = max(1, nbytes // 8)
    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    return lambda: np.copyto(dst, src)


def elementwise_cases(n):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    tx, tg = ember.from_numpy(x), ember.from_numpy(g)
    y = {k: getattr(F, k)(tx) for k in ("relu", "sigmoid", "tanh")}
    ynp = {k: v.numpy() for k, v in y.items()}
    s = np.float32(0.7978845608028654)
    c = np.float32(0.044715)
    if torch is not None:
        X, G = torch.from_numpy(x), torch.from_numpy(g)
        Y = {k: torch.from_numpy(v) for k, v in ynp.items()}
    cases = [
        ("relu", 2, lambda: F.relu(tx), lambda: np.maximum(x, 0), lambda: torch.relu(X)),
        ("relu bwd", 3, lambda: A._run_backward("relu_backward", tg, y["relu"]),
         lambda: np.where(ynp["relu"] > 0, g, np.float32(0)),
         lambda: torch.ops.aten.threshold_backward(G, Y["relu"], 0)),
        ("leaky_relu", 2, lambda: F.leaky_relu(tx), lambda: np.where(x > 0, x, x * np.float32(0.01)),
         lambda: TF.leaky_relu(X)),
        ("leaky_relu bwd", 3, lambda: A._run_backward("leaky_relu_backward", tg, tx, 0.01),
         lambda: np.where(x > 0, g, g * np.float32(0.01)),
         lambda: torch.ops.aten.leaky_relu_backward(G, X, 0.01, False)),
        ("sigmoid", 2, lambda: F.sigmoid(tx), lambda: 1 / (1 + np.exp(-x)), lambda: torch.sigmoid(X)),
        ("sigmoid bwd", 3, lambda: A._run_backward("sigmoid_backward", tg, y["sigmoid"]),
         lambda: g * ynp["sigmoid"] * (1 - ynp["sigmoid"]), lambda: torch.ops.aten.sigmoid_backward(G, Y["sigmoid"])),
        ("tanh", 2, lambda: F.tanh(tx), lambda: np.tanh(x), lambda: torch.tanh(X)),
        ("tanh bwd", 3, lambda: A._run_backward("tanh_backward", tg, y["tanh"]),
         lambda: g * (1 - ynp["tanh"] * ynp["tanh"]), lambda: torch.ops.aten.tanh_backward(G, Y["tanh"])),
        ("gelu", 2, lambda: F.gelu(tx),
         (lambda: 0.5 * x * (1 + _erf(x * np.float32(0.7071067811865476)))) if _erf else None,
         lambda: TF.gelu(X)),
        ("gelu bwd", 3, lambda: A._run_backward("gelu_backward", tg, tx, False),
         (lambda: g * (0.5 * (1 + _erf(x * np.float32(0.7071067811865476)))
                       + x * np.exp(-0.5 * x * x) * np.float32(0.3989422804014327))) if _erf else None,
         lambda: torch.ops.aten.gelu_backward(G, X)),
        ("gelu tanh", 2, lambda: F.gelu(tx, approximate="tanh"),
         lambda: 0.5 * x * (1 + np.tanh(s * (x + c * x * x * x))), lambda: TF.gelu(X, approximate="tanh")),
        ("gelu tanh bwd", 3, lambda: A._run_backward("gelu_backward", tg, tx, True), lambda: _np_gelu_tanh_bwd(g, x),
         lambda: torch.ops.aten.gelu_backward(G, X, approximate="tanh")),
    ]
    return [(name, f"{n}", nbytes * 4 * n, e, npf, tf if torch is not None else None)
            for name, nbytes, e, npf, tf in cases]


def _np_gelu_tanh_bwd(g, x):
    s, c = np.float32(0.7978845608028654), np.float32(0.044715)
    th = np.tanh(s * (x + c * x * x * x))
    return g * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * s * (1 + 3 * c * x * x))


def softmax_cases(shape, dim=1):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    tx, tg = ember.from_numpy(x), ember.from_numpy(g)
    y, ly = F.softmax(tx, dim), F.log_softmax(tx, dim)
    yn, lyn = y.numpy(), ly.numpy()
    nb = 4 * x.size

    def np_softmax():
        e = np.exp(x - x.max(dim, keepdims=True))
        return e / e.sum(dim, keepdims=True)

    def np_log_softmax():
        z = x - x.max(dim, keepdims=True)
        return z - np.log(np.exp(z).sum(dim, keepdims=True))

    label = "x".join(map(str, shape)) + ("" if dim == len(shape) - 1 else f" dim={dim}")
    if torch is not None:
        X, G, Y, LY = (torch.from_numpy(a) for a in (x, g, yn, lyn))
    tfs = [None] * 4 if torch is None else [
        lambda: torch.softmax(X, dim), lambda: torch.log_softmax(X, dim),
        lambda: torch.ops.aten._softmax_backward_data(G, Y, dim, torch.float32),
        lambda: torch.ops.aten._log_softmax_backward_data(G, LY, dim, torch.float32)]
    return [
        ("softmax", label, 2 * nb, lambda: F.softmax(tx, dim), np_softmax, tfs[0]),
        ("log_softmax", label, 2 * nb, lambda: F.log_softmax(tx, dim), np_log_softmax, tfs[1]),
        ("softmax bwd", label, 3 * nb, lambda: A._run_backward("softmax_backward", tg, y, dim),
         lambda: yn * (g - (g * yn).sum(dim, keepdims=True)), tfs[2]),
        ("log_softmax bwd", label, 3 * nb, lambda: A._run_backward("log_softmax_backward", tg, ly, dim),
         lambda: g - np.exp(lyn) * g.sum(dim, keepdims=True), tfs[3]),
    ]


def cross_entropy_cases(shape):
    """Forward + backward of the mean loss: reads logits twice, writes the gradient once."""
    n, c = shape
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    t = rng.integers(0, c, n).astype(np.int64)
    tt = ember.from_numpy(t)
    rows = np.arange(n)

    def ours():
        xt = ember.from_numpy(x)  # a fresh leaf sharing x, so nothing is copied
        xt.requires_grad = True
        F.cross_entropy(xt, tt).backward()
        return xt.grad

    def np_ce():
        m = x.max(1, keepdims=True)
        e = np.exp(x - m)
        s = e.sum(1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[rows, t])
        grad = e / s
        grad[rows, t] -= 1
        grad /= n
        return loss, grad

    tf = None
    if torch is not None:
        T = torch.from_numpy(t)

        def tf():
            X = torch.from_numpy(x).requires_grad_()
            TF.cross_entropy(X, T).backward()
            return X.grad

    return [("cross_entropy f+b", f"{n}x{c}", 3 * 4 * x.size, ours, np_ce, tf)]


def all_cases(quick):
    sizes = [1 << 16] if quick else [1 << 20, 1 << 24]
    cases = []
    for n in sizes:
        cases += elementwise_cases(n)
    soft = [((64, 1000), 1), ((256, 10), 1)] if quick else \
        [((1024, 1000), 1), ((16384, 1000), 1), ((256, 10), 1), ((1000, 1024), 0), ((64, 1000, 16), 1),
         ((1 << 20,), 0)]
    for shape, dim in soft:
        cases += softmax_cases(shape, dim)
    for shape in ([(64, 1000)] if quick else [(1024, 1000), (16384, 1000)]):
        cases += cross_entropy_cases(shape)
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=0, help="rounds (default: by size)")
    ap.add_argument("--only", default="", help="comma-separated op names")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="min: best round of each, less sensitive to a loaded machine")
    args = ap.parse_args()
    ember.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()} "
          f"{platform.processor() or ''}, {args.threads} threads, ember cpu path {ember.cpu_isa()}, "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'n/a'}, {args.stat} of rounds")
    head = (f"| {'op':<17} | {'shape':<17} | {'ember ms':>9} | {'numpy ms':>9} | {'torch ms':>9} | {'copy ms':>8} "
            f"| {'GB/s':>6} | {'copy GB/s':>9} | {'vs copy':>7} | {'vs numpy':>8} | {'vs torch':>8} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    only = set(filter(None, args.only.split(",")))
    for name, shape, nbytes, ours, npf, tf in all_cases(args.quick):
        if only and name.split()[0] not in only and name not in only:
            continue
        repeat = args.repeat or max(5, min(31, int(4e9 / max(nbytes, 1) ** 1.0 / 20)))
        stat = np.min if args.stat == "min" else np.median
        t = _interleaved_medians({"ember": ours, "copy": _copy_fn(nbytes)}, repeat, stat=stat)
        peers = {k: f for k, f in (("numpy", npf), ("torch", tf)) if f is not None}
        tp = _interleaved_medians({"ember": ours, **peers}, repeat, stat=stat) if peers else {}
        te = t["ember"]
        fmt = lambda k: f"{tp[k] * 1e3:9.3f}" if k in tp else f"{'-':>9}"  # noqa: E731
        ratio = lambda k: f"{tp[k] / tp['ember']:8.2f}" if k in tp else f"{'-':>8}"  # noqa: E731
        print(f"| {name:<17} | {shape:<17} | {te * 1e3:9.3f} | {fmt('numpy')} | {fmt('torch')} | "
              f"{t['copy'] * 1e3:8.3f} | {nbytes / te / 1e9:6.1f} | {nbytes / t['copy'] / 1e9:9.1f} | "
              f"{te / t['copy']:7.2f} | {ratio('numpy')} | {ratio('torch')} |", flush=True)


if __name__ == "__main__":
    main()
