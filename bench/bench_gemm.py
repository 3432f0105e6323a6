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
import time

import numpy as np

import ember

PEAK_GFLOPS = 220.0  # fp32, 2 cores x 2 AVX-512 FMA units


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


def median_time(fn, repeat, min_time=0.2):
    for _ in range(2):
        fn()
    times = []
    t_start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - t_start < min_time and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    dt = np.dtype(args.dtype)
    ember.set_num_threads(args.threads)
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(args.threads)
    except ImportError:
        pass
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
            f"| {'numpy GF/s':>10} {'torch GF/s':>10} | {'np/ember':>8} {'torch/ember':>11}")
    print(head)
    print("-" * len(head))
    for label, M, N, K, ta, tb in shapes(args.quick):
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
        out = np.empty((M, N), dt)
        opa = a.T if ta else a
        opb = b.T if tb else b
        np_out = np.empty((M, N), dt)
        f_e = lambda: ember._C.matmul(a, b, out, ta, tb, 1.0, 0.0)
        f_n = lambda: np.matmul(opa, opb, out=np_out)
        flops = 2.0 * M * N * K
        t_e = median_time(f_e, args.repeat)
        t_n = median_time(f_n, args.repeat)
        t_t = None
        if torch is not None:
            ta_t, tb_t = torch.from_numpy(opa), torch.from_numpy(opb)
            t_out = torch.empty((M, N), dtype=ta_t.dtype)
            t_t = median_time(lambda: torch.matmul(ta_t, tb_t, out=t_out), args.repeat)
        err = np.abs(out - opa.astype(np.float64) @ opb.astype(np.float64)).max()
        assert err < 1e-2 * np.sqrt(K), (label, err)
        g_e, g_n = flops / t_e / 1e9, flops / t_n / 1e9
        g_t = flops / t_t / 1e9 if t_t else float("nan")
        rt = f"{t_t / t_e:>11.2f}" if t_t else f"{'-':>11}"
        print(f"{label:<15} {M:>6} {N:>5} {K:>5} {int(ta):>2} {int(tb):>2} | {g_e:>10.1f} {g_e / PEAK_GFLOPS:>7.0%} "
              f"| {g_n:>10.1f} {g_t:>10.1f} | {t_n / t_e:>8.2f} {rt}", flush=True)


if __name__ == "__main__":
    main()
