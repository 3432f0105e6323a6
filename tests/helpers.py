"""Test helpers: tolerances that grow with the reduction length, and a central-difference
gradient check in float64."""
import numpy as np

import ember


def tol(n_reduce=1, dtype=np.float32):
    """(rtol, atol) for comparing a float32 (or float64) kernel with the float64 reference
    when each output sums about n_reduce terms."""
    eps = np.finfo(dtype).eps
    scale = 4 * np.sqrt(max(n_reduce, 1)) + 8
    return scale * eps, scale * eps


def assert_close(actual, expected, n_reduce=1, dtype=np.float32, scale=1.0):
    rtol, atol = tol(n_reduce, dtype)
    a = actual.numpy(force=True) if isinstance(actual, ember.Tensor) else np.asarray(actual)
    np.testing.assert_allclose(a, expected, rtol=rtol * scale, atol=atol * scale *
                               max(1.0, float(np.max(np.abs(expected))) if np.size(expected) else 1.0))


def gradcheck(fn, inputs, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """Check the autograd gradients of sum(fn(*inputs) * W), W random, against central
    differences. `inputs` are float64 ember tensors; those with requires_grad are checked."""
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    w = rng.standard_normal(out.shape)
    wt = ember.tensor(w, dtype=ember.float64, device=out.device)
    for t in inputs:
        if isinstance(t, ember.Tensor):
            t.grad = None
    (out * wt).sum().backward()
    for i, t in enumerate(inputs):
        if not (isinstance(t, ember.Tensor) and t.requires_grad):
            continue
        assert t.grad is not None, f"input {i} got no gradient"
        flat = t._data.reshape(-1)  # the tensor's own storage (NumPy or CuPy), perturbed in place
        numeric = np.zeros(t.shape)
        num_flat = numeric.reshape(-1)
        for j in range(flat.size):
            old = float(flat[j])
            with ember.no_grad():
                flat[j] = old + eps
                fp = float((fn(*inputs).numpy(force=True) * w).sum())
                flat[j] = old - eps
                fm = float((fn(*inputs).numpy(force=True) * w).sum())
            flat[j] = old
            num_flat[j] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(t.grad.numpy(force=True), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def on_device(arr, device):
    """A NumPy array as the array type kernels take on `device` (NumPy or CuPy)."""
    return ember._backend.xp(device).asarray(arr)


def to_host(arr):
    """A NumPy or CuPy array as NumPy."""
    return arr.get() if hasattr(arr, "get") else np.asarray(arr)


def as_tensor(arr, device):
    """A tensor viewing `arr` (NumPy on cpu, CuPy on cuda) with its strides, no copy."""
    return ember.from_numpy(arr) if device == "cpu" else ember.Tensor._wrap(arr)


def device_tensor(arr, device, view=None):
    """A NumPy array copied to `device`, then `view` (indexing that works on NumPy and
    CuPy alike) applied there, so the tensor keeps the view's strides."""
    a = on_device(arr, device)
    return as_tensor(view(a) if view else a, device)
