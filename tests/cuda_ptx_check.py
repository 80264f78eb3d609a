"""Compile every Numba CUDA kernel in kernels/*/cuda.py to PTX for sm_90, without a GPU.

Run as a separate process (``python tests/cuda_ptx_check.py``): the CUDA simulator, which the
test session switches on, must be off here so that the real compiler (NVVM) runs. Type errors
that the simulator would let through fail here, as they would on a device, and so does any
float64 instruction in a kernel compiled for float32 arrays (GPUs run float64 at a fraction of
the float32 rate; a float32 kernel computes in float32, as the CPU kernels and PyTorch do). It also checks that
every kernel in those modules is listed, so a new kernel cannot skip the check.
"""
import os
import sys

os.environ.pop("NUMBA_ENABLE_CUDASIM", None)

import numpy as np  # noqa: E402
from numba import cuda, typeof  # noqa: E402

from minisegnet.kernels.bilinear import cuda as bilinear  # noqa: E402
from minisegnet.kernels.columns import cuda as columns  # noqa: E402
from minisegnet.kernels.crf import cuda as crf  # noqa: E402
from minisegnet.kernels.pooling import cuda as pooling  # noqa: E402

ARCH = (9, 0)


def kernels_in(module):
    return {name: obj for name, obj in vars(module).items()
            if type(obj).__name__ == "CUDADispatcher" and not obj.targetoptions.get("device", False)}


def example_arguments(dtype):
    """One example argument list per kernel: arrays of the launch's dtype and layout, ints as int64."""
    image, matrix, stack = np.zeros((1, 1, 1, 1), dtype), np.zeros((1, 1), dtype), np.zeros((1, 1, 1), dtype)
    indices, taps, weights = np.zeros((1, 1, 1, 1), np.int64), np.zeros(1, np.int64), np.zeros(1, dtype)
    geometry8, geometry6 = (1,) * 10, (1,) * 6
    corners, neighbours = np.zeros((1, 1), np.int64), np.zeros((1, 1, 2), np.int64)
    ranges = np.zeros((4, 1), np.int64)  # bilinear backward: the outputs that read each input row or column
    return {
        columns._im2col_kernel: (image, stack) + geometry8,
        columns._col2im_kernel: (stack, image) + geometry8,
        pooling._max_pool_forward_kernel: (image, image, indices) + geometry6,
        pooling._max_pool_backward_kernel: (image, indices, image) + geometry6,
        pooling._avg_pool_forward_kernel: (image, image) + geometry6,
        pooling._avg_pool_backward_kernel: (image, image) + geometry6,
        bilinear._bilinear_forward_kernel: (image, image, taps, taps, weights, taps, taps, weights),
        bilinear._bilinear_backward_kernel: (image, image, weights, weights, ranges, ranges),
        crf._splat_kernel: (matrix, matrix, taps, taps, matrix),  # values, weights, entries, starts, lattice
        crf._blur_kernel: (matrix, neighbours, 0, matrix),
        crf._slice_kernel: (matrix, corners, matrix, matrix),
    }


def main():
    listed = set(example_arguments(np.float32))
    every = {k for m in (columns, pooling, bilinear, crf) for k in kernels_in(m).values()}
    missing = [k.py_func.__name__ for k in every - listed]
    if missing:
        sys.exit(f"kernels without a PTX compile check: {missing}")
    for dtype in (np.float32, np.float64):
        for kernel, args in example_arguments(dtype).items():
            ptx, _ = cuda.compile_ptx(kernel.py_func, tuple(typeof(a) for a in args), cc=ARCH)
            if ".entry" not in ptx:
                sys.exit(f"{kernel.py_func.__name__} ({np.dtype(dtype).name}): no kernel entry in the PTX")
            doubles = [line.strip() for line in ptx.splitlines() if ".f64" in line and not line.strip().startswith("//")]
            if dtype == np.float32 and doubles:  # a bare 0.0, 1 - w or -math.inf constant is a float64 in Numba
                sys.exit(f"{kernel.py_func.__name__} (float32): {len(doubles)} float64 PTX lines, e.g. {doubles[:2]}; "
                         "type the constants in the array's dtype (x.dtype.type(0))")
            print(f"compiled {kernel.py_func.__name__:28s} {np.dtype(dtype).name:8s} sm_{ARCH[0]}{ARCH[1]}: "
                  f"{len(ptx)} bytes of PTX")


if __name__ == "__main__":
    main()
