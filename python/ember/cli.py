"""The ``ember`` command: ``ember bench`` (kernel benchmarks against NumPy) and ``ember train``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ember", description="ember: hand-written kernels, PyTorch-shaped API")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="time each kernel against NumPy on the same inputs")
    b.add_argument("--ops", nargs="*", default=None, help="only these ops (default: all)")
    b.add_argument("--sizes", nargs="*", type=int, default=None, help="element counts for elementwise/reduction rows")
    b.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    b.add_argument("--repeat", type=int, default=None, help="timed repetitions per row (median reported)")
    b.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")

    t = sub.add_parser("train", help="train a model (default: LeNet on the bundled digits, CPU)")
    from .train import add_train_arguments
    add_train_arguments(t)

    args = parser.parse_args(argv)
    if args.command == "bench":
        from . import bench
        bench.run(ops=args.ops, sizes=args.sizes, threads=args.threads, repeat=args.repeat, quick=args.quick)
    elif args.command == "train":
        from .train import run_train
        return run_train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
