"""Run under mpiexec -n N (N divides 12): DistributedDataParallel against one process.

Every rank builds the same reference model in-process and trains it on the full global
batch; the DDP model (initialised differently on each rank, so the construction
broadcast is exercised) trains on this rank's share via DistributedSampler. After each
phase the DDP parameters must match the reference within float32 rounding and be
bit-identical across ranks. Phases: plain training with several buckets (a parameter used
twice, one never used), no_sync gradient accumulation, rank-0 checkpoint save/load."""
import os
import sys

import numpy as np

import ember
import ember.distributed as dist
from ember import nn
from ember.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _models import SGD, Linear  # noqa: E402

GLOBAL_BATCH, STEPS, IN, HID, OUT = 12, 5, 7, 13, 5


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = Linear(3, 3)       # never called: its grads must stay None
        self.fc1 = Linear(IN, HID)
        self.fc2 = Linear(HID, HID)   # applied twice: two gradient accumulations per backward
        self.head = Linear(HID, OUT)

    def forward(self, x, fc2_times=2):
        h = self.fc1(x)
        for _ in range(fc2_times):
            h = self.fc2(h) * 0.5
        return self.head(h)


def loss_fn(out, y):
    return ((out - y) ** 2).mean()


def params_of(m):
    return {k: v.detach().numpy().copy() for k, v in m.named_parameters()}


def assert_same_across_ranks(model, what):
    for name, p in model.named_parameters():
        got = ember.from_numpy(p.detach().numpy().copy())
        dist.broadcast(got, src=0)
        if not np.array_equal(got.numpy(), p.detach().numpy()):
            raise AssertionError(f"rank {dist.get_rank()}: {what}: {name} differs from rank 0")


def assert_close_to(ref, model, what, rtol=2e-5, atol=2e-6):
    r = params_of(ref)
    for name, v in params_of(model).items():
        name = name[len("module."):] if name.startswith("module.") else name
        np.testing.assert_allclose(v, r[name], rtol=rtol, atol=atol, err_msg=f"{what}: {name}")


