"""Hand-written kernels for the hot loops, installed as ``minisegnet.kernels``.

Each hot loop has a folder with three twins side by side:

    reference.py  plain Python loops that read like the formula (tests and lessons)
    cpu.py        Numba CPU kernel (njit, parallel over planes, cached compile)
    cuda.py       Numba CUDA kernel (one thread per element), imported only for GPU arrays

The rule for which kernel runs is one line: **the array's device decides**. A
NumPy array goes to the ``cpu.py`` kernel, a CuPy array to the ``cuda.py`` kernel.
The plain-loop references are never picked automatically; call them directly.
The functions below are the only entry points the autodiff layer uses, so it
never knows which device kernel ran. They also allocate every kernel's output
(NumPy or CuPy), so the kernels themselves only fill arrays.

Shapes: x is (N, C, H, W); a convolution geometry is (kh, kw, sh, sw, ph, pw, dh, dw)
(kernel, stride, padding, dilation); a pooling geometry is (kh, kw, sh, sw, ph, pw).
"""
import numpy as np

from ..backend import is_cupy_array as _on_gpu
from .bilinear.cpu import bilinear_backward_cpu, bilinear_forward_cpu
from .bilinear.reference import source_taps
from .columns.cpu import col2im_cpu, im2col_cpu
from .crf.cpu import build_lattice_cpu, lattice_filter_cpu
from .crf.reference import scale_factors
from .pooling.cpu import (avg_pool_backward_cpu, avg_pool_forward_cpu, max_pool_backward_cpu,
                          max_pool_forward_cpu)


def _cupy():
    import cupy
    return cupy


def _ints(values):
    return tuple(int(v) for v in values)


def im2col(x, geometry, out_h, out_w):
    """x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w): every receptive field as a column."""
    if _on_gpu(x):
        from .columns.cuda import im2col_cuda
        cp = _cupy()
        return im2col_cuda(cp.ascontiguousarray(x), _ints(geometry), out_h, out_w, cp)
    cols = np.empty((x.shape[1] * geometry[0] * geometry[1], x.shape[0] * out_h * out_w), dtype=x.dtype)
    im2col_cpu(np.ascontiguousarray(x), _ints(geometry), out_h, out_w, cols)
    return cols


def col2im(cols, x_shape, geometry, out_h, out_w):
    """cols (C*kh*kw, N*out_h*out_w) -> (N, C, H, W), adding up entries that came from one pixel."""
    if _on_gpu(cols):
        from .columns.cuda import col2im_cuda
        cp = _cupy()
        return col2im_cuda(cp.ascontiguousarray(cols), _ints(x_shape), _ints(geometry), out_h, out_w, cp)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    col2im_cpu(np.ascontiguousarray(cols), _ints(geometry), out_h, out_w, dx)
    return dx


def max_pool_forward(x, geometry, out_h, out_w):
    """-> (out, argmax): the window maxima and the flat index iy*W + ix of each (first) maximum."""
    if _on_gpu(x):
        from .pooling.cuda import max_pool_forward_cuda
        cp = _cupy()
        return max_pool_forward_cuda(cp.ascontiguousarray(x), _ints(geometry), out_h, out_w, cp)
    out = np.empty(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    max_pool_forward_cpu(np.ascontiguousarray(x), _ints(geometry), out, argmax)
    return out, argmax


def max_pool_backward(grad_out, argmax, x_shape, geometry):
    if _on_gpu(grad_out):
        from .pooling.cuda import max_pool_backward_cuda
        cp = _cupy()
        return max_pool_backward_cuda(cp.ascontiguousarray(grad_out), argmax, _ints(x_shape), _ints(geometry), cp)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    max_pool_backward_cpu(np.ascontiguousarray(grad_out), argmax, dx)
    return dx


def avg_pool_forward(x, geometry, out_h, out_w):
    if _on_gpu(x):
        from .pooling.cuda import avg_pool_forward_cuda
        cp = _cupy()
        return avg_pool_forward_cuda(cp.ascontiguousarray(x), _ints(geometry), out_h, out_w, cp)
    out = np.empty(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
    avg_pool_forward_cpu(np.ascontiguousarray(x), _ints(geometry), out)
    return out


def avg_pool_backward(grad_out, x_shape, geometry):
    if _on_gpu(grad_out):
        from .pooling.cuda import avg_pool_backward_cuda
        cp = _cupy()
        return avg_pool_backward_cuda(cp.ascontiguousarray(grad_out), _ints(x_shape), _ints(geometry), cp)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    avg_pool_backward_cpu(np.ascontiguousarray(grad_out), _ints(geometry), dx)
    return dx


def bilinear_taps(in_hw, out_hw, scales, align_corners, dtype, xp=np):
    """(y0, y1, ly, x0, x1, lx): the source rows/columns and weights, on the device of ``xp``."""
    taps = []
    for in_size, out_size, scale in zip(in_hw, out_hw, scales):
        i0, i1, lam = source_taps(in_size, out_size, scale, align_corners)
        taps += [xp.asarray(i0), xp.asarray(i1), xp.asarray(lam.astype(dtype))]
    return tuple(taps)


def bilinear_forward(x, out_hw, scales, align_corners):
    """x (N, C, H, W) -> (N, C, out_h, out_w); scales = (in/out or 1/scale_factor) per axis."""
    xp = _cupy() if _on_gpu(x) else np
    taps = bilinear_taps(x.shape[2:], out_hw, scales, align_corners, x.dtype, xp)
    if xp is not np:
        from .bilinear.cuda import bilinear_forward_cuda
        return bilinear_forward_cuda(xp.ascontiguousarray(x), taps, xp)
    out = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    bilinear_forward_cpu(np.ascontiguousarray(x), *taps, out)
    return out


def bilinear_backward(grad_out, x_shape, scales, align_corners):
    xp = _cupy() if _on_gpu(grad_out) else np
    taps = bilinear_taps(x_shape[2:], grad_out.shape[2:], scales, align_corners, grad_out.dtype, xp)
    if xp is not np:
        from .bilinear.cuda import bilinear_backward_cuda
        return bilinear_backward_cuda(xp.ascontiguousarray(grad_out), _ints(x_shape), taps, xp)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    bilinear_backward_cpu(np.ascontiguousarray(grad_out), *taps, dx)
    return dx


def permutohedral_lattice(features):
    """features (N, d), divided by the kernel widths -> (corners (N, d+1), weights (N, d+1),
    neighbours (d+1, M, 2)), on the features' device. Built on the host either way: it fills a
    hash table, once per image (kernels/crf/cpu.py)."""
    host = features.get() if _on_gpu(features) else features
    host = np.ascontiguousarray(host, dtype=np.float64)
    n, d = host.shape
    corners = np.empty((n, d + 1), dtype=np.int64)
    weights = np.empty((n, d + 1), dtype=np.float64)
    neighbours = build_lattice_cpu(host, scale_factors(d), corners, weights)
    if _on_gpu(features):
        cp = _cupy()
        return cp.asarray(corners), cp.asarray(weights), cp.asarray(neighbours)
    return corners, weights, neighbours


def lattice_filter(values, lattice):
    """values (N, C) -> (N, C): splat onto the lattice, blur, slice (about a Gaussian sum over all pixels)."""
    corners, weights, neighbours = lattice
    if _on_gpu(values):
        from .crf.cuda import lattice_filter_cuda
        cp = _cupy()
        return lattice_filter_cuda(cp.ascontiguousarray(values), corners, weights, neighbours, cp)
    out = np.empty_like(values)
    lattice_filter_cpu(np.ascontiguousarray(values), corners, weights, neighbours, out)
    return out
