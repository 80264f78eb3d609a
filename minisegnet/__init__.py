"""minisegnet: a from-scratch deep-learning library for learning how convnets see and segment images.

    import minisegnet as msn
    from minisegnet import nn, optim, functional as F

Table of contents:
    engine.py      Tensor, Function, backward (the chain rule lives here)
    functional/    the differentiable ops, one family per file
    nn/            Module, layers, initialisation, state dicts
    optim.py       SGD, Adam
    gradcheck.py   numerical gradient checking
    backend.py     NumPy (CPU) / CuPy (GPU) arrays
    kernels/       hand-written Numba CPU and CUDA kernels (the ``kernels/`` folder of the repository)
"""
import os

# NumPy's BLAS and Numba's kernels each keep a pool of worker threads, and an idle worker
# spins for a while before it sleeps. A convolution alternates between the two (im2col in
# Numba, then a matrix product in BLAS), so each pool's spinning workers steal the cores the
# other needs next: on a 2-core laptop that made small convolutions ten times slower. Ask both
# pools to go to sleep promptly (the user's own settings win). OpenBLAS reads its variable when
# NumPy is first imported, so it only helps when minisegnet is imported first; the OpenMP
# variable is read when Numba starts its pool, at the first kernel call.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import cuda, functional, nn, optim  # noqa: E402
from .engine import Function, Tensor, detect_anomaly, is_grad_enabled, no_grad, tensor  # noqa: E402
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .random import manual_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "tensor", "no_grad", "is_grad_enabled", "detect_anomaly", "gradcheck",
           "GradcheckError", "manual_seed", "functional", "nn", "optim", "cuda"]
