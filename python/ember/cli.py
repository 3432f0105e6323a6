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
    _add_distributed_arguments(t)

    args = parser.parse_args(argv)
    if args.command == "bench":
        from . import bench
        bench.run(ops=args.ops, sizes=args.sizes, threads=args.threads, repeat=args.repeat, quick=args.quick)
    elif args.command == "train":
        rc = _distributed_train(args, sys.argv[1:] if argv is None else argv)
        if rc is not None:
            return rc
        from .train import run_train
        return run_train(args)
    return 0


# ---- distributed `ember train` (ember.distributed): --nproc spawns mpiexec; under a
# launcher with several ranks the run goes to ember.distributed.launch.train.

def _add_distributed_arguments(t):
    t.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="data-parallel training on N processes: runs mpiexec -n N (needs ember[distributed]); "
                   "--batch-size is per process. Across machines use mpiexec -f HOSTS -n N ember train ...")


def _distributed_train(args, argv):
    """Exit code of a distributed run, or None when this is a plain single-process one."""
    from .distributed import launch

    if args.nproc is not None and args.nproc <= 0:
        print("ember train: --nproc must be positive", file=sys.stderr)
        return 2
    if launch.launched_world_size() > 1:
        return launch.train(args)
    if args.nproc is not None and args.nproc > 1:
        return launch.spawn(args.nproc, launch.strip_nproc(argv))
    return None


if __name__ == "__main__":
    sys.exit(main())
