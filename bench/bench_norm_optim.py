"""Batch norm forward+backward, dropout, SGD / AdamW steps: ember vs the NumPy
expression and PyTorch (CPU) on the same inputs, in one process, plus each op's bytes
moved against a plain np.copyto moving the same number of bytes.

    PYTHONPATH=python python3 bench/bench_norm_optim.py [--threads 2] [--repeat 15] [--quick]

Bytes moved: each operand read or written once (batch norm f+b: x, y, dy, x, dx; dropout:
x, out, the 1-byte mask; SGD: param, grad, buf read, param, buf written; AdamW: param,
grad, m, v read, param, m, v written). "ember / copy bandwidth" > 1 is possible for the
in-place updates: a copy also pays the read-for-ownership of its destination.

Timings interleave the contenders round-robin (one call each per round) and report
medians, so load from other processes hits all of them alike."""
import argparse
import datetime
import platform
import time

import numpy as np

import ember
from ember.bench import _norm_optim_rows


def _time_round_robin(fns, repeat, warmup=2):
    for f in fns:
        for _ in range(warmup):
            f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    rows = _norm_optim_rows(args.quick, with_torch=True)
    print(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
          f"{args.threads} threads (ember and torch), cpu path {ember.cpu_isa()}, numpy {np.__version__}, "
          f"torch {torch.__version__}; medians of {args.repeat} round-robin calls")
    print("| op | shape | ember GB/s | copy GB/s | ember / copy bandwidth | ember ms | numpy ms | numpy/ember | "
          "torch ms | torch/ember |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, shape, ours, theirs, nbytes, _flops, torch_fn in rows:
        # np.copyto moving the same bytes: read nbytes/2, write nbytes/2.
        src = np.ones(nbytes // 8, np.float32)
        dst = np.empty_like(src)
        fns = [ours, theirs, lambda: np.copyto(dst, src)] + ([torch_fn] if torch_fn else [])
        t = _time_round_robin(fns, args.repeat)
        te, tn, tc = t[:3]
        tt = t[3] if torch_fn else float("nan")
        print(f"| {name} | {shape} | {nbytes / te / 1e9:.1f} | {nbytes / tc / 1e9:.1f} | {tc / te:.2f} | "
              f"{te * 1e3:.3f} | {tn * 1e3:.3f} | {tn / te:.2f} | {tt * 1e3:.3f} | {tt / te:.2f} |", flush=True)


if __name__ == "__main__":
    main()
