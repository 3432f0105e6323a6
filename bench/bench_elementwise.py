"""Elementwise and reduction kernels vs NumPy on 1M and 16M float32 elements.

    PYTHONPATH=python python3 bench/bench_elementwise.py [--threads 2]

Same rows as `ember bench --ops ...`; see python/ember/bench.py for what each row times.
"""
import argparse

from ember import bench

OPS = ["add", "mul", "add bcast row", "mul scalar", "maximum", "gt", "exp", "log", "sqrt", "abs", "where",
       "sum", "sum axis=0", "sum axis=1", "mean", "max", "max axis=1", "argmax"]

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="*", default=[1 << 20, 1 << 24])
    a = p.parse_args()
    bench.run(ops=OPS, sizes=a.sizes, threads=a.threads)
