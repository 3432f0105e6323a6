"""conv2d and pooling: ember vs PyTorch CPU (2 threads) and a NumPy expression, side by
side in one process on the same inputs. Medians after warm-up, several rounds.

    PYTHONPATH=python python3 bench/bench_conv.py [--rounds 3] [--quick]

conv GFLOP/s counts 2*N*K*C*H*W*R*S per pass (forward = 1 pass, forward+backward = 3:
forward, data gradient, weight gradient); fraction of the ~220 GFLOP/s FP32 peak of
2 AVX-512 cores. ratio = torch time / ember time (>= 1: ember is faster).
"""
import argparse
import platform
import time

import numpy as np

import ember
import ember.nn.functional as F

PEAK = 220e9
CONV_SHAPES = [  # (N, C, H, W, K), 3x3, padding 1, stride 1
    (64, 1, 28, 28, 32),
    (64, 32, 14, 14, 64),
    (32, 64, 32, 32, 64),
]

DEPTHWISE_SHAPES = [  # (N, C, H, W, stride), 3x3, padding 1, groups = C
    (64, 32, 56, 56, 1),
    (64, 128, 28, 28, 2),
]


def median_time(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def conv_cases(shapes):
    import torch
    rng = np.random.default_rng(0)
    cases = []
    for N, C, H, W, K in shapes:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32)
        dy = rng.standard_normal((N, K, H, W)).astype(np.float32)
        ex, ew, eb = (ember.tensor(a, requires_grad=True) for a in (x, w, b))
        edy = ember.tensor(dy)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        tdy = torch.tensor(dy)
        flops = 2 * N * K * C * H * W * 9

        def e_fwd(ex=ex, ew=ew, eb=eb):
            with ember.no_grad():
                F.conv2d(ex, ew, eb, padding=1)

        def t_fwd(tx=tx, tw=tw, tb=tb):
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, padding=1)

        def e_fb(ex=ex, ew=ew, eb=eb, edy=edy):
            ex.grad = ew.grad = eb.grad = None
            F.conv2d(ex, ew, eb, padding=1).backward(edy)

        def t_fb(tx=tx, tw=tw, tb=tb, tdy=tdy):
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(tdy)

        # the two backward kernels alone, on preallocated outputs (no autograd around them)
        dx, dw, geo = np.empty_like(x), np.empty_like(w), [1, 1, 1, 1, 1, 1, 1, 1, 1]

        def e_bd(dy=dy, w=w, dx=dx):
            ember._C.conv2d_backward_data(dy, w, dx, geo)

        def e_bw(x=x, dy=dy, dw=dw):
            ember._C.conv2d_backward_weight(x, dy, dw, geo)

        def t_pass(mask, tx=tx, tw=tw, tdy=tdy):
            with torch.no_grad():
                torch.ops.aten.convolution_backward(tdy, tx, tw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

        label = f"({N},{C},{H},{W},{K})"
        cases.append(("conv2d fwd", label, e_fwd, t_fwd, None, flops))
        cases.append(("conv2d bwd data", label, e_bd, lambda t=t_pass: t([True, False, False]), None, flops))
        cases.append(("conv2d bwd weight", label, e_bw, lambda t=t_pass: t([False, True, False]), None, flops))
        cases.append(("conv2d fwd+bwd", label, e_fb, t_fb, None, 3 * flops))
    return cases


def depthwise_cases(shapes):
    import torch
    rng = np.random.default_rng(2)
    cases = []
    for N, C, H, W, st in shapes:
        P, Q = (H - 1) // st + 1, (W - 1) // st + 1
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((C, 1, 3, 3)) / 3).astype(np.float32)
        dy = rng.standard_normal((N, C, P, Q)).astype(np.float32)
        ex, ew = (ember.tensor(a, requires_grad=True) for a in (x, w))
        tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
        edy, tdy = ember.tensor(dy), torch.tensor(dy)
        flops = 2 * N * C * P * Q * 9

        def e_fwd(ex=ex, ew=ew, st=st, C=C):
            with ember.no_grad():
                F.conv2d(ex, ew, None, stride=st, padding=1, groups=C)

        def t_fwd(tx=tx, tw=tw, st=st, C=C):
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, None, stride=st, padding=1, groups=C)

        def e_fb(ex=ex, ew=ew, edy=edy, st=st, C=C):
            ex.grad = ew.grad = None
            F.conv2d(ex, ew, None, stride=st, padding=1, groups=C).backward(edy)

        def t_fb(tx=tx, tw=tw, tdy=tdy, st=st, C=C):
            tx.grad = tw.grad = None
            torch.nn.functional.conv2d(tx, tw, None, stride=st, padding=1, groups=C).backward(tdy)

        label = f"({N},{C},{H},{W}) s{st}"
        cases.append(("conv2d depthwise fwd", label, e_fwd, t_fwd, None, flops))
        cases.append(("conv2d depthwise fwd+bwd", label, e_fb, t_fb, None, 3 * flops))
    return cases


