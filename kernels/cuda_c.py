"""CUDA C kernels launched through CuPy: how a GPU kernel of minisegnet is compiled and started.

Each hot loop's folder holds its GPU kernels as CUDA C in a ``.cu`` file (``columns/columns.cu``,
...), beside the Numba CUDA twin (``cuda.py``, the readable version CI runs in Numba's simulator)
and the CPU kernel. Why two GPU versions: numba-cuda costs ~150-200 us of host time per launch
(it inspects every array argument) and is in maintenance mode upstream, while a CuPy launch of
compiled CUDA C costs ~15 us. The kernels are the same algorithm, one thread per output element,
gathers instead of atomics, written for the GPU's arithmetic:

* coordinates in 32-bit ``int`` (a GPU divides 32-bit integers several times faster than 64-bit
  ones) and only the final memory offset in 64 bits (``long long``), so arrays beyond 2^31
  elements still work;
* 2-D grids: ``blockIdx.x`` runs along the contiguous axis (neighbouring threads touch
  neighbouring addresses: one memory transaction serves a warp), ``blockIdx.y`` over the rest;
* templates over the element type ``T`` (``float`` or ``double``), so a float32 kernel computes
  in float32 (no ``0.0`` literal drags a float32 sum into float64).

A launch is first described as a ``Launch`` (which kernel, grid, block, arguments as NumPy scalars
of the exact C type) by a plain function in the folder's ``gpu.py``, then started by ``run``. The
tests build the same ``Launch`` from NumPy arrays and run it through the same CUDA C compiled for
the host (``tests/host_cuda.py``: a loop over the grid plays the GPU), so the index arithmetic, the
grid and the argument order are checked on every machine; NVRTC compiles every kernel to PTX in
CI too (``tests/test_cuda_c.py``). Only ``run`` itself needs a GPU.
"""
import functools
import os
from collections import namedtuple

import numpy as np

#: threads per block; the grid's x axis is cut into blocks of this many threads
THREADS = 256
#: CUDA's limit on gridDim.y (and z); the kernels loop over whatever a grid row cannot hold
MAX_GRID_Y = 65535

C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

#: one kernel launch: ``source`` the .cu file (relative to kernels/), ``kernel`` the name expression
#: ("im2col<float>"), ``grid`` and ``block`` 3-tuples, ``args`` arrays and NumPy scalars in the order of
#: the C signature
Launch = namedtuple("Launch", "source kernel grid block args")


def c_type(dtype):
    """The C type of a float32 or float64 array's elements."""
    return C_TYPES[np.dtype(dtype)]


def blocks(count, threads=THREADS):
    """How many blocks of ``threads`` cover ``count`` items (at least one)."""
    return max(1, -(-int(count) // threads))


def ints(*values):
    """Python ints as the C ``int`` arguments a kernel declares (CuPy passes NumPy scalars by their type)."""
    for value in values:
        if not -2 ** 31 <= int(value) < 2 ** 31:
            raise ValueError(f"a kernel argument {value} does not fit a 32-bit int")
    return tuple(np.int32(value) for value in values)


def plane_grid(threads_per_plane, planes, *plane_sizes):
    """(grid, block) of an image kernel: x along one plane (``threads_per_plane`` threads, the contiguous
    axis), y over the planes (the kernel loops over those beyond MAX_GRID_Y). plane_sizes: the other pixel
    counts the kernel computes as an int (an input's or output's plane), checked to fit one."""
    ints(threads_per_plane, planes, *plane_sizes)
    return (blocks(threads_per_plane), max(1, min(planes, MAX_GRID_Y)), 1), (THREADS, 1, 1)


def source_path(source):
    return os.path.join(os.path.dirname(__file__), source)


@functools.lru_cache(maxsize=None)
def source_code(source):
    with open(source_path(source)) as f:
        return f.read()


def kernel_names(source):
    """Every kernel a .cu file defines, instantiated for float and double: the name expressions NVRTC
    needs to compile the templates (one ``// kernels: a b c`` line in the file lists them)."""
    for line in source_code(source).splitlines():
        if line.startswith("// kernels:"):
            names = line.split(":", 1)[1].split()
            return tuple(f"{name}<{t}>" for name in names for t in ("float", "double"))
    raise ValueError(f"{source} has no '// kernels:' line naming its kernels")


@functools.lru_cache(maxsize=None)
def _module(source, device_id):
    """The compiled module of one .cu file on one GPU (compiled once; CuPy also caches the binary on disk)."""
    import cupy
    return cupy.RawModule(code=source_code(source), options=("-std=c++17",), name_expressions=kernel_names(source))


@functools.lru_cache(maxsize=None)
def _function(source, kernel, device_id):
    return _module(source, device_id).get_function(kernel)


def run(launch):
    """Start ``launch`` on the current GPU (asynchronously, on the current stream)."""
    import cupy
    device_id = cupy.cuda.runtime.getDevice()
    _function(launch.source, launch.kernel, device_id)(launch.grid, launch.block, launch.args)
