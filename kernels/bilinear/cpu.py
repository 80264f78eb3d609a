"""Bilinear resizing as Numba CPU kernels: ``reference.py``'s loops compiled and run
in parallel over (image, channel) planes. The source taps (i0, i1, lam per output
row and column) are computed by ``reference.source_taps`` (once per size, cached by the
dispatcher) and passed in, and so is the output, allocated by the caller with NumPy (see
``columns/cpu.py`` for why). As in ``pooling/cpu.py``: one plane's loops, inlined into a
parallel driver (``*_cpu``) and a serial one (``*_cpu_serial``, for small maps)."""
import numpy as np
from numba import njit, prange


# Indices are unsigned (``U``) and the planes flat, as in columns/cpu.py: a signed index makes Numba
# check for Python's negative indices on every read and write.
U = np.uintp


@njit(inline="always", cache=True)
def _bilinear_plane(x_flat, y0, y1, ly, x0, x1, lx, out_flat, plane, height, width, one):
    out_h, out_w = y0.shape[0], x0.shape[0]
    x_plane, out_plane = U(plane * height * width), U(plane * out_h * out_w)
    for oy in range(U(out_h)):
        wy = ly[oy]
        top_row, bottom_row = x_plane + U(y0[oy] * width), x_plane + U(y1[oy] * width)
        out_row = out_plane + oy * U(out_w)
        for ox in range(U(out_w)):
            wx = lx[ox]
            left, right = U(x0[ox]), U(x1[ox])
            top = (one - wx) * x_flat[top_row + left] + wx * x_flat[top_row + right]
            bottom = (one - wx) * x_flat[bottom_row + left] + wx * x_flat[bottom_row + right]
            out_flat[out_row + ox] = (one - wy) * top + wy * bottom


@njit(parallel=True, cache=True)
def bilinear_forward_cpu(x, y0, y1, ly, x0, x1, lx, out):
    n_images, channels, height, width = x.shape
    x_flat, out_flat = x.reshape(-1), out.reshape(-1)
    for plane in prange(n_images * channels):
        _bilinear_plane(x_flat, y0, y1, ly, x0, x1, lx, out_flat, plane, height, width, x.dtype.type(1))


@njit(nogil=True, cache=True)
def bilinear_forward_cpu_serial(x, y0, y1, ly, x0, x1, lx, out):
    n_images, channels, height, width = x.shape
    x_flat, out_flat = x.reshape(-1), out.reshape(-1)
    for plane in range(n_images * channels):
        _bilinear_plane(x_flat, y0, y1, ly, x0, x1, lx, out_flat, plane, height, width, x.dtype.type(1))


@njit(inline="always", cache=True)
def _bilinear_backward_plane(grad_flat, y0, y1, ly, x0, x1, lx, dx_flat, plane, height, width, one):
    out_h, out_w = y0.shape[0], x0.shape[0]
    dx_plane, grad_plane = U(plane * height * width), U(plane * out_h * out_w)
    for oy in range(U(out_h)):
        wy = ly[oy]
        top_row, bottom_row = dx_plane + U(y0[oy] * width), dx_plane + U(y1[oy] * width)
        grad_row = grad_plane + oy * U(out_w)
        for ox in range(U(out_w)):
            wx = lx[ox]
            left, right = U(x0[ox]), U(x1[ox])
            g = grad_flat[grad_row + ox]
            dx_flat[top_row + left] += (one - wy) * (one - wx) * g
            dx_flat[top_row + right] += (one - wy) * wx * g
            dx_flat[bottom_row + left] += wy * (one - wx) * g
            dx_flat[bottom_row + right] += wy * wx * g


@njit(parallel=True, cache=True)
def bilinear_backward_cpu(grad_out, y0, y1, ly, x0, x1, lx, dx):
    n_images, channels, height, width = dx.shape
    grad_flat, dx_flat = grad_out.reshape(-1), dx.reshape(-1)
    for plane in prange(n_images * channels):
        _bilinear_backward_plane(grad_flat, y0, y1, ly, x0, x1, lx, dx_flat, plane, height, width, dx.dtype.type(1))


@njit(nogil=True, cache=True)
def bilinear_backward_cpu_serial(grad_out, y0, y1, ly, x0, x1, lx, dx):
    n_images, channels, height, width = dx.shape
    grad_flat, dx_flat = grad_out.reshape(-1), dx.reshape(-1)
    for plane in range(n_images * channels):
        _bilinear_backward_plane(grad_flat, y0, y1, ly, x0, x1, lx, dx_flat, plane, height, width, dx.dtype.type(1))
