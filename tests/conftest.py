"""Shared fixtures: every test that takes `device` runs on "cpu" and, where a GPU is
usable, on "cuda" (skipped cleanly otherwise); `isa` runs a test on every CPU SIMD path
this machine has."""
import numpy as np
import pytest

import ember

ALL_ISAS = ["scalar", "avx2", "avx512"]
_ORDER = {name: i for i, name in enumerate(ALL_ISAS)}


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "cuda" and not ember.cuda.is_available():
        pytest.skip(f"CUDA unavailable: {ember.cuda.why_unavailable()}")
    return request.param


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    """Force one CPU SIMD path for the test, then restore the best one."""
    best = ember._C.best_cpu_isa()
    if _ORDER[request.param] > _ORDER[best]:
        pytest.skip(f"this CPU has no {request.param} (best: {best})")
    ember.set_cpu_isa(request.param)
    yield request.param
    ember.set_cpu_isa(best)


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(1234)
    np.random.seed(1234)
