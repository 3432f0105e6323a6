"""GPU kernels vs CuPy (cuBLAS for matmul) on the same device arrays, side by side.

    PYTHONPATH=... python3 bench/bench_gpu.py

Times with CUDA events, median of repeats after warm-up; ratio = peer time / ember time.
Bandwidth rows count the bytes an op must move once; compare with the copy row.
"""
import cupy as cp
import numpy as np

import ember


def _time(fn, repeat=20, warmup=3):
    for _ in range(warmup):
        fn()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(repeat):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1e-3)
    return float(np.median(times))


def rows():
    n = 1 << 26  # 64M float32
    a = cp.random.standard_normal(n, dtype=cp.float32)
    b = cp.random.standard_normal(n, dtype=cp.float32)
    ta, tb = ember.from_dlpack(a), ember.from_dlpack(b)
    nb = 4 * n
    yield "copy", f"{n}", lambda: ta.clone(), lambda: a.copy(), 2 * nb, 0
    yield "add", f"{n}", lambda: ta + tb, lambda: a + b, 3 * nb, n
    yield "exp", f"{n}", lambda: ta.exp(), lambda: cp.exp(a), 2 * nb, n
    yield "sum", f"{n}", lambda: ta.sum(), lambda: a.sum(), nb, n
    yield "max axis=1", "65536x1024", lambda: ta.reshape(65536, 1024).amax(1), \
        lambda: a.reshape(65536, 1024).max(1), nb, n
    for m in (1024, 2048, 4096):
        x = cp.random.standard_normal((m, m), dtype=cp.float32)
        y = cp.random.standard_normal((m, m), dtype=cp.float32)
        tx, ty = ember.from_dlpack(x), ember.from_dlpack(y)
        yield "matmul fp32", f"{m}^3", lambda tx=tx, ty=ty: tx @ ty, lambda x=x, y=y: x @ y, 12 * m * m, 2 * m ** 3


def main():
    print(f"{ember.cuda.get_device_name()}; peer: CuPy {cp.__version__} (cuBLAS for matmul)")
    print(f"{'op':<12} {'shape':<12} {'ember ms':>9} {'cupy ms':>9} {'ratio':>6} {'GB/s':>8} {'TFLOP/s':>8}")
    for name, shape, ours, theirs, nbytes, flops in rows():
        te, tc = _time(ours), _time(theirs)
        print(f"{name:<12} {shape:<12} {te * 1e3:>9.3f} {tc * 1e3:>9.3f} {tc / te:>6.2f} {nbytes / te / 1e9:>8.0f} "
              f"{flops / te / 1e12:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