def main():
    bucket_cap_mb = float(sys.argv[1])
    ckpt = sys.argv[2]
    dist.init_process_group("mpi", timeout=30)
    rank, n = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(123)
    X = rng.standard_normal((GLOBAL_BATCH * STEPS, IN)).astype(np.float32)
    Y = rng.standard_normal((GLOBAL_BATCH * STEPS, OUT)).astype(np.float32)

    ember.manual_seed(0)
    ref = Net()
    ember.manual_seed(100 + rank)  # different on every rank; DDP must broadcast rank 0's
    local = Net()
    if rank == 0:
        local.load_state_dict(ref.state_dict())
    model = dist.DistributedDataParallel(local, bucket_cap_mb=bucket_cap_mb)
    if bucket_cap_mb <= 1e-6:  # smaller than any parameter: one bucket per parameter
        assert model.bucket_sizes() == [5, 65, 13, 169, 13, 91, 3, 9], model.bucket_sizes()
    elif bucket_cap_mb >= 1:
        assert model.bucket_sizes() == [368], model.bucket_sizes()
    assert_close_to(ref, model, "after construction", rtol=0, atol=0)

    ref_opt = SGD(ref.parameters(), lr=0.05, weight_decay=1e-3)
    opt = SGD(model.parameters(), lr=0.05, weight_decay=1e-3)

    # ---- plain data-parallel steps, the batch split by DistributedSampler
    ds = TensorDataset(ember.from_numpy(X), ember.from_numpy(Y))
    sampler = dist.DistributedSampler(ds, shuffle=False)
    # rank r's share of global batch s must be rows s*B .. (s+1)*B: with shuffle off and
    # stride-n sampling, a local batch of B/n consecutive sampler indices is exactly that
    loader = DataLoader(ds, batch_size=GLOBAL_BATCH // n, sampler=sampler)
    steps = 0
    for s, (x, y) in enumerate(loader):
        if steps == STEPS:
            break
        xg, yg = X[s * GLOBAL_BATCH:(s + 1) * GLOBAL_BATCH], Y[s * GLOBAL_BATCH:(s + 1) * GLOBAL_BATCH]
        rows = np.arange(s * GLOBAL_BATCH, (s + 1) * GLOBAL_BATCH)[rank::n]
        assert np.array_equal(x.numpy(), X[rows])
        ref_opt.zero_grad()
        loss_fn(ref(ember.from_numpy(xg)), ember.from_numpy(yg)).backward()
        ref_opt.step()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        assert model.module.unused.weight.grad is None
        if bucket_cap_mb <= 1e-6 and n > 1:
            # the first backward only counts accumulations; from the second on, every
            # bucket with gradients starts during backward, and the unused ones right after
            want = 0 if steps == 0 else 8
            assert model.launched_during_backward == want, (steps, model.launched_during_backward)
        opt.step()
        steps += 1
    assert steps == STEPS
    assert_close_to(ref, model, "after DDP steps")
    assert_same_across_ranks(model, "after DDP steps")

    # ---- no_sync: two local accumulations, then a synchronised one
    micro = [(X[i * GLOBAL_BATCH:(i + 1) * GLOBAL_BATCH], Y[i * GLOBAL_BATCH:(i + 1) * GLOBAL_BATCH])
             for i in range(3)]
    ref_opt.zero_grad()
    for xg, yg in micro:
        loss_fn(ref(ember.from_numpy(xg)), ember.from_numpy(yg)).backward()
    ref_opt.step()
    opt.zero_grad()
    for i, (xg, yg) in enumerate(micro):
        x, y = ember.from_numpy(xg[rank::n].copy()), ember.from_numpy(yg[rank::n].copy())
        if i < 2:
            with model.no_sync():
                loss_fn(model(x), y).backward()
            if n > 1 and i == 0:  # no averaging happened: local grads differ between ranks
                g = model.module.fc1.weight.grad.detach().numpy().copy()
                g0 = ember.from_numpy(g.copy())
                dist.broadcast(g0, src=0)
                same = ember.tensor([float(np.array_equal(g0.numpy(), g))])
                dist.all_reduce(same, op=dist.ReduceOp.MIN)
                assert same.item() == 0.0, "gradients were synchronised inside no_sync"
        else:
            loss_fn(model(x), y).backward()
    opt.step()
    assert_close_to(ref, model, "after no_sync accumulation")
    assert_same_across_ranks(model, "after no_sync accumulation")

    # ---- checkpoint written once, atomically, readable by every rank after the call
    dist.save({"model": model.state_dict(), "step": 7}, ckpt)
    ck = ember.load(ckpt)
    assert ck["step"] == 7 and "fc1.weight" in ck["model"], sorted(ck["model"])
    fresh = Net()
    fresh.load_state_dict(ck["model"])
    assert_close_to(ref, fresh, "loaded checkpoint")
    prefixed = {"module." + k: v for k, v in ck["model"].items()}
    model.load_state_dict(prefixed)
    # ---- a graph that changes shape after the first backward is refused, on every rank
    # alike, and the next normal step still works (the partial reductions were drained)
    x, y = ember.from_numpy(X[:GLOBAL_BATCH][rank::n].copy()), ember.from_numpy(Y[:GLOBAL_BATCH][rank::n].copy())
    opt.zero_grad()
    try:
        loss_fn(model(x, fc2_times=3), y).backward()
        raise AssertionError("a third use of fc2 should have been refused")
    except RuntimeError as e:
        assert "received gradient 3 times in this backward, but 2 times in the first one" in str(e), str(e)
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()
    assert_same_across_ranks(model, "after a refused backward")

    leftovers = [f for f in os.listdir(os.path.dirname(ckpt)) if f.endswith(".tmp")]
    assert not leftovers, leftovers
    dist.destroy_process_group()
    print(f"rank {rank}/{n}: ddp ok ({len(model.bucket_sizes())} buckets)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