def pool_cases(quick):
    import torch
    rng = np.random.default_rng(1)
    N, C, H, W = (16, 32, 28, 28) if quick else (64, 32, 28, 28)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    ex = ember.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    label = f"({N},{C},{H},{W})"
    nbytes = x.nbytes

    def fb(fn, t, shape_out, lib):
        g = (ember.tensor(np.ones(shape_out, np.float32)) if lib == "ember" else torch.ones(shape_out))

        def run():
            t.grad = None
            fn(t).backward(g)
        return run

    cases = []
    with ember.no_grad():
        pass
    specs = [
        ("max_pool2d 2x2", lambda a: F.max_pool2d(a, 2), lambda a: torch.nn.functional.max_pool2d(a, 2),
         lambda: x.reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5)), (N, C, H // 2, W // 2)),
        ("max_pool2d 3x3s2p1", lambda a: F.max_pool2d(a, 3, 2, 1),
         lambda a: torch.nn.functional.max_pool2d(a, 3, 2, 1), None, (N, C, 14, 14)),
        ("avg_pool2d 2x2", lambda a: F.avg_pool2d(a, 2), lambda a: torch.nn.functional.avg_pool2d(a, 2),
         lambda: x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5)), (N, C, H // 2, W // 2)),
        ("adaptive_avg 1", lambda a: F.adaptive_avg_pool2d(a, 1),
         lambda a: torch.nn.functional.adaptive_avg_pool2d(a, 1), lambda: x.mean(axis=(2, 3)), (N, C, 1, 1)),
    ]
    for name, ef, tf, nf, oshape in specs:
        def e_fwd(ef=ef):
            with ember.no_grad():
                ef(ex)

        def t_fwd(tf=tf):
            with torch.no_grad():
                tf(tx)
        cases.append((name + " fwd", label, e_fwd, t_fwd, nf, nbytes))
        cases.append((name + " fwd+bwd", label, fb(ef, ex, oshape, "ember"), fb(tf, tx, oshape, "torch"), None,
                      nbytes))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="repeat the whole table; report the median per row")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=0, help="timed calls per measurement (default 10, quick 5)")
    ap.add_argument("--only", choices=["conv", "depthwise", "pool"], help="run one part of the table")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    shapes = CONV_SHAPES[:1] if args.quick else CONV_SHAPES
    dw_shapes = DEPTHWISE_SHAPES[:1] if args.quick else DEPTHWISE_SHAPES
    cases = ((conv_cases(shapes) if args.only in (None, "conv") else [])
             + (depthwise_cases(dw_shapes) if args.only in (None, "depthwise") else [])
             + (pool_cases(args.quick) if args.only in (None, "pool") else []))
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"ember {ember.get_num_threads()} threads ({ember.cpu_isa()}), torch {torch.__version__} "
          f"{torch.get_num_threads()} threads, numpy {np.__version__}, {args.rounds} rounds")
    results = {i: [] for i in range(len(cases))}
    for _ in range(args.rounds):
        for i, (name, label, ef, tf, nf, work) in enumerate(cases):
            rep = args.repeat or (5 if args.quick else 10)
            te, tt = median_time(ef, rep), median_time(tf, rep)
            tn = median_time(nf, rep) if nf else float("nan")
            results[i].append((te, tt, tn))
    print("| op | shape | ember ms | torch ms | numpy ms | GFLOP/s or GB/s | % peak | torch/ember | spread |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for i, (name, label, ef, tf, nf, work) in enumerate(cases):
        r = np.array(results[i])
        te, tt, tn = np.median(r, axis=0)
        ratios = r[:, 1] / r[:, 0]
        spread = f"{ratios.min():.2f}-{ratios.max():.2f}"
        if name.startswith("conv"):
            rate, frac = f"{work / te / 1e9:.1f}", f"{100 * work / te / PEAK:.0f}%"
        else:
            rate, frac = f"{work / te / 1e9:.1f} GB/s", "-"
        nms = f"{tn * 1e3:.3f}" if np.isfinite(tn) else "-"
        print(f"| {name} | {label} | {te * 1e3:.3f} | {tt * 1e3:.3f} | {nms} | {rate} | {frac} | "
              f"{tt / te:.2f} | {spread} |", flush=True)


if __name__ == "__main__":
    main()
