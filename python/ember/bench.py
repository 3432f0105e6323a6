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


def _matmul_rows(sizes):
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        ta, tb = ember.from_numpy(a), ember.from_numpy(b)
        rows.append(("matmul", f"{n}x{n}x{n}", lambda ta=ta, tb=tb: ta @ tb, lambda a=a, b=b: a @ b, 12 * n * n,
                     2 * n ** 3))
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
    rows += _matmul_rows([64] if quick else [128, 256, 512])
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
