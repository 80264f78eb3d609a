"""Bilinear resizing on a GPU: the CUDA C kernels of ``bilinear.cu`` launched through CuPy.

The taps (and, for backward, the ranges of outputs that read each input row and column) depend only on
the sizes, so they are built once per (sizes, scales, align_corners, dtype, GPU) and kept on the GPU:
a network resizes the same few sizes on every step, and rebuilding them cost six host-to-device copies
per call (2.65 ms for a resize PyTorch does in 0.17 ms, measured on an H100).
"""
import functools

import numpy as np

from .. import cuda_c
from ..cuda_c import Launch, blocks, c_type, ints
from .reference import source_taps

SOURCE = "bilinear/bilinear.cu"


def outputs_reading(i0, i1, in_size):
    """(4, in_size) int64 (NumPy): for input index i, the outputs [first, end) whose first tap i0 is i, then those
    whose second tap i1 is i. Both tap arrays are non-decreasing, so each set is one range (binary search)."""
    inputs = np.arange(in_size)
    return np.stack([np.searchsorted(i0, inputs, side="left"), np.searchsorted(i0, inputs, side="right"),
                     np.searchsorted(i1, inputs, side="left"), np.searchsorted(i1, inputs, side="right")]
                    ).astype(np.int64)


def host_taps(in_hw, out_hw, scales, align_corners, dtype):
    """(y0, y1, ly, x0, x1, lx, rows, cols) as NumPy arrays: what the kernels read (rows, cols for backward)."""
    taps = []
    for in_size, out_size, scale in zip(in_hw, out_hw, scales):
        i0, i1, lam = source_taps(int(in_size), int(out_size), scale, bool(align_corners))
        taps.append((np.ascontiguousarray(i0, dtype=np.int64), np.ascontiguousarray(i1, dtype=np.int64),
                     np.ascontiguousarray(lam, dtype=dtype)))
    (y0, y1, ly), (x0, x1, lx) = taps
    return y0, y1, ly, x0, x1, lx, outputs_reading(y0, y1, int(in_hw[0])), outputs_reading(x0, x1, int(in_hw[1]))


@functools.lru_cache(maxsize=256)
def device_taps(in_hw, out_hw, scales, align_corners, dtype_name, device_id):
    """``host_taps`` copied to the GPU once per sizes and device (the kernels only read them)."""
    import cupy
    with cupy.cuda.Device(device_id):
        taps = tuple(cupy.asarray(a) for a in host_taps(in_hw, out_hw, scales, align_corners, np.dtype(dtype_name)))
        cupy.cuda.get_current_stream().synchronize()  # once per size: the copies are done before any stream reads them
        return taps


def forward_launch(x, out, taps):
    n, c, h, w = x.shape
    y0, y1, ly, x0, x1, lx = taps[:6]
    out_h, out_w = out.shape[2], out.shape[3]
    grid = (blocks(out_h * out_w), max(1, min(n * c, cuda_c.MAX_GRID_Y)), 1)
    return Launch(SOURCE, f"bilinear_forward<{c_type(x.dtype)}>", grid, (cuda_c.THREADS, 1, 1),
                  (x, out, y0, y1, ly, x0, x1, lx) + ints(h, w, out_h, out_w, n * c, h * w, out_h * out_w)[:5])


def backward_launch(grad_out, dx, taps):
    n, c, h, w = dx.shape
    ly, lx, rows, cols = taps[2], taps[5], taps[6], taps[7]
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    grid = (blocks(h * w), max(1, min(n * c, cuda_c.MAX_GRID_Y)), 1)
    return Launch(SOURCE, f"bilinear_backward<{c_type(dx.dtype)}>", grid, (cuda_c.THREADS, 1, 1),
                  (grad_out, dx, ly, lx, rows, cols) + ints(h, w, out_h, out_w, n * c, h * w, out_h * out_w)[:5])


def _taps_on(array, in_hw, out_hw, scales, align_corners):
    import cupy
    return device_taps(tuple(int(s) for s in in_hw), tuple(int(s) for s in out_hw), tuple(scales),
                       bool(align_corners), array.dtype.name, cupy.cuda.runtime.getDevice())


def bilinear_forward_gpu(x, out_hw, scales, align_corners, xp):
    out = xp.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    if out.size:
        cuda_c.run(forward_launch(x, out, _taps_on(x, x.shape[2:], out_hw, scales, align_corners)))
    return out


def bilinear_backward_gpu(grad_out, x_shape, scales, align_corners, xp):
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    if dx.size:
        taps = _taps_on(grad_out, x_shape[2:], grad_out.shape[2:], scales, align_corners)
        cuda_c.run(backward_launch(grad_out, dx, taps))
    return dx
