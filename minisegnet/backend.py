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
    "(CuPy for CUDA 13) on a machine with an NVIDIA GPU"
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


# --- CPU memory: keep freed blocks for the next step ------------------------------------------------
#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: arrays below this many bytes come from malloc's heap, not from a fresh mmap (glibc's largest allowed value)
MMAP_THRESHOLD = 32 << 20
#: freed heap memory is handed back to the OS only beyond this much free at the top of the heap
TRIM_THRESHOLD = 1 << 30
#: one heap for every thread: the convolution's worker threads would otherwise each get an arena of their own,
#: and each arena keeps what its thread freed, for that thread alone
ARENAS = 1


def keep_freed_memory():
    """Let glibc's malloc reuse the memory a training step frees instead of returning it to the OS.

    Every step allocates the same arrays again (im2col's columns, gradients, activations), each from
    a few hundred KB to a few MB. By default glibc serves such a block with a fresh ``mmap`` (or grows
    the heap) and gives it back to the OS when NumPy frees it, so the next step's array starts as
    untouched pages and pays one page fault per 4 KB on first write, in the kernel, zeroing it. On a
    2-core machine that was most of a small convolution's time: the backward pass of a 32->32 layer
    on 16x16 images took 3.8 ms, 1.0 ms with this setting (benchmarks/README.md). With the setting,
    blocks below 32 MB come from malloc's heap and freed ones stay there for reuse; the peak resident
    memory is unchanged, but it is not handed back to the OS until the process ends.

    Kept memory is kept per arena, and glibc gives each thread that allocates its own arena: the two
    worker threads of a split convolution (``kernels.parallel``) each kept the columns they had freed,
    beside the main thread's heap. One arena for all threads (``ARENAS``) lets every thread reuse every
    freed block: the peak resident memory of an FCN-8s training step fell 23.1-23.3 -> 21.3-22.0 MiB
    at N4 and 66.7-67.4 -> 59.0-59.1 MiB at N16, with no slower step measurable (benchmarks/README.md).

    Returns True when the setting was made: only glibc (Linux) has it; elsewhere, and when the
    environment sets MINISEGNET_KEEP_FREED_MEMORY=0 or any MALLOC_* tunable of its own, nothing changes."""
    import ctypes
    import ctypes.util
    import os
    if os.environ.get("MINISEGNET_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if any(name.startswith("MALLOC_") or name.startswith("GLIBC_TUNABLES") for name in os.environ):
        return False  # the user tuned malloc: theirs wins
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only (not musl, not macOS): its mallopt numbers differ
        return False
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, ARENAS))
    return all([bool(libc.mallopt(parameter, value)) for parameter, value in settings])  # (all three are made)
