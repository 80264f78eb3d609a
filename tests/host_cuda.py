"""Run a GPU kernel's ``Launch`` (kernels/cuda_c.py) on the host: its CUDA C compiled by the C++ compiler.

``host_cuda.h`` defines what a kernel uses of CUDA (blockIdx, threadIdx, ``__global__``, ...) and a
loop over the grid; here one ``extern "C"`` wrapper per launched kernel takes the grid, the block and
the arguments (their C types read from the Launch's NumPy arrays and scalars) and calls the kernel
template once per thread. The .cu file is compiled unchanged, so the tests check the very index
arithmetic, grid and argument order that the GPU runs. Needs g++ (or $CXX); tests skip without one.
"""
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from minisegnet.kernels import cuda_c

HERE = os.path.dirname(os.path.abspath(__file__))
COMPILER = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")

_ARRAY_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.int64): "long long",
                np.dtype(np.int32): "int"}
_SCALAR_TYPES = {np.float32: ("float", ctypes.c_float), np.float64: ("double", ctypes.c_double),
                 np.int32: ("int", ctypes.c_int), np.int64: ("long long", ctypes.c_longlong)}
_libraries = {}


def _signature(args):
    """C parameter types and ctypes converters for a Launch's arguments."""
    c_types, converters = [], []
    for arg in args:
        if isinstance(arg, np.ndarray):
            if not arg.flags.c_contiguous:
                raise ValueError("host_cuda: kernels read arrays as contiguous memory")
            c_types.append(_ARRAY_TYPES[arg.dtype] + "*")
            converters.append(lambda a: a.ctypes.data_as(ctypes.c_void_p))
        else:
            c_type, ctype = _SCALAR_TYPES[type(arg)]
            c_types.append(c_type)
            converters.append(lambda a, ctype=ctype: ctype(a))
    return c_types, converters


def _library(source, kernel, c_types):
    key = (source, kernel, tuple(c_types))
    if key not in _libraries:
        params = ", ".join(f"{t} a{i}" for i, t in enumerate(c_types))
        names = ", ".join(f"a{i}" for i in range(len(c_types)))
        code = (f'#include "{os.path.join(HERE, "host_cuda.h")}"\n#include "{cuda_c.source_path(source)}"\n'
                f'extern "C" void launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, '
                f'unsigned bz{", " + params if params else ""})\n'
                f'{{ launch_on_host(gx, gy, gz, bx, by, bz, [&]() {{ {kernel}({names}); }}); }}\n')
        digest = hashlib.sha1((code + cuda_c.source_code(source)).encode()).hexdigest()[:16]
        folder = os.path.join(tempfile.gettempdir(), "minisegnet_host_cuda")
        os.makedirs(folder, exist_ok=True)
        library = os.path.join(folder, f"{digest}.so")
        if not os.path.exists(library):
            wrapper = os.path.join(folder, f"{digest}.cpp")
            with open(wrapper, "w") as f:
                f.write(code)
            partial = f"{library}.{os.getpid()}.tmp"
            subprocess.run([COMPILER, "-std=c++17", "-O1", "-shared", "-fPIC", "-o", partial, wrapper],
                           check=True, capture_output=True, text=True)
            os.replace(partial, library)  # atomic: a parallel test run never loads half a library
        _libraries[key] = ctypes.CDLL(library)
    return _libraries[key]


def run_on_host(launch):
    """Run ``launch`` (NumPy arrays, written in place) through its CUDA C compiled for the host."""
    c_types, converters = _signature(launch.args)
    function = _library(launch.source, launch.kernel, c_types).launch
    grid, block = tuple(launch.grid) + (1,) * (3 - len(launch.grid)), tuple(launch.block) + (1,) * (3 - len(launch.block))
    function(*(ctypes.c_uint(v) for v in grid + block), *(convert(a) for convert, a in zip(converters, launch.args)))
