"""ember.distributed: collectives, DistributedDataParallel, DistributedSampler, failure
behaviour. Multi-process checks launch `mpiexec -n N` on loopback with the scripts in
tests/dist_scripts (each exits non-zero on any mismatch); they are skipped, with the
reason, when mpi4py or mpiexec is missing."""
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import ember
import ember.distributed as dist
from ember.data import DataLoader, TensorDataset
from ember.distributed import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "dist_scripts")
# Where this test process found ember (the installed package, or python/ in a dev build):
# the ranks must import the same one.
PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(ember.__file__)))


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, 'mpi4py is not installed (pip install "ember[distributed]")'
    exe = shutil.which("mpiexec")
    if exe is None:
        return None, "mpiexec is not on PATH (pip install mpich, or a system MPI)"
    return exe, None


MPIEXEC, WHY_NOT = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason=WHY_NOT or "")


def launch(n, script, *args, timeout=40):
    """Run tests/dist_scripts/<script> on n ranks; returns (returncode, output, seconds)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # n ranks share the CI's 2 cores
    cmd = [MPIEXEC, "-n", str(n), sys.executable, os.path.join(SCRIPTS, script), *map(str, args)]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} hung for more than {timeout} s; output so far:\n{e.output}")
    return p.returncode, p.stdout, time.monotonic() - t0


# ---------------------------------------------------------------- collectives

@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_collectives_exact(n):
    rc, out, _ = launch(n, "collectives.py")
    assert rc == 0, out
    assert out.count("collectives ok") == n, out


@needs_mpi
@pytest.mark.gpu
def test_nccl_collectives_exact():
    """The same checks on CUDA tensors with the NCCL backend, one rank per visible GPU."""
    if not ember.cuda.is_available():
        pytest.skip(f"CUDA unavailable: {ember.cuda.why_unavailable()}")
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401
    except ImportError as e:
        pytest.skip(f"CuPy with NCCL is not importable: {e}")
    n = cupy.cuda.runtime.getDeviceCount()
    rc, out, _ = launch(n, "collectives.py", "nccl", "cuda", timeout=120)
    assert rc == 0, out
    assert out.count("collectives ok") == n, out


# ---------------------------------------------------------------- DDP

@needs_mpi
@pytest.mark.parametrize("n,bucket_cap_mb", [(1, 4), (2, 1e-6), (2, 4), (3, 1e-6)])
def test_ddp_matches_single_process(n, bucket_cap_mb, tmp_path):
    """Training on n ranks at global batch 12 ends where one process at batch 12 does;
    no_sync accumulates; the rank-0 checkpoint loads on every rank."""
    rc, out, _ = launch(n, "ddp_train.py", bucket_cap_mb, tmp_path / "ck.safetensors")
    assert rc == 0, out
    assert out.count("ddp ok") == n, out
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temporary files left


# ---------------------------------------------------------------- failing fast

@needs_mpi
@pytest.mark.parametrize("mode,expect", [
    ("raise", "uncaught RuntimeError: simulated failure in the last rank; aborting all ranks"),
    ("exit", None),
    ("skip", "did not complete within 3 s"),
])
def test_a_failing_rank_stops_the_job(mode, expect):
    rc, out, seconds = launch(3, "failing_rank.py", mode, timeout=30)
    assert rc != 0, out
    assert "finished a collective it should not have" not in out, out
    if expect is not None:
        assert expect in out, out
    assert seconds < 30


# ---------------------------------------------------------------- without MPI

def test_missing_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert not dist.is_available()
    with pytest.raises(ImportError, match=r'pip install "ember\[distributed\]"'):
        dist.init_process_group()
    assert not dist.is_initialized()


def test_uninitialized_group_raises():
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier, dist.destroy_process_group):
        with pytest.raises(RuntimeError, match="init_process_group"):
            fn()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(ember.zeros(2))
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.DistributedDataParallel(ember.nn.Module())


def test_bad_init_arguments():
    with pytest.raises(ValueError, match='backend must be "mpi" or "nccl"'):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        dist.init_process_group("mpi", timeout=0)


# ---------------------------------------------------------------- autograd hooks used by DDP

def test_post_accumulate_grad_hook_and_queue_callback():
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    seen, done = [], []

    def hook(t):
        seen.append(t.grad.numpy().copy())
        if len(seen) == 1:
            ember.autograd.queue_callback(lambda: done.append(len(seen)))

    h = w.register_post_accumulate_grad_hook(hook)
    ((w * 3.0) + (w * w)).sum().backward()  # w enters the graph three times
    assert len(seen) == 3  # one call per accumulation into .grad
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(seen[-1], [5.0, 7.0])  # the final, summed gradient 3 + 2w
    assert done == [3]  # the callback ran once, after every accumulation
    h.remove()
    w.grad = None
    (w * 2.0).sum().backward()
    assert len(seen) == 3
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(hook)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ember.zeros(2).register_post_accumulate_grad_hook(hook)
    with pytest.raises(TypeError, match="callable"):
        w.register_post_accumulate_grad_hook(3)
    with pytest.raises(RuntimeError, match="during a backward"):
        ember.autograd.queue_callback(lambda: None)


# ---------------------------------------------------------------- DistributedSampler

def _torch_reference(n, replicas, rank, drop_last, order):
    """torch.utils.data.DistributedSampler.__iter__ written out, on a given permutation."""
    if drop_last and n % replicas != 0:
        num_samples = math.ceil((n - replicas) / replicas)
    else:
        num_samples = math.ceil(n / replicas)
    total = num_samples * replicas
    indices = list(order)
    if not drop_last:
        pad = total - len(indices)
        if pad <= len(indices):
            indices += indices[:pad]
        else:
            indices += (indices * math.ceil(pad / len(indices)))[:pad]
    else:
        indices = indices[:total]
    assert len(indices) == total
    return indices[rank:total:replicas]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_like_torch(n, replicas, drop_last, shuffle):
    data = list(range(n))
    samplers = [DistributedSampler(data, replicas, r, shuffle=shuffle, seed=5, drop_last=drop_last)
                for r in range(replicas)]
    for epoch in (0, 1):
        parts = []
        for s in samplers:
            s.set_epoch(epoch)
            parts.append(list(s))
        order = np.random.Generator(np.random.Philox(5 + epoch)).permutation(n) if shuffle else np.arange(n)
        for r, part in enumerate(parts):
            if n == 0 and not drop_last:
                assert part == []
                continue
            assert part == _torch_reference(n, replicas, r, drop_last, order.tolist())
            assert len(part) == len(samplers[r])
        flat = [i for p in parts for i in p]
        if drop_last:  # no repeats, and at most replicas - 1 left out
            assert len(set(flat)) == len(flat) and n - len(flat) < replicas
        else:  # every index, plus the first ones repeated up to a multiple of replicas
            assert set(flat) == set(range(n))
            assert len(flat) == (math.ceil(n / replicas) * replicas if n else 0)


def test_sampler_epochs_and_seeds():
    data = range(50)
    a = DistributedSampler(data, 2, 0, seed=1)
    b = DistributedSampler(data, 2, 1, seed=1)
    e0 = list(a) + list(b)
    assert sorted(e0) == list(range(50))
    assert list(a) == list(a)  # same epoch, same order
    a.set_epoch(1), b.set_epoch(1)
    e1 = list(a) + list(b)
    assert sorted(e1) == list(range(50)) and e1 != e0
    assert list(DistributedSampler(data, 2, 0, seed=2)) != list(DistributedSampler(data, 2, 0, seed=1))


def test_sampler_bad_arguments():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(range(4), num_replicas=2, rank=-1)
    with pytest.raises(ValueError, match="num_replicas must be positive"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="num_replicas must be an int"):
        DistributedSampler(range(4), num_replicas=2.0, rank=0)
    with pytest.raises(TypeError, match="needs a dataset with __len__"):
        DistributedSampler(iter(range(4)), num_replicas=2, rank=0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
    with pytest.raises(TypeError, match="epoch must be an int"):
        DistributedSampler(range(4), 2, 0).set_epoch("1")


def test_dataloader_with_sampler():
    x = ember.from_numpy(np.arange(10, dtype=np.float32))
    ds = TensorDataset(x)
    s = DistributedSampler(ds, num_replicas=3, rank=1, shuffle=False)
    loader = DataLoader(ds, batch_size=2, sampler=s)
    assert len(loader) == 2
    got = [b[0].numpy().tolist() for b in loader]
    assert got == [[1.0, 4.0], [7.0, 0.0]]  # 10 padded to 12 by repeating index 0
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, batch_size=2, sampler=s, shuffle=True)


# ---------------------------------------------------------------- ember train --nproc

def _train_ops_missing():
    import importlib.util
    F = ember.nn.functional
    missing = [n for n in ("linear", "relu", "cross_entropy") if not hasattr(F, n)]
    if importlib.util.find_spec("ember.optim._kernels") is None:
        missing.append("ember.optim._kernels")
    return missing


@needs_mpi
@pytest.mark.skipif(bool(_train_ops_missing()), reason=f"ember train needs {_train_ops_missing()} (op families "
                    "merged from other branches)")
def test_cli_train_nproc(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    ck = tmp_path / "ck.safetensors"
    cmd = [sys.executable, "-m", "ember", "train", "--model", "mlp", "--epochs", "2", "--nproc", "2",
           "--checkpoint", str(ck)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout
    assert "2 ranks x batch 32 = global batch 64" in p.stdout, p.stdout
    assert p.stdout.count("test accuracy:") == 1, p.stdout  # printed by rank 0 only
    assert p.stdout.count("epoch 2/2") == 1, p.stdout
    acc = float(p.stdout.split("test accuracy:")[1].split()[0])
    assert acc > 0.8, p.stdout
    assert ember.load(ck)["epoch"] == 1
    assert [f.name for f in tmp_path.iterdir()] == ["ck.safetensors"]
