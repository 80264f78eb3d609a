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

# NumPy's BLAS and Numba's kernels each keep a pool of worker threads, and a convolution
# alternates between them (im2col in Numba, then a matrix product in BLAS). With Numba's
# default OpenMP pool, the two pools' idle workers kept stealing the cores the other needed:
# on a 2-core machine a small convolution ran 5x slower than either piece alone
# (benchmarks/README.md). Numba's plain "workqueue" pool and OpenBLAS workers that go to sleep
# promptly cooperate. A user's own settings win. (The workqueue pool must not be entered from
# two Python threads at once; minisegnet itself is single-threaded.) OpenBLAS reads its variable
# when NumPy is first imported, so that part only applies when minisegnet is imported first.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba
    numba.config.THREADING_LAYER = "workqueue"

# A training step frees and reallocates the same few-MB arrays every step; glibc would hand them back
# to the OS each time and fault them in again (backend.keep_freed_memory, a process-wide setting).
from .backend import keep_freed_memory  # noqa: E402

keep_freed_memory()

from . import cuda, functional, nn, optim  # noqa: E402
from .engine import Function, Tensor, detect_anomaly, from_numpy, is_grad_enabled, no_grad, tensor  # noqa: E402
from .gradcheck import GradcheckError, gradcheck  # noqa: E402
from .random import manual_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "tensor", "from_numpy", "no_grad", "is_grad_enabled", "detect_anomaly", "gradcheck",
           "GradcheckError", "manual_seed", "functional", "nn", "optim", "cuda"]
