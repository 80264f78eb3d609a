"""im2col / col2im as Numba CPU kernels: the reference loops, reordered for speed.

Same index arithmetic as ``reference.py``; the differences are all about speed:
the loops are compiled (``njit``), the outer loop runs on all cores
(``prange`` over (image, channel) planes: each plane writes its own block of
``cols`` / its own plane of ``dx``, so no two threads ever write the same
element), and the loop order keeps the innermost loop walking memory
contiguously. ``cache=True`` stores the compiled code next to this file, so only
the first process after an install pays the compile.
"""
import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def im2col_cpu(x, geometry, out_h, out_w):
    """x (N, C, H, W) -> cols (C*kh*kw, N*out_h*out_w). geometry = (kh, kw, sh, sw, ph, pw, dh, dw)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = x.shape
    cols = np.empty((channels * kh * kw, n_images * out_h * out_w), dtype=x.dtype)
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for ky in range(kh):
            for kx in range(kw):
                row = (c * kh + ky) * kw + kx
                for oy in range(out_h):
                    iy = oy * sh - ph + ky * dh
                    start = (n * out_h + oy) * out_w
                    if iy < 0 or iy >= height:
                        for ox in range(out_w):
                            cols[row, start + ox] = 0
                        continue
                    for ox in range(out_w):
                        ix = ox * sw - pw + kx * dw
                        if 0 <= ix < width:
                            cols[row, start + ox] = x[n, c, iy, ix]
                        else:
                            cols[row, start + ox] = 0
    return cols


@njit(parallel=True, cache=True)
def col2im_cpu(cols, x_shape, geometry, out_h, out_w):
    """cols (C*kh*kw, N*out_h*out_w) -> dx (N, C, H, W), summing entries that share a pixel."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = x_shape
    dx = np.zeros((n_images, channels, height, width), dtype=cols.dtype)
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for ky in range(kh):
            for kx in range(kw):
                row = (c * kh + ky) * kw + kx
                for oy in range(out_h):
                    iy = oy * sh - ph + ky * dh
                    if iy < 0 or iy >= height:
                        continue
                    start = (n * out_h + oy) * out_w
                    for ox in range(out_w):
                        ix = ox * sw - pw + kx * dw
                        if 0 <= ix < width:
                            dx[n, c, iy, ix] += cols[row, start + ox]
    return dx
