"""Steady-state memory: the kernels that keep scratch space (im2col and padded images,
packed GEMM panels, per-thread partial sums) reuse it, so 10,000 calls on preallocated
outputs leave the process's resident memory where the warm-up left it."""
import os

import numpy as np
import pytest

import ember

_C = ember._C
CALLS = 10_000
WARMUP = 200
# A few pages of slack for the interpreter's own small-object pools; any per-call leak of
# a scratch buffer (the smallest here is a 4 KiB GEMM panel) adds megabytes over 10,000 calls.
MAX_GROWTH = 1 << 20


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _calls():
    """One call of each workspace-using kernel, on preallocated arrays."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((2, 8, 10, 10)).astype(f32)
    conv = []
    # (weight shape, geometry): wide (3x3 stride 1), im2col (stride 2), pointwise (1x1), grouped
    for wshape, geo in (((8, 8, 3, 3), [1, 1, 1, 1, 1, 1, 1, 1, 1]), ((8, 8, 3, 3), [2, 2, 1, 1, 1, 1, 1, 1, 1]),
                        ((8, 8, 1, 1), [1, 1, 0, 0, 0, 0, 1, 1, 1]), ((8, 2, 3, 3), [1, 1, 1, 1, 1, 1, 1, 1, 4])):
        w = rng.standard_normal(wshape).astype(f32)
        p = (10 + 2 * geo[2] - 3 if wshape[2] == 3 else 10 - 1) // geo[0] + 1
        out = np.empty((2, 8, p, p), f32)
        conv.append((w, geo, out, np.empty_like(x), np.empty_like(w)))
    a = rng.standard_normal((96, 160)).astype(f32)  # big enough to pack both operands
    b = rng.standard_normal((160, 130)).astype(f32)
    mm, mm_t = np.empty((96, 130), f32), np.empty((160, 130), f32)
    logits = rng.standard_normal((64, 1000)).astype(f32)
    sm, gsm = np.empty_like(logits), np.empty_like(logits)
    bn_x = rng.standard_normal((8, 16, 36)).astype(f32)  # (N, C, S)
    c16 = [np.ones(16, f32) for _ in range(8)]
    bn_out, bn_gx = np.empty_like(bn_x), np.empty_like(bn_x)

    def once():
        for w, geo, out, gx, gw in conv:
            _C.conv2d_forward(x, w, None, out, geo)
            _C.conv2d_backward_data(out, w, gx, geo)
            _C.conv2d_backward_weight(x, out, gw, geo)
        _C.matmul(a, b, mm, False, False, 1.0, 0.0)
        _C.matmul(a, mm, mm_t, True, False, 1.0, 0.0)  # a^T (160, 96) @ mm: A packed from its transpose
        _C.softmax(logits, 1, sm)
        _C.softmax_backward(logits, sm, 1, gsm)
        _C.batch_norm_forward(bn_x, c16[0], c16[1], c16[2], c16[3], bn_out, c16[4], c16[5], True, 0.1, 1e-5)
        _C.batch_norm_backward(bn_out, bn_x, c16[4], c16[5], c16[0], True, bn_gx, c16[6], c16[7])

    return once


# One thread, so 10,000 calls fit in a few seconds on a shared 2-core machine (there an
# OpenMP region can wait a whole time slice for a descheduled thread); the workspaces of
# the pool's worker threads are not covered here.
def test_memory_flat_over_10000_calls():
    old = ember.get_num_threads()
    ember.set_num_threads(1)
    try:
        once = _calls()
        for _ in range(WARMUP):
            once()
        before = _rss_bytes()
        for _ in range(CALLS - WARMUP):
            once()
        growth = _rss_bytes() - before
    finally:
        ember.set_num_threads(old)
    assert growth <= MAX_GROWTH, f"resident memory grew by {growth / 2**20:.2f} MiB over {CALLS} calls"


_OOM_SCRIPT = """
import resource, sys
import numpy as np, ember, ember.nn.functional as F
ember.set_num_threads(2)
x = ember.tensor(np.ones((2, 64, 384, 384), np.float32))
w = ember.tensor(np.ones((64, 64, 3, 3), np.float32))
F.conv2d(x[:, :, :8, :8], w, stride=2)  # threads started, small workspaces made
vm = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize'))
resource.setrlimit(resource.RLIMIT_AS, (vm + (100 << 20), resource.RLIM_INFINITY))
try:
    F.conv2d(x, w, stride=2, padding=1)  # an 85 MB im2col buffer per thread
    print("no error")
except MemoryError as e:
    print("MemoryError:", e)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc and RLIMIT_AS")
def test_out_of_memory_in_a_threaded_kernel_raises():
    # A workspace allocation that fails on a worker thread of an OpenMP region used to end
    # the process (std::terminate); it must reach Python as a MemoryError instead.
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _OOM_SCRIPT], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert "MemoryError:" in r.stdout and "out of memory" in r.stdout, r.stdout
