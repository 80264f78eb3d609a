"""Where an array lives: NumPy on the CPU, CuPy on a GPU.

Everything device-specific in the library goes through these few functions, so
the rest of the code is written once against ``xp = array_module(a)`` (the
Chainer idiom). CuPy is imported lazily and only when a GPU is asked for: the
CPU path never touches it (CuPy imports fine without a GPU but fails at the
first allocation).
"""
import numpy as np

DEVICES = ("cpu", "cuda")

_INSTALL_HINT = (
    'install the GPU extra with  pip install "minisegnet[gpu]"  '
    "(CuPy for your CUDA version and numba-cuda) on a machine with an NVIDIA GPU"
)


def is_cupy_array(a):
    """True for a CuPy ndarray, checked without importing CuPy."""
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """numpy for NumPy arrays (and scalars), cupy for CuPy arrays."""
    if is_cupy_array(a):
        import cupy
        return cupy
    return np


def device_of(a):
    return "cuda" if is_cupy_array(a) else "cpu"


def check_device(device):
    """Normalise 'cpu' / 'cuda' / 'cuda:0' and reject anything else."""
    device = str(device)
    name = device.split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def cupy_or_error():
    """Import CuPy and check that a GPU is usable; one clear error otherwise."""
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(f"device 'cuda' needs CuPy, which is not installed: {_INSTALL_HINT}") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy present but no driver / no device
        raise RuntimeError(f"device 'cuda' asked for, but no usable GPU was found ({e}); {_INSTALL_HINT}") from e
    if count == 0:
        raise RuntimeError(f"device 'cuda' asked for, but no GPU was found; {_INSTALL_HINT}")
    return cupy


def cuda_is_available():
    try:
        cupy_or_error()
    except RuntimeError:
        return False
    return True


def to_device(a, device):
    """Copy an array to 'cpu' (NumPy) or 'cuda' (CuPy); no copy if it is already there."""
    device = check_device(device)
    if device == device_of(a):
        return a
    if device == "cpu":
        return a.get()
    return cupy_or_error().asarray(a)
