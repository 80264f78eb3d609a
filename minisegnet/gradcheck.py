"""Gradient checking: is the backward pass the derivative of the forward pass?

For every input element x_i (a seeded random subset for large inputs) the
numerical derivative of a random projection of the output, L = sum(r * f(x)),

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)          (central difference, error O(eps^2))

is compared with the analytic gradient that backward() produces, in float64.
"""
import contextlib

import numpy as np

from . import backend
from .engine import Tensor, _frozen, _set_writeable, no_grad


class GradcheckError(AssertionError):
    pass


@contextlib.contextmanager
def _perturbable(array):
    """Let gradcheck write into an array that a live graph keeps read-only (an op saved it):
    every value is put back before that graph could run its backward, so it sees no change."""
    frozen = id(array) in _frozen
    if frozen:
        _set_writeable(array, True)
    try:
        yield
    finally:
        if frozen:
            _set_writeable(array, False)


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=200, seed=0, raise_on_failure=True):
    """Check fn's gradients with respect to every input Tensor that requires grad.

    fn: callable taking ``inputs`` and returning a Tensor. Inputs must be float64
    (float32 central differences are too noisy to judge a backward pass).
    Checks element i of input k when |analytic - numeric| <= atol + rtol |numeric|.
    Returns True, or raises GradcheckError naming the worst element (input, index,
    analytic, numeric, relative error); with raise_on_failure=False returns False instead.
    """
    rng = np.random.default_rng(seed)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64, got {t.dtype} (shape {t.shape})")

    out = fn(*inputs)
    xp = backend.array_module(out.data)
    projection = xp.asarray(rng.standard_normal(out.shape))  # a random direction: checks every output at once

    def objective():
        with no_grad():  # the perturbed passes need no graph
            return float((fn(*inputs).data * projection).sum())

    for t in checked:
        t.grad = None
    out.backward(projection)

    worst = None
    for k, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = backend.to_device(t.grad, "cpu") if t.grad is not None else np.zeros(t.shape)
        n = t.size
        indices = np.arange(n) if n <= max_elements else np.sort(rng.choice(n, max_elements, replace=False))
        for i in indices:
            # Perturb the input's own array at a multi-index: a flattened view would be a copy
            # for a non-contiguous array, and the perturbation would never reach the input.
            index = np.unravel_index(i, t.shape)
            original = t.data[index].item()
            with _perturbable(t.data):
                t.data[index] = original + eps
                plus = objective()
                t.data[index] = original - eps
                minus = objective()
                t.data[index] = original
            numeric = (plus - minus) / (2 * eps)
            a = analytic[index]
            error = abs(a - numeric)
            excess = error - (atol + rtol * abs(numeric))
            if worst is None or excess > worst[0]:
                worst = (excess, k, index, a, numeric, error / max(abs(numeric), 1e-12))
    if worst[0] > 0:
        _, k, index, a, numeric, rel = worst
        message = (f"gradcheck failed: input {k} at index {tuple(int(j) for j in index)}: analytic {a:.8g}, "
                   f"numeric {numeric:.8g}, relative error {rel:.3g} (atol={atol}, rtol={rtol})")
        if raise_on_failure:
            raise GradcheckError(message)
        return False
    return True
