"""GEMM benchmark: ember's sgemm against NumPy (OpenBLAS) and PyTorch on the same
inputs, 2 threads, side by side in one process (medians after warm-up).

    PYTHONPATH=python python3 bench/bench_gemm.py [--quick] [--repeat N] [--dtype float64]

Shapes: square n = 128..2048 and the GEMMs of one LeNet training step at batch 64
(conv as im2col, fc1 forward and its two backward GEMMs, fc2). Columns: GFLOP/s and
its fraction of the ~220 GFLOP/s fp32 peak of 2 cores, then time ratios
(NumPy time / ember time, torch time / ember time; >= 1 means ember is faster).
The kernel is called directly (ember._C.matmul with transpose flags) so the timing is
the GEMM, not the Python wrapper; the `@` row shows the wrapper's overhead.
"""
import argparse
import os
import sys
import time

# NumPy's OpenBLAS reads its thread count at import: match --threads (default 2) first.
_thr = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", _thr)

import numpy as np  # noqa: E402

import ember  # noqa: E402

# fp32 peak of the 2 cores: 2 x (2 AVX-512 FMA units x 16 lanes x 2 flops) x clock. KVM
# does not report the clock; PyTorch's sgemm reaches 429 GFLOP/s at n = 2048 here, so the
# peak is at least that (clock >= 3.35 GHz). The project brief's ~220 GFLOP/s is about
# one core's. Override with --peak.
PEAK_GFLOPS = 430.0


def shapes(quick):
    sq = [128, 256, 512] if quick else [128, 256, 512, 1024, 2048]
    rows = [(f"square {n}", n, n, n, False, False) for n in sq]
    rows += [
        # (label, M, N, K, trans_a, trans_b)
        ("conv1 im2col", 64 * 28 * 28, 32, 9, False, False),
        ("conv2 im2col", 64 * 14 * 14, 64, 288, False, False),
        ("fc1 fwd x@W^T", 64, 128, 3136, False, True),
        ("fc1 dx g@W", 64, 3136, 128, False, False),
        ("fc1 dW g^T@x", 128, 3136, 64, True, False),
        ("fc2 fwd x@W^T", 64, 10, 128, False, True),
    ]
    return rows


def time_side_by_side(fns, repeat, rounds=3, min_time=0.1):
    """(median, best) seconds per call of each fn. Each fn runs in its own block (warm-up,
    then `repeat` timed calls, at least min_time): interleaving single calls would let one
    library's spinning worker threads (OpenBLAS, OpenMP) steal the cores from the next
    library's. Blocks alternate over `rounds`; the reported median is the lowest block
    median, so a burst of load from other processes hits no contender alone."""
    meds = [[] for _ in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            for _ in range(3):
                f()
            ts = []
            t_start = time.perf_counter()
            while len(ts) < repeat or (time.perf_counter() - t_start < min_time and len(ts) < 1000):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            meds[i].append(float(np.median(ts)))
            best[i] = min(best[i], min(ts))
    return [(min(m), b) for m, b in zip(meds, best)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--only", default="", help="run only shapes whose label contains this text")
    ap.add_argument("--peak", type=float, default=PEAK_GFLOPS, help="GFLOP/s the 'of peak' column divides by")
    args = ap.parse_args()
    dt = np.dtype(args.dtype)
    ember.set_num_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None
    rng = np.random.default_rng(0)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
    print(f"# ember GEMM bench: {args.threads} threads, cpu path {ember.cpu_isa()}, dtype {dt.name}, "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else '-'}, env {env}")
    head = (f"{'shape':<15} {'M':>6} {'N':>5} {'K':>5} {'ta':>2} {'tb':>2} | {'ember GF/s':>10} {'of peak':>7} "
            f"| {'numpy GF/s':>10} {'torch GF/s':>10} | {'np/ember':>8} {'(best)':>6} {'torch/ember':>11}")
    print(head)
    print("-" * len(head))
    for label, M, N, K, ta, tb in shapes(args.quick):
        if args.only not in label:
            continue
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
        out = np.empty((M, N), dt)
        opa = a.T if ta else a
        opb = b.T if tb else b
        np_out = np.empty((M, N), dt)
        fns = [lambda: ember._C.matmul(a, b, out, ta, tb, 1.0, 0.0),
               lambda: np.matmul(opa, opb, out=np_out)]
        if torch is not None:
            ta_t, tb_t = torch.from_numpy(opa), torch.from_numpy(opb)
            t_out = torch.empty((M, N), dtype=ta_t.dtype)
            fns.append(lambda: torch.matmul(ta_t, tb_t, out=t_out))
        res = time_side_by_side(fns, args.repeat)
        (t_e, b_e), (t_n, b_n) = res[0], res[1]
        t_t = res[2][0] if torch is not None else None
        err = np.abs(out - opa.astype(np.float64) @ opb.astype(np.float64)).max()
        assert err < 1e-3 * np.sqrt(K) * max(1.0, np.abs(out).max()), (label, err)
        flops = 2.0 * M * N * K
        g_e, g_n = flops / t_e / 1e9, flops / t_n / 1e9
        g_t = flops / t_t / 1e9 if t_t else float("nan")
        rt = f"{t_t / t_e:>11.2f}" if t_t else f"{'-':>11}"
        print(f"{label:<15} {M:>6} {N:>5} {K:>5} {int(ta):>2} {int(tb):>2} | {g_e:>10.1f} {g_e / args.peak:>7.0%} "
              f"| {g_n:>10.1f} {g_t:>10.1f} | {t_n / t_e:>8.2f} {b_n / b_e:>6.2f} {rt}", flush=True)


if __name__ == "__main__":
    main()
