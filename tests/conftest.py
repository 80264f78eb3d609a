"""Shared test set-up.

Numba's CUDA simulator must be switched on before ``numba.cuda`` is first
imported, so it happens here, at the top of the first file pytest loads. On a
machine with a real NVIDIA GPU the simulator stays off and the same CUDA
kernel tests run on the device (set MINISEGNET_CUDASIM=1 to force the simulator).
"""
import glob
import os

HAS_GPU = bool(glob.glob("/dev/nvidia[0-9]*")) and os.environ.get("MINISEGNET_CUDASIM") != "1"
if not HAS_GPU:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minisegnet as msn  # noqa: E402

try:
    import torch  # noqa: E402
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
except ImportError:  # PyTorch is an optional test oracle
    torch = None


def gpu_available():
    return HAS_GPU and msn.cuda.is_available()


requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the reference extra) is not installed")
requires_gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU with CuPy")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords and not gpu_available():
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU with CuPy"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def sample(shape, dtype=np.float64, seed=0):
    """An array of distinct values (a permutation of 0..n-1, divided by 7): no ties, so every maximum and
    every sort is unambiguous, and a kernel that reads the wrong element cannot match by chance."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape).astype(dtype) / 7.0


def leaf(array, requires_grad=True):
    """A float64 leaf tensor, the dtype gradient checks run in."""
    return msn.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def to_torch(array, requires_grad=False):
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def assert_matches_torch(ours, theirs, pairs, rtol=1e-10, atol=1e-12, seed=0):
    """Backpropagate the same random output gradient through a minisegnet result and a PyTorch
    result, then compare the outputs and every (minisegnet leaf, torch leaf) pair's gradient."""
    g = np.random.default_rng(seed).normal(size=ours.shape)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)
    for leaf_ours, leaf_theirs in pairs:
        np.testing.assert_allclose(leaf_ours.grad, leaf_theirs.grad.numpy(), rtol=rtol, atol=atol)
