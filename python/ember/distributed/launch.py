"""`ember train --nproc N` and `mpiexec -n N ember train ...`: data-parallel `ember train`.

--nproc N starts `mpiexec -n N <python> -m ember train <same arguments>` and returns its
exit code. Under an MPI launcher (several ranks), train() runs the usual ember train
recipe (train.py's datasets, models, fit) with the model wrapped in
DistributedDataParallel, each rank reading its DistributedSampler share of every epoch
(--batch-size stays the per-rank batch: the global batch is N times it), progress printed
and checkpoints written by rank 0 only.
"""
import os
import shutil
import subprocess
import sys

# Variables the common launchers set in every rank (MPICH/Hydra, Intel MPI, Open MPI, PMIx, Slurm)
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def launched_world_size():
    """World size an MPI launcher announced in the environment, or 1 without one."""
    for var in _SIZE_VARS:
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return 1


def spawn(nproc, argv, mpiexec=None):
    """Run `mpiexec -n nproc <python> -m ember <argv>`; returns its exit code. Each rank
    gets cores // nproc kernel threads unless argv sets --threads."""
    exe = mpiexec or os.environ.get("EMBER_MPIEXEC") or shutil.which("mpiexec")
    if exe is None:
        print('ember train --nproc: mpiexec was not found; pip install "ember[distributed]" (it brings mpich) '
              "or put your MPI's mpiexec on PATH", file=sys.stderr)
        return 2
    argv = list(argv)
    if not any(a == "--threads" or a.startswith("--threads=") for a in argv):
        argv += ["--threads", str(max(1, (os.cpu_count() or 1) // nproc))]
    cmd = [exe, "-n", str(nproc), sys.executable, "-m", "ember"] + argv
    return subprocess.call(cmd)


def strip_nproc(argv):
    """argv without its --nproc N / --nproc=N."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


class _SetEpoch:
    """fit() callback: the sampler's epoch follows training's, so every epoch reshuffles
    (identically on every rank)."""

    def __init__(self, sampler):
        self.sampler = sampler

    def on_train_begin(self, state):
        pass

    def on_epoch_end(self, state):
        self.sampler.set_epoch(state.epoch + 1)

    def on_train_end(self, state):
        pass


def train(args):
    """The body of `ember train` on one rank of an MPI job; returns the exit code."""
    import time

    from .. import _C, nn, optim, train as T
    from ..data import DataLoader
    from ..tensor import manual_seed
    from . import process_group as pg
    from .ddp import DistributedDataParallel
    from .sampler import DistributedSampler

    problem = T.check_train_args(args)
    if problem:
        print(f"ember train: {problem}", file=sys.stderr)
        return 2
    pg.init_process_group("nccl" if str(args.device).startswith("cuda") else "mpi")
    rank, world = pg.get_rank(), pg.get_world_size()
    lead = rank == 0
    say = print if lead and not args.quiet else (lambda *a, **k: None)
    if args.threads is not None:
        _C.set_num_threads(args.threads)
    else:  # the ranks on this machine share its cores
        from mpi4py import MPI
        local = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        _C.set_num_threads(max(1, (os.cpu_count() or 1) // local.Get_size()))
        local.Free()
    manual_seed(args.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    train_ds, test_ds, shape = T._datasets(args.dataset, args.root)
    model = T._model(args.model, shape)
    if args.device is not None:
        model.to(args.device)
    ddp = DistributedDataParallel(model)
    if args.optimizer == "sgd":
        opt = optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    else:
        cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
        opt = cls(ddp.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    sampler = DistributedSampler(train_ds, seed=args.seed)
    train_loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler)
    test_loader = DataLoader(test_ds, batch_size=256)
    start, history = 0, None
    if args.resume and os.path.exists(args.checkpoint):
        ck = T.load_checkpoint(args.checkpoint, model, opt, sched)
        start, history = int(ck["epoch"]) + 1, ck.get("history")
        say(f"resumed from {args.checkpoint} after epoch {start}")
    sampler.set_epoch(start)
    callbacks = [_SetEpoch(sampler)]
    if args.checkpoint and lead:  # one writer; ember.save's rename makes the file appear whole
        callbacks.append(T.ModelCheckpoint(args.checkpoint, monitor="train_loss", save_best_only=False))
    n_params = sum(p.numel() for p in model.parameters())
    say(f"{args.model} ({n_params} parameters) on {args.dataset}: {len(train_ds)} train / {len(test_ds)} test "
        f"images, {args.optimizer} lr {args.lr}, {world} ranks x batch {args.batch_size} = global batch "
        f"{world * args.batch_size}, {args.epochs} epochs, device {args.device}")
    t0 = time.perf_counter()
    history = T.fit(ddp, nn.CrossEntropyLoss(), opt, train_loader, test_loader if args.val else None,
                    epochs=args.epochs, scheduler=sched, callbacks=callbacks, device=args.device,
                    progress=lead and not args.quiet, start_epoch=start, history=history,
                    log=print if lead else None)
    result = T.evaluate(model, test_loader, device=args.device)
    say(f"trained in {time.perf_counter() - t0:.1f}s on {world} ranks (loss/acc/img/s per epoch are rank 0's "
        "share)")
    if args.plot and lead:
        T._plot(history, args.plot)
        print(f"wrote {args.plot}")
    if lead:
        print(f"test accuracy: {result['accuracy']:.3f}")
    pg.barrier()
    pg.destroy_process_group()
    return 0
