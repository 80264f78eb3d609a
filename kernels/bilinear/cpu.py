"""Bilinear resizing as Numba CPU kernels: ``reference.py``'s loops compiled and run
in parallel over (image, channel) planes. The source taps (i0, i1, lam per output
row and column) are computed by ``reference.source_taps`` (once per size, cached by the
dispatcher) and passed in, and so is the output, allocated by the caller with NumPy (see
``columns/cpu.py`` for why)."""
from numba import njit, prange


@njit(parallel=True, cache=True)
def bilinear_forward_cpu(x, y0, y1, ly, x0, x1, lx, out):
    n_images, channels = x.shape[0], x.shape[1]
    out_h, out_w = y0.shape[0], x0.shape[0]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            wy = ly[oy]
            for ox in range(out_w):
                wx = lx[ox]
                top = (1 - wx) * x[n, c, y0[oy], x0[ox]] + wx * x[n, c, y0[oy], x1[ox]]
                bottom = (1 - wx) * x[n, c, y1[oy], x0[ox]] + wx * x[n, c, y1[oy], x1[ox]]
                out[n, c, oy, ox] = (1 - wy) * top + wy * bottom


@njit(parallel=True, cache=True)
def bilinear_backward_cpu(grad_out, y0, y1, ly, x0, x1, lx, dx):
    n_images, channels = grad_out.shape[0], grad_out.shape[1]
    out_h, out_w = y0.shape[0], x0.shape[0]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            wy = ly[oy]
            for ox in range(out_w):
                wx = lx[ox]
                g = grad_out[n, c, oy, ox]
                dx[n, c, y0[oy], x0[ox]] += (1 - wy) * (1 - wx) * g
                dx[n, c, y0[oy], x1[ox]] += (1 - wy) * wx * g
                dx[n, c, y1[oy], x0[ox]] += wy * (1 - wx) * g
                dx[n, c, y1[oy], x1[ox]] += wy * wx * g
