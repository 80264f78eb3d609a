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
from . import cuda, functional, nn, optim
from .engine import Function, Tensor, detect_anomaly, is_grad_enabled, no_grad, tensor
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "tensor", "no_grad", "is_grad_enabled", "detect_anomaly", "gradcheck",
           "GradcheckError", "manual_seed", "functional", "nn", "optim", "cuda"]
