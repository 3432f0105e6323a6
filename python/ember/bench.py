"""``ember bench``: each kernel against NumPy on the same inputs, side by side in one
process. Medians after warm-up; ratio = NumPy time / ember time (>= 1 means ember is
at least as fast). Bandwidth counts the bytes each op must read and write once.

Each benchmark is a row spec: (op name, shape label, setup) where setup returns
(ember_fn, numpy_fn, bytes_moved, flops).
"""
import platform
import time

import numpy as np

import ember
from ember import functional as F


def _median_time(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _elementwise_rows(n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    pos = np.abs(a) + 0.5
    ta, tb, tpos = ember.from_numpy(a), ember.from_numpy(b), ember.from_numpy(pos)
    m = (n // 1024, 1024)
    a2, ta2 = a.reshape(m), ta.reshape(m)
    row_b, trow_b = b[:1024], tb[:1024]
    nb = 4 * n
    return [
        ("add", f"{n}", lambda: ta + tb, lambda: a + b, 3 * nb, n),
        ("mul", f"{n}", lambda: ta * tb, lambda: a * b, 3 * nb, n),
        ("add bcast row", f"{m[0]}x{m[1]}+1024", lambda: ta2 + trow_b, lambda: a2 + row_b, 2 * nb, n),
        ("mul scalar", f"{n}", lambda: ta * 3.0, lambda: a * np.float32(3.0), 2 * nb, n),
        ("maximum", f"{n}", lambda: F.maximum(ta, tb), lambda: np.maximum(a, b), 3 * nb, n),
        ("gt", f"{n}", lambda: ta > tb, lambda: a > b, 2 * nb + n, n),
        ("exp", f"{n}", lambda: F.exp(ta), lambda: np.exp(a), 2 * nb, n),
        ("log", f"{n}", lambda: F.log(tpos), lambda: np.log(pos), 2 * nb, n),
        ("sqrt", f"{n}", lambda: F.sqrt(tpos), lambda: np.sqrt(pos), 2 * nb, n),
        ("abs", f"{n}", lambda: F.abs(ta), lambda: np.abs(a), 2 * nb, n),
        ("where", f"{n}", lambda: F.where(ta > 0, ta, tb), lambda: np.where(a > 0, a, b), 5 * nb, n),
        ("sum", f"{n}", lambda: ta.sum(), lambda: a.sum(), nb, n),
        ("sum axis=0", f"{m[0]}x{m[1]}", lambda: ta2.sum(0), lambda: a2.sum(0), nb, n),
        ("sum axis=1", f"{m[0]}x{m[1]}", lambda: ta2.sum(1), lambda: a2.sum(1), nb, n),
        ("mean", f"{n}", lambda: ta.mean(), lambda: a.mean(), nb, n),
        ("max", f"{n}", lambda: ta.max(), lambda: a.max(), nb, n),
        ("max axis=1", f"{m[0]}x{m[1]}", lambda: ta2.amax(1), lambda: a2.max(1), nb, n),
        ("argmax", f"{n}", lambda: ta.argmax(), lambda: a.argmax(), nb, n),
    ]


def _gemm_rows(quick):
    """sgemm: square sizes and the GEMMs of a LeNet training step (batch 64), through the
    kernel with its transpose flags (bench/bench_gemm.py has the full table)."""
    rng = np.random.default_rng(0)
    shapes = [("matmul", f"{n}^3", n, n, n, False, False) for n in ([64, 256] if quick else [128, 256, 512, 1024])]
    if not quick:
        shapes += [
            ("matmul", "conv2 im2col", 64 * 14 * 14, 64, 288, False, False),
            ("linear", "fc1 x@W^T", 64, 128, 3136, False, True),
            ("linear", "fc1 dx g@W", 64, 3136, 128, False, False),
            ("linear", "fc1 dW g^T@x", 128, 3136, 64, True, False),
        ]
    rows = []
    for name, label, M, N, K, ta, tb in shapes:
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
        out, np_out = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        rows.append((name, label,
                     lambda a=a, b=b, out=out, ta=ta, tb=tb: ember._C.matmul(a, b, out, ta, tb, 1.0, 0.0),
                     lambda opa=opa, opb=opb, o=np_out: np.matmul(opa, opb, out=o),
                     4 * (M * K + K * N + M * N), 2 * M * N * K))
    return rows


def _conv_rows(quick):
    """conv2d forward (3x3, padding 1) against a NumPy im2col + matmul expression, and the
    pooling forwards against NumPy reshape expressions."""
    from numpy.lib.stride_tricks import sliding_window_view

    import ember.nn.functional as NF

    rng = np.random.default_rng(0)
    shapes = [(8, 1, 28, 28, 16), (8, 32, 14, 14, 32)] if quick else [(64, 1, 28, 28, 32), (64, 32, 14, 14, 64),
                                                                       (32, 64, 32, 32, 64)]
    rows = []
    for N, C, H, W, K in shapes:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
        tx, tw = ember.from_numpy(x), ember.from_numpy(w)

        def np_conv(x=x, w=w, N=N, C=C, H=H, W=W, K=K):
            xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            col = sliding_window_view(xp, (3, 3), axis=(2, 3))  # (N, C, H, W, 3, 3)
            col = col.transpose(0, 2, 3, 1, 4, 5).reshape(N * H * W, C * 9)
            return (col @ w.reshape(K, C * 9).T).reshape(N, H, W, K).transpose(0, 3, 1, 2)

        rows.append(("conv2d", f"{N}x{C}x{H}x{W}->{K} 3x3", lambda tx=tx, tw=tw: NF.conv2d(tx, tw, padding=1),
                     np_conv, 4 * (x.size + w.size + N * K * H * W), 2 * N * K * C * H * W * 9))
    N, C, H, W = (8, 16, 28, 28) if quick else (64, 32, 28, 28)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    tx = ember.from_numpy(x)
    nb = x.nbytes
    rows.append(("max_pool2d", f"{N}x{C}x{H}x{W} 2x2", lambda: NF.max_pool2d(tx, 2),
                 lambda: x.reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5)), nb * 5 // 4, x.size))
    rows.append(("avg_pool2d", f"{N}x{C}x{H}x{W} 2x2", lambda: NF.avg_pool2d(tx, 2),
                 lambda: x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5)), nb * 5 // 4, x.size))
    rows.append(("adaptive_avg", f"{N}x{C}x{H}x{W} ->1", lambda: NF.adaptive_avg_pool2d(tx, 1),
                 lambda: x.mean(axis=(2, 3)), nb, x.size))
    return rows


def _activation_rows(quick):
    """Activations, softmax and fused cross-entropy (forward + backward) vs NumPy."""
    import ember.nn.functional as NF

    n = 1 << 16 if quick else 1 << 20
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    tx = ember.from_numpy(x)
    nb = 4 * n
    rows = [
        ("relu", f"{n}", lambda: NF.relu(tx), lambda: np.maximum(x, 0), 2 * nb, n),
        ("sigmoid", f"{n}", lambda: NF.sigmoid(tx), lambda: 1 / (1 + np.exp(-x)), 2 * nb, 4 * n),
        ("tanh", f"{n}", lambda: NF.tanh(tx), lambda: np.tanh(x), 2 * nb, 4 * n),
        ("gelu tanh", f"{n}", lambda: NF.gelu(tx, approximate="tanh"),
         lambda: 0.5 * x * (1 + np.tanh(np.float32(0.7978846) * (x + np.float32(0.044715) * x * x * x))), 2 * nb, 8 * n),
    ]
    for shape in ([(64, 1000), (256, 10)] if quick else [(1024, 1000), (256, 10)]):
        s = (rng.standard_normal(shape) * 3).astype(np.float32)
        ts = ember.from_numpy(s)

        def np_softmax(s=s):
            e = np.exp(s - s.max(1, keepdims=True))
            return e / e.sum(1, keepdims=True)

        rows.append(("softmax", "x".join(map(str, shape)), lambda ts=ts: NF.softmax(ts, 1), np_softmax, 8 * s.size,
                     4 * s.size))
    shape = (64, 1000) if quick else (1024, 1000)
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    target = rng.integers(0, shape[1], shape[0])
    tt, rows_idx = ember.from_numpy(target), np.arange(shape[0])

    def ce_ours():
        lt = ember.from_numpy(logits)
        lt.requires_grad = True
        NF.cross_entropy(lt, tt).backward()

    def ce_numpy():
        m = logits.max(1, keepdims=True)
        e = np.exp(logits - m)
        ssum = e.sum(1, keepdims=True)
        loss = np.mean(np.log(ssum[:, 0]) + m[:, 0] - logits[rows_idx, target])
        grad = e / ssum
        grad[rows_idx, target] -= 1
        return loss, grad / shape[0]

    rows.append(("cross_entropy", "x".join(map(str, shape)) + " f+b", ce_ours, ce_numpy, 12 * logits.size,
                 8 * logits.size))
    return rows


def _norm_optim_rows(quick, with_torch=False):
    """Batch norm forward+backward, dropout, SGD and Adam steps. with_torch=True appends a
    PyTorch callable (or None) to each row, for bench/bench_norm_optim.py."""
    from .nn import functional as NF
    from .optim import _kernels as OK

    rng = np.random.default_rng(0)
    torch = None
    if with_torch:
        import torch
        import torch.nn.functional as TF
    rows = []
    bn_shapes = [(8, 16, 14, 14)] if quick else [(64, 32, 28, 28), (256, 64, 14, 14)]
    for shape in bn_shapes:
        C = shape[1]
        M = int(np.prod(shape)) // C
        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal(C).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        tx = ember.tensor(x, requires_grad=True)
        tw, tb = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
        trm, trv, tg = ember.zeros(C), ember.ones(C), ember.tensor(g)

        def ours(tx=tx, tw=tw, tb=tb, trm=trm, trv=trv, tg=tg):
            tx.grad = tw.grad = tb.grad = None
            NF.batch_norm(tx, trm, trv, tw, tb, training=True).backward(tg)

        def theirs(x=x, g=g, w=w, b=b, M=M):
            ax = (0, 2, 3)
            w4, b4 = w.reshape(1, -1, 1, 1), b.reshape(1, -1, 1, 1)
            mean = x.mean(axis=ax, keepdims=True)
            xc = x - mean
            invstd = 1 / np.sqrt((xc * xc).mean(axis=ax, keepdims=True) + np.float32(1e-5))
            xhat = xc * invstd
            y = xhat * w4 + b4
            db = g.sum(axis=ax, keepdims=True)
            dw = (g * xhat).sum(axis=ax, keepdims=True)
            dx = (w4 * invstd) * (g - db / M - xhat * dw / M)
            return y, dx

        row = ("batch_norm f+b", "x".join(map(str, shape)), ours, theirs, 5 * 4 * x.size, 0)
        if with_torch:
            px = torch.from_numpy(x.copy()).requires_grad_()
            pw, pb = torch.from_numpy(w.copy()).requires_grad_(), torch.from_numpy(b.copy()).requires_grad_()
            prm, prv, pg = torch.zeros(C), torch.ones(C), torch.from_numpy(g)

            def torch_fn(px=px, pw=pw, pb=pb, prm=prm, prv=prv, pg=pg):
                px.grad = pw.grad = pb.grad = None
                TF.batch_norm(px, prm, prv, pw, pb, training=True).backward(pg)

            row = row + (torch_fn,)
        rows.append(row)

    for n in ([1 << 16] if quick else [1 << 20, 1 << 24]):
        x = rng.standard_normal(n).astype(np.float32)
        tx = ember.tensor(x, requires_grad=True)
        nrng = np.random.default_rng(1)
        row = ("dropout", f"{n}", lambda tx=tx: NF.dropout(tx, 0.5),
               lambda x=x: (nrng.random(x.size, dtype=np.float32) >= np.float32(0.5)) * x * np.float32(2.0),
               9 * n, 0)
        if with_torch:
            px = torch.from_numpy(x.copy()).requires_grad_()
            row = row + ((lambda px=px: TF.dropout(px, 0.5)),)
        rows.append(row)

        p = rng.standard_normal(n).astype(np.float32)
        gr = rng.standard_normal(n).astype(np.float32)
        tp, tgr, tbuf = ember.tensor(p), ember.tensor(gr), ember.zeros(n)
        np_p, np_buf = p.copy(), np.zeros(n, np.float32)
        lr, mom, wd = 1e-3, 0.9, 1e-4

        def np_sgd(p=np_p, g=gr, buf=np_buf):
            d = g + np.float32(wd) * p
            buf *= np.float32(mom)
            buf += d
            p -= np.float32(lr) * buf

        row = ("sgd step", f"{n}", lambda tp=tp, tgr=tgr, tbuf=tbuf: OK.sgd_step(
            tp, tgr, tbuf, lr=lr, momentum=mom, dampening=0.0, nesterov=False, weight_decay=wd, first_step=False),
            np_sgd, 5 * 4 * n, 0)
        if with_torch:
            pp = torch.nn.Parameter(torch.from_numpy(p.copy()))
            pp.grad = torch.from_numpy(gr.copy())
            opt = torch.optim.SGD([pp], lr=lr, momentum=mom, weight_decay=wd, foreach=False)
            row = row + (opt.step,)
        rows.append(row)

        tm, tv = ember.zeros(n), ember.zeros(n)
        np_m, np_v, np_pa = np.zeros(n, np.float32), np.zeros(n, np.float32), p.copy()
        b1, b2, eps = 0.9, 0.999, 1e-8
        step = [0]

        def ours_adam(tp=tp, tgr=tgr, tm=tm, tv=tv):
            step[0] += 1
            OK.adam_step(tp, tgr, tm, tv, None, step=step[0], lr=lr, beta1=b1, beta2=b2, eps=eps,
                         weight_decay=wd, amsgrad=False, decoupled=True)

        np_step = [0]

        def np_adam(p=np_pa, g=gr, m=np_m, v=np_v):
            np_step[0] += 1
            t = np_step[0]
            p *= np.float32(1 - lr * wd)
            m *= np.float32(b1)
            m += np.float32(1 - b1) * g
            v *= np.float32(b2)
            v += np.float32(1 - b2) * g * g
            denom = np.sqrt(v) / np.float32(np.sqrt(1 - b2 ** t)) + np.float32(eps)
            p -= np.float32(lr / (1 - b1 ** t)) * m / denom

        row = ("adamw step", f"{n}", ours_adam, np_adam, 7 * 4 * n, 0)
        if with_torch:
            pa = torch.nn.Parameter(torch.from_numpy(p.copy()))
            pa.grad = torch.from_numpy(gr.copy())
            opt_a = torch.optim.AdamW([pa], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
            row = row + (opt_a.step,)
        rows.append(row)
    return rows


def run(ops=None, sizes=None, threads=None, repeat=None, quick=False):
    if threads:
        ember.set_num_threads(threads)
    sizes = sizes or ([1 << 16] if quick else [1 << 20, 1 << 24])
    rows = []
    for n in sizes:
        rows += _elementwise_rows(n)
    rows += _gemm_rows(quick)
    rows += _conv_rows(quick)
    rows += _activation_rows(quick)
    rows += _norm_optim_rows(quick)
    if ops:
        rows = [r for r in rows if r[0] in ops or r[0].split()[0] in ops]
    print(f"ember bench: {platform.processor() or platform.machine()}, {ember.get_num_threads()} threads, "
          f"cpu path {ember.cpu_isa()}, numpy {np.__version__}")
    head = f"{'op':<15} {'shape':<18} {'ember ms':>10} {'numpy ms':>10} {'ratio':>7} {'GB/s':>8} {'GFLOP/s':>9}"
    print(head)
    print("-" * len(head))
    for name, shape, ours, theirs, nbytes, flops in rows:
        rep = repeat or (5 if quick else max(5, min(50, int(2e8 / max(nbytes, 1)))))
        t_e = _median_time(ours, rep)
        t_n = _median_time(theirs, rep)
        print(f"{name:<15} {shape:<18} {t_e * 1e3:>10.3f} {t_n * 1e3:>10.3f} {t_n / t_e:>7.2f} "
              f"{nbytes / t_e / 1e9:>8.1f} {flops / t_e / 1e9:>9.2f}", flush=True)
