"""GPU kernels vs CuPy (cuBLAS for matmul) on the same device arrays, side by side, and
conv2d vs PyTorch's cuDNN (TF32 off) when torch with CUDA is installed.

    PYTHONPATH=... python3 bench/bench_gpu.py

Times with CUDA events, median of repeats after warm-up; ratio = peer time / ember time.
Bandwidth rows count the bytes an op must move once; compare with the copy row.
Every conv2d row is checked against cuDNN's answer before it is timed.
"""
import cupy as cp
import numpy as np

import ember
import ember.nn.functional as F


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
    print(f"{'op':<12} {'shape':<12} {'ember ms':>9} {'cupy ms':>9} {'ratio':>6} {'GB/s':>8} {'TFLOP/s':>8}")
    for name, shape, ours, theirs, nbytes, flops in rows():
        te, tc = _time(ours), _time(theirs)
        print(f"{name:<12} {shape:<12} {te * 1e3:>9.3f} {tc * 1e3:>9.3f} {tc / te:>6.2f} {nbytes / te / 1e9:>8.0f} "
              f"{flops / te / 1e12:>8.2f}", flush=True)
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
