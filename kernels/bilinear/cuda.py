"""Bilinear resizing as Numba CUDA kernels, twins of ``cpu.py``.

Forward: one thread per output pixel. Backward: one thread per *output* pixel
scattering into its four source pixels with ``cuda.atomic.add``, because several
outputs share a source and the set of outputs that read a given input is awkward
to enumerate when the scale is not an integer.
"""
import math

from numba import cuda

THREADS = 256


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


@cuda.jit
def _bilinear_forward_kernel(x, out, y0, y1, ly, x0, x1, lx):
    index = cuda.grid(1)
    if index >= out.size:
        return
    n_images, channels, out_h, out_w = out.shape
    ox = index % out_w
    oy = (index // out_w) % out_h
    c = (index // (out_w * out_h)) % channels
    n = index // (out_w * out_h * channels)
    wy = ly[oy]
    wx = lx[ox]
    one = x.dtype.type(1)  # a bare 1 - wx would be computed in float64
    top = (one - wx) * x[n, c, y0[oy], x0[ox]] + wx * x[n, c, y0[oy], x1[ox]]
    bottom = (one - wx) * x[n, c, y1[oy], x0[ox]] + wx * x[n, c, y1[oy], x1[ox]]
    out[n, c, oy, ox] = (one - wy) * top + wy * bottom


@cuda.jit
def _bilinear_backward_kernel(grad_out, dx, y0, y1, ly, x0, x1, lx):
    index = cuda.grid(1)
    if index >= grad_out.size:
        return
    n_images, channels, out_h, out_w = grad_out.shape
    ox = index % out_w
    oy = (index // out_w) % out_h
    c = (index // (out_w * out_h)) % channels
    n = index // (out_w * out_h * channels)
    wy = ly[oy]
    wx = lx[ox]
    g = grad_out[n, c, oy, ox]
    one = dx.dtype.type(1)
    cuda.atomic.add(dx, (n, c, y0[oy], x0[ox]), (one - wy) * (one - wx) * g)
    cuda.atomic.add(dx, (n, c, y0[oy], x1[ox]), (one - wy) * wx * g)
    cuda.atomic.add(dx, (n, c, y1[oy], x0[ox]), wy * (one - wx) * g)
    cuda.atomic.add(dx, (n, c, y1[oy], x1[ox]), wy * wx * g)


def bilinear_forward_cuda(x, taps, xp):
    y0, y1, ly, x0, x1, lx = taps
    out = xp.empty((x.shape[0], x.shape[1], y0.shape[0], x0.shape[0]), dtype=x.dtype)
    _bilinear_forward_kernel[_blocks(out.size), THREADS](x, out, *taps)
    return out


def bilinear_backward_cuda(grad_out, x_shape, taps, xp):
    dx = xp.zeros(x_shape, dtype=grad_out.dtype)
    _bilinear_backward_kernel[_blocks(grad_out.size), THREADS](grad_out, dx, *taps)
    return dx
