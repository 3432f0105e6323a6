"""Batch norm forward+backward, dropout, SGD / AdamW steps: ember vs the NumPy
expression and PyTorch (CPU) on the same inputs, in one process, plus each op's bytes
moved against a plain np.copyto moving the same number of bytes.

    PYTHONPATH=python python3 bench/bench_norm_optim.py [--threads 2] [--repeat 15] [--quick] [--lenet-adam-only]

Bytes moved: each operand read or written once (batch norm f+b: x, y, dy, x, dx; dropout:
x, out, the 1-byte mask; SGD: param, grad, buf read, param, buf written; AdamW: param,
grad, m, v read, param, m, v written). "ember / copy bandwidth" > 1 is possible for the
in-place updates: a copy also pays the read-for-ownership of its destination.

The last table is one Adam step over LeNet-like parameters (8 tensors, 421,642 floats):
the per-parameter calls the optimizers made before, the one adam_step_multi call they
make now, and torch.optim.Adam(foreach=True), both as raw kernel calls and as
optimizer.step().

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
    ap.add_argument("--lenet-adam-only", action="store_true", help="only the LeNet-like Adam step table")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    if args.lenet_adam_only:
        _lenet_adam(args.repeat, torch)
        return
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

    # The kernels alone, outputs preallocated: what the autograd path adds is Python,
    # allocation of the outputs and (for dropout) the mask, not kernel time.
    print()
    print("Kernels alone (ember._C, outputs preallocated):")
    print("| kernel | shape | ember GB/s | copy GB/s | ember / copy bandwidth | ember ms | copy ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    K = ember._C
    cases = []
    for shape in ([(8, 16, 14, 14)] if args.quick else [(64, 32, 28, 28), (256, 64, 14, 14)]):
        N, C = shape[:2]
        x = rng.standard_normal(shape).astype(np.float32).reshape(N, C, -1)
        g = rng.standard_normal(shape).astype(np.float32).reshape(N, C, -1)
        y, dx = np.empty_like(x), np.empty_like(x)
        w, b = np.ones(C, np.float32), np.zeros(C, np.float32)
        rm, rv, sm, si = (np.zeros(C, np.float32) for _ in range(4))
        dw, db = np.empty(C, np.float32), np.empty(C, np.float32)
        lbl = "x".join(map(str, shape))
        cases.append(("batch_norm_forward", lbl, lambda x=x, y=y, w=w, b=b, rm=rm, rv=rv, sm=sm, si=si:
                      K.batch_norm_forward(x, w, b, rm, rv, y, sm, si, True, 0.1, 1e-5), 2 * x.nbytes))
        cases.append(("batch_norm_backward", lbl, lambda g=g, x=x, sm=sm, si=si, w=w, dx=dx, dw=dw, db=db:
                      K.batch_norm_backward(g, x, sm, si, w, True, dx, dw, db), 3 * x.nbytes))
    for n in ([1 << 16] if args.quick else [1 << 20, 1 << 24]):
        x = rng.standard_normal(n).astype(np.float32)
        out, mask = np.empty_like(x), np.empty(n, bool)
        cases.append(("dropout_forward", f"{n}", lambda x=x, out=out, mask=mask:
                      K.dropout_forward(x, 0.5, 1, 0, out, mask), 9 * n))
        cases.append(("dropout_backward", f"{n}", lambda x=x, out=out, mask=mask:
                      K.dropout_backward(x, mask, 0.5, out), 9 * n))
    for name, shape, fn, nbytes in cases:
        src = np.ones(nbytes // 8, np.float32)
        dst = np.empty_like(src)
        te, tc = _time_round_robin([fn, lambda: np.copyto(dst, src)], args.repeat)
        print(f"| {name} | {shape} | {nbytes / te / 1e9:.1f} | {nbytes / tc / 1e9:.1f} | {tc / te:.2f} | "
              f"{te * 1e3:.3f} | {tc * 1e3:.3f} |", flush=True)
    print()
    _lenet_adam(args.repeat, torch)


LENET_SHAPES = [(32, 1, 3, 3), (32,), (64, 32, 3, 3), (64,), (128, 3136), (128,), (10, 128), (10,)]


def _lenet_adam(repeat, torch):
    """One Adam step over LeNet-like parameters: per-parameter adam_step calls (the
    optimizers' old path) against one adam_step_multi call and torch's foreach Adam."""
    from ember import nn
    from ember.optim import _kernels as OK

    class PerParamAdam(ember.optim.Adam):
        """Adam.step as it was: one adam_step call per parameter."""

        def _update(self, group, params, grads, states):
            beta1, beta2 = group["betas"]
            for p, g, st in zip(params, grads, states):
                if "step" not in st:
                    st.update(step=0, exp_avg=ember.zeros_like(p), exp_avg_sq=ember.zeros_like(p))
                st["step"] += 1
                OK.adam_step(p, g, st["exp_avg"], st["exp_avg_sq"], None, step=st["step"], lr=group["lr"],
                             beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                             amsgrad=False, decoupled=False)

    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) * 0.1 for s in LENET_SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in LENET_SHAPES]
    n = sum(a.size for a in init)
    nbytes = 7 * 4 * n  # param, grad, m, v read; param, m, v written
    K = ember._C
    # raw kernels: each contender its own preallocated state (no contender finds another's
    # data in cache), steps counting up so the bias corrections move
    def state():
        return [a.copy() for a in init], [np.zeros_like(a) for a in init], [np.zeros_like(a) for a in init], [0]

    def per_param(p_m_v_step=state()):
        p, m, v, step = p_m_v_step
        step[0] += 1
        for i in range(len(p)):
            K.adam_step(p[i], grads[i], m[i], v[i], None, step[0], 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)

    def multi(p_m_v_step=state()):
        p, m, v, step = p_m_v_step
        step[0] += 1
        K.adam_step_multi(p, grads, m, v, None, [step[0]] * len(p), 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)

    # optimizer.step() on parameters with grads set once
    def ember_opt(cls):
        params = [nn.Parameter(ember.from_numpy(a.copy())) for a in init]
        for q, g in zip(params, grads):
            q.grad = ember.from_numpy(g)
        return cls(params, lr=1e-3).step

    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    for q, g in zip(tparams, grads):
        q.grad = torch.from_numpy(g)
    torch_foreach = torch.optim.Adam(tparams, lr=1e-3, foreach=True)
    tparams1 = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    for q, g in zip(tparams1, grads):
        q.grad = torch.from_numpy(g)
    torch_single = torch.optim.Adam(tparams1, lr=1e-3, foreach=False)
    fns = [("kernels: adam_step x8 (per parameter)", per_param), ("kernels: adam_step_multi x1", multi),
           ("Adam.step(), per-parameter calls (old)", ember_opt(PerParamAdam)),
           ("Adam.step(), one multi call (new)", ember_opt(ember.optim.Adam)),
           ("torch.optim.Adam(foreach=True).step()", torch_foreach.step),
           ("torch.optim.Adam(foreach=False).step()", torch_single.step)]
    times = _time_round_robin([f for _, f in fns], repeat, warmup=5)
    print(f"Adam step over LeNet-like parameters ({len(LENET_SHAPES)} tensors, {n} float32; "
          f"{nbytes / 1e6:.1f} MB moved), medians of {repeat} round-robin calls:")
    print("| contender | ms | GB/s | vs new step |")
    print("|---|---:|---:|---:|")
    new = times[3]
    for (name, _), t in zip(fns, times):
        print(f"| {name} | {t * 1e3:.3f} | {nbytes / t / 1e9:.1f} | {t / new:.2f} |", flush=True)


if __name__ == "__main__":
    main()
