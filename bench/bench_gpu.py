"""GPU kernels vs CuPy (cuBLAS for matmul) on the same device arrays, side by side.

    PYTHONPATH=... python3 bench/bench_gpu.py

Times with CUDA events, median of repeats after warm-up; ratio = peer time / ember time.
Bandwidth rows count the bytes an op must move once; "of copy" is that bandwidth as a
fraction of the measured copy row's. Rows with a check compare ember's answer with a
reference (NumPy float64 on a sample, or CuPy) before they are timed.
"""
import cupy as cp
import numpy as np

import ember
import ember.nn.functional as F
from ember import ref
from ember.optim import _kernels as optim_kernels


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


def _check_sample(ours, reference, x, rtol, n=1 << 16):
    """ours() on the device against reference(x) in float64 on its first n elements."""
    def check():
        got = ours().numpy(force=True).reshape(-1)[:n]
        np.testing.assert_allclose(got, reference(x.reshape(-1)[:n].get().astype(np.float64)), rtol=rtol, atol=1e-6)
    return check


def _adam_rows(n):
    rng = cp.random.default_rng(0)
    p, g = rng.standard_normal(n, dtype=cp.float32), rng.standard_normal(n, dtype=cp.float32)
    m, v = cp.zeros(n, cp.float32), cp.zeros(n, cp.float32)
    tp, tg, tm, tv = (ember.from_dlpack(a) for a in (p, g, m, v))
    kw = dict(step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False)

    def ours():
        optim_kernels.adam_step(tp, tg, tm, tv, None, decoupled=True, **kw)

    def theirs():  # the same update as CuPy expressions, on copies
        m2 = 0.1 * g
        v2 = 0.001 * g * g
        return p - 1e-3 / 0.1 * m2 / (cp.sqrt(v2) / np.sqrt(0.001) + 1e-8)

    def check():
        p0, m0, v0 = p.get().astype(np.float64), m.get(), v.get()
        ours()
        rp, rm, rv, _ = ref.adam_step(p0, g.get().astype(np.float64), m0.astype(np.float64), v0.astype(np.float64),
                                      None, decoupled=True, **kw)
        np.testing.assert_allclose(tp.numpy(force=True), rp, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tm.numpy(force=True), rm, rtol=1e-5, atol=1e-7)

    return ours, theirs, check


def rows():
    n = 1 << 26  # 64M float32
    a = cp.random.standard_normal(n, dtype=cp.float32)
    b = cp.random.standard_normal(n, dtype=cp.float32)
    ta, tb = ember.from_dlpack(a), ember.from_dlpack(b)
    nb = 4 * n
    yield "copy", f"{n}", lambda: ta.clone(), lambda: a.copy(), 2 * nb, 0
    # activations: 64M float32, one read and one write each
    yield ("relu", f"{n}", lambda: F.relu(ta), lambda: cp.maximum(a, 0), 2 * nb, n,
           _check_sample(lambda: F.relu(ta), ref.relu, a, 0))
    yield ("sigmoid", f"{n}", lambda: F.sigmoid(ta), lambda: 1 / (1 + cp.exp(-a)), 2 * nb, n,
           _check_sample(lambda: F.sigmoid(ta), ref.sigmoid, a, 4e-7))
    yield ("gelu", f"{n}", lambda: F.gelu(ta), lambda: 0.5 * a * (1 + cp.tanh(0.7978845608 * (a + 0.044715 * a ** 3))),
           2 * nb, n, _check_sample(lambda: F.gelu(ta), ref.gelu, a, 6e-7))
    x2 = a.reshape(65536, 1024)
    tx2 = ta.reshape(65536, 1024)

    def cupy_softmax():
        e = cp.exp(x2 - x2.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def check_softmax():
        got = F.softmax(tx2, 1).numpy(force=True)[:64]
        np.testing.assert_allclose(got, ref.softmax(x2[:64].get().astype(np.float64), 1), rtol=1e-5, atol=1e-7)
    yield "softmax", "65536x1024", lambda: F.softmax(tx2, 1), cupy_softmax, 2 * nb, 0, check_softmax
    xb = a[: 64 * 64 * 56 * 56].reshape(64, 64, 56, 56)
    txb = ta[: 64 * 64 * 56 * 56].reshape(64, 64, 56, 56)

    def cupy_bn():
        mean = xb.mean((0, 2, 3), keepdims=True)
        return (xb - mean) / cp.sqrt(xb.var((0, 2, 3), keepdims=True) + 1e-5)

    def check_bn():
        got = F.batch_norm(txb, None, None, training=True).numpy(force=True)
        np.testing.assert_allclose(got, cupy_bn().get(), rtol=1e-4, atol=1e-4)
    yield ("batch_norm", "64x64x56x56", lambda: F.batch_norm(txb, None, None, training=True), cupy_bn,
           3 * 4 * xb.size, 0, check_bn)
    ours, theirs, check_adam = _adam_rows(1 << 24)
    yield "adam", f"{1 << 24}", ours, theirs, 7 * 4 * (1 << 24), 0, check_adam
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
    print(f"{'op':<12} {'shape':<12} {'ember ms':>9} {'cupy ms':>9} {'ratio':>6} {'GB/s':>8} {'of copy':>8} "
          f"{'TFLOP/s':>8}")
    copy_bw = None
    for name, shape, ours, theirs, nbytes, flops, *check in rows():
        if check:
            check[0]()
        te, tc = _time(ours), _time(theirs)
        bw = nbytes / te
        copy_bw = copy_bw or bw
        print(f"{name:<12} {shape:<12} {te * 1e3:>9.3f} {tc * 1e3:>9.3f} {tc / te:>6.2f} {bw / 1e9:>8.0f} "
              f"{bw / copy_bw:>8.2f} {flops / te / 1e12:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
