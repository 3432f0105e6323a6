"""Data-parallel training step: 2 ranks x 1 thread (DistributedDataParallel over MPI on
loopback) against 1 rank x 2 threads and 1 rank x 1 thread, at the same global batch, and
where a DDP step's time goes (computation vs the all-reduce wait after backward), plus
the bare all-reduce of a gradient-sized buffer.

    PYTHONPATH=python python3 bench/bench_distributed.py [--steps 30] [--repeat 3] [--out FILE.md]

Models: an MLP 784-512-256-10 on 28x28 inputs, and LeNet (28x28, ~421k parameters) when
the conv kernels are present. With nn.Linear's and the loss/optimizer kernels missing (an
op-family branch not merged yet) the MLP falls back to matmul-based Linear layers and an
MSE loss built from elementwise ops; the table says which ran.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------- one rank (worker)

def _build(model_name):
    import ember
    from ember import nn

    F = ember.nn.functional
    real_ops = all(hasattr(F, n) for n in ("linear", "relu", "cross_entropy"))
    try:
        from ember.optim import _kernels  # noqa: F401
        real_opt = True
    except ImportError:
        real_opt = False
    sys.path.insert(0, os.path.join(ROOT, "tests", "dist_scripts"))
    if model_name == "lenet":
        if not (real_ops and hasattr(F, "conv2d") and hasattr(F, "max_pool2d")):
            return None
        from ember import models
        model = models.LeNet((28, 28))
    elif real_ops:
        from ember import models
        model = models.MLP(784, hidden=(512, 256))
    else:
        from _models import Linear
        model = nn.Sequential(nn.Flatten(), Linear(784, 512), Linear(512, 256), Linear(256, 10))
    if real_ops:
        loss_fn = nn.CrossEntropyLoss()
    else:
        def loss_fn(out, y):
            return ((out - y) ** 2).mean()
    if real_opt:
        opt_cls = lambda params: ember.optim.SGD(params, lr=0.01, momentum=0.9)  # noqa: E731
    else:
        from _models import SGD
        opt_cls = lambda params: SGD(params, lr=0.01)  # noqa: E731
    kind = ("real ops" if real_ops else "matmul Linear + MSE") + (", SGD kernel" if real_opt else ", SGD from ops")
    return model, loss_fn, opt_cls, real_ops, kind


def worker(args):
    import numpy as np

    import ember
    ember.set_num_threads(args.threads)
    dist = None
    rank, world = 0, 1
    if args.ddp:
        import ember.distributed as dist
        dist.init_process_group("mpi", timeout=120)
        rank, world = dist.get_rank(), dist.get_world_size()
    built = _build(args.model)
    if built is None:
        if rank == 0:
            print(json.dumps({"skip": f"{args.model}: conv kernels not present"}))
        return 0
    model, loss_fn, opt_cls, real_ops, kind = built
    ember.manual_seed(0)
    net = dist.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb) if dist else model
    opt = opt_cls(net.parameters())
    local = args.batch // world
    rng = np.random.default_rng(rank)
    x = ember.from_numpy(rng.standard_normal((local, 1, 28, 28)).astype(np.float32))
    if real_ops:
        y = ember.from_numpy(rng.integers(0, 10, local).astype(np.int64))
    else:
        y = ember.from_numpy(rng.standard_normal((local, 10)).astype(np.float32))
    n_params = sum(p.numel() for p in model.parameters())

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    steps, waits = [], []
    for _ in range(args.steps):
        if dist:
            dist.barrier()  # start each step together: the step time is the slowest rank's
        t0 = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t0)
        waits.append(net.last_wait_s if dist else 0.0)
    result = {"kind": kind, "params": n_params, "step_s": statistics.median(steps),
              "wait_s": statistics.median(waits)}
    if dist:
        # the bare all-reduce of every gradient in one buffer, as DDP would with one bucket
        buf = ember.zeros(n_params)
        times = []
        for i in range(args.steps + 5):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            if i >= 5:
                times.append(time.perf_counter() - t0)
        result["allreduce_s"] = statistics.median(times)
        result["buckets"] = len(net.bucket_sizes())
        # per step, over ranks: the slowest rank's step time; the wait of the rank that
        # waited least (the part of the wait not explained by the other rank arriving
        # late) and most (includes that skew)
        mine = ember.tensor([steps, waits], dtype=ember.float64)
        every = [ember.zeros(2, len(steps), dtype=ember.float64) for _ in range(world)]
        dist.all_gather(every, mine)
        allr = np.stack([t.numpy() for t in every])  # (rank, [step, wait], step index)
        result["step_s"] = float(np.median(allr[:, 0].max(axis=0)))
        result["wait_s"] = float(np.median(allr[:, 1].max(axis=0)))
        result["wait_min_s"] = float(np.median(allr[:, 1].min(axis=0)))
        ar = ember.tensor([result["allreduce_s"]], dtype=ember.float64)
        dist.all_reduce(ar, op=dist.ReduceOp.MAX)
        result["allreduce_s"] = ar.item()
        dist.destroy_process_group()
    if rank == 0:
        print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------- orchestration

def _run(cmd, env):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--ddp", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bucket-cap-mb", type=float, default=4.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        print('needs mpiexec: pip install "ember[distributed]"', file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(args.steps), "--warmup",
          str(args.warmup)]
    configs = [("1 rank x 1 thread", [], 1), ("1 rank x 2 threads", [], 2),
               ("2 ranks x 1 thread (DDP)", [mpiexec, "-n", "2"], 1)]
    rows = []
    for model, batch in (("mlp", args.batch), ("lenet", 64)):
        results = {}
        for rep in range(args.repeat):
            for name, prefix, threads in configs:
                cmd = prefix + me + ["--model", model, "--batch", str(batch), "--threads", str(threads),
                                     "--bucket-cap-mb", str(args.bucket_cap_mb)] + (["--ddp"] if prefix else [])
                r = _run(cmd, env)
                if "skip" in r:
                    break
                results.setdefault(name, []).append(r)
        if not results:
            print(f"{model}: skipped (conv kernels not present)")
            continue
        for name, rs in results.items():
            step = [r["step_s"] for r in rs]
            r0 = rs[0]
            row = {"model": model, "batch": batch, "config": name, "kind": r0["kind"], "params": r0["params"],
                   "step_ms": statistics.median(step) * 1e3, "spread": (max(step) - min(step)) / statistics.median(step),
                   "wait_ms": statistics.median(r["wait_s"] for r in rs) * 1e3}
            if "allreduce_s" in r0:
                row["allreduce_ms"] = statistics.median(r["allreduce_s"] for r in rs) * 1e3
                row["wait_min_ms"] = statistics.median(r["wait_min_s"] for r in rs) * 1e3
                row["buckets"] = r0["buckets"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    text = _table(rows, args)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


def _table(rows, args):
    lines = [f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {platform.node()}, "
             f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), shared with other jobs. "
             f"Command: `PYTHONPATH=python python3 bench/bench_distributed.py --steps {args.steps} "
             f"--repeat {args.repeat}`. Medians over {args.steps} steps after {args.warmup} warm-up steps, "
             f"median of {args.repeat} runs; spread = (max - min) / median over the runs.", "",
             "| model | global batch | config | step ms | img/s | speed-up vs 1x1 | wait after backward ms: max, min over ranks "
             "| bare all-reduce of all grads ms | bus GB/s | spread |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in rows:
        if r["config"].startswith("1 rank x 1"):
            base[r["model"]] = r["step_ms"]
    for r in rows:
        ar = r.get("allreduce_ms")
        grad_bytes = r["params"] * 4
        bus = f"{2 * (2 - 1) / 2 * grad_bytes / (ar * 1e-3) / 1e9:.2f}" if ar else ""
        waits = f"{r['wait_ms']:.2f}, {r['wait_min_ms']:.2f}" if ar else ""
        lines.append(f"| {r['model']} ({r['params']} params, {r['kind']}) | {r['batch']} | {r['config']} | "
                     f"{r['step_ms']:.2f} | {r['batch'] / r['step_ms'] * 1e3:.0f} | "
                     f"{base[r['model']] / r['step_ms']:.2f} | "
                     f"{waits} | "
                     f"{f'{ar:.2f}' if ar else ''} | {bus} | {r['spread']:.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
