"""GPU kernels vs CuPy (cuBLAS for matmul) on the same device arrays, side by side, and
conv2d vs PyTorch's cuDNN (TF32 off) when torch with CUDA is installed.

    PYTHONPATH=... python3 bench/bench_gpu.py

Times with CUDA events, median of repeats after warm-up; ratio = peer time / ember time.
Bandwidth rows count the bytes an op must move once; "of copy" is that bandwidth as a
fraction of the measured copy row's. Rows with a check compare ember's answer with a
reference (NumPy float64 on a sample, or CuPy) before they are timed; every conv2d row is
checked against cuDNN's answer.
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


# conv2d rows: (N, C, H, W, K), all 3x3, stride 1, padding 1.
CONV_SHAPES = [(128, 64, 56, 56, 64), (128, 256, 14, 14, 256), (256, 1, 28, 28, 32), (256, 32, 14, 14, 64)]


def _import_torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def _check(name, ours, theirs):
    """Max error relative to the peer's largest value; raise if it is not float32-close."""
    a, b = cp.asarray(ours), cp.asarray(theirs)
    err = float(cp.max(cp.abs(a - b))) / max(1.0, float(cp.max(cp.abs(b))))
    if not err < 1e-3:
        raise AssertionError(f"{name}: ember differs from cuDNN by {err:.2e} (relative to the largest value)")
    return err


def conv_rows(torch):
    """(name, shape, ember fn, cuDNN fn, flops): forward, backward data, backward weight."""
    geo = [1, 1, 1, 1, 1, 1, 1, 1, 1]  # stride 1, padding 1 on every side, dilation 1, groups 1
    for N, C, H, W, K in CONV_SHAPES:
        x = cp.random.standard_normal((N, C, H, W), dtype=cp.float32)
        w = cp.random.standard_normal((K, C, 3, 3), dtype=cp.float32) / np.float32(np.sqrt(9 * C))
        dy = cp.random.standard_normal((N, K, H, W), dtype=cp.float32)
        gx, gw = cp.empty_like(x), cp.empty_like(w)
        tx, tw, tdy = torch.from_dlpack(x), torch.from_dlpack(w), torch.from_dlpack(dy)
        tx_ember, tw_ember = ember.from_dlpack(x), ember.from_dlpack(w)
        k = ember._cuda
        flops = 2 * N * K * H * W * C * 9
        shape = f"{N}x{C}x{H}x{W}->{K}"

        def ours_fwd(tx_ember=tx_ember, tw_ember=tw_ember):
            return F.conv2d(tx_ember, tw_ember, padding=1)

        def theirs_fwd(tx=tx, tw=tw):
            return torch.nn.functional.conv2d(tx, tw, padding=1)

        def ours_data(dy=dy, w=w, gx=gx):
            k.conv2d_backward_data(dy, w, gx, geo)
            return gx

        def ours_weight(x=x, dy=dy, gw=gw):
            k.conv2d_backward_weight(x, dy, gw, geo)
            return gw

        def theirs_backward(mask, tx=tx, tw=tw, tdy=tdy):
            return torch.ops.aten.convolution_backward(tdy, tx, tw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                                       mask)

        _check(f"conv2d fwd {shape}", ours_fwd()._data, theirs_fwd())
        _check(f"conv2d bwd data {shape}", ours_data(), theirs_backward([True, False, False])[0])
        _check(f"conv2d bwd weight {shape}", ours_weight(), theirs_backward([False, True, False])[1])
        yield "conv2d fwd", shape, ours_fwd, theirs_fwd, flops
        yield "conv2d dgrad", shape, ours_data, lambda f=theirs_backward: f([True, False, False]), flops
        yield "conv2d wgrad", shape, ours_weight, lambda f=theirs_backward: f([False, True, False]), flops


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
    torch = _import_torch_cuda()
    if torch is None:
        print("conv2d: skipped (needs PyTorch with CUDA for the cuDNN peer)")
        return
    print(f"\nconv2d 3x3 pad 1, float32; peer: PyTorch {torch.__version__} cuDNN {torch.backends.cudnn.version()} "
          "(TF32 off); ratio = cuDNN time / ember time")
    print(f"{'op':<13} {'shape':<22} {'ember ms':>9} {'cudnn ms':>9} {'ratio':>6} {'TFLOP/s':>8}")
    for name, shape, ours, theirs, flops in conv_rows(torch):
        te, tc = _time(ours, repeat=10), _time(theirs, repeat=10)
        print(f"{name:<13} {shape:<22} {te * 1e3:>9.3f} {tc * 1e3:>9.3f} {tc / te:>6.2f} {flops / te / 1e12:>8.2f}",
              flush=True)


if __name__ == "__main__":
    main()
