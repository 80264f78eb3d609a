"""Max and average pooling as Numba CPU kernels: ``reference.py``'s loops, compiled
and run in parallel over (image, channel) planes (each plane is independent, so
threads never write the same element). Window arithmetic, and the rules for NaN and for
a window of -infinity alone, as in ``reference.py``. Outputs are allocated by the caller
with NumPy (see ``columns/cpu.py`` for why); gradients arrive zeroed."""
import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _window(o, stride, pad, kernel, size):
    start = o * stride - pad
    end_padded = min(start + kernel, size + pad)
    return max(start, 0), min(end_padded, size), end_padded - start


@njit(parallel=True, cache=True)
def max_pool_forward_cpu(x, geometry, out, argmax):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            y0, y1, _ = _window(oy, sh, ph, kh, height)
            for ox in range(out_w):
                x0, x1, _ = _window(ox, sw, pw, kw, width)
                best = -np.inf
                best_index = y0 * width + x0  # a window of -inf alone: its first pixel
                nan_seen = False
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        v = x[n, c, iy, ix]
                        if v > best:  # strict: ties keep the first in row-major order
                            best = v
                            best_index = iy * width + ix
                        nan_seen |= v != v  # v != v: v is NaN
                if nan_seen:  # rare, so off the fast path: a NaN wins, and the last NaN takes the gradient
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            v = x[n, c, iy, ix]
                            if v != v:
                                best = v
                                best_index = iy * width + ix
                out[n, c, oy, ox] = best
                argmax[n, c, oy, ox] = best_index


@njit(parallel=True, cache=True)
def max_pool_backward_cpu(grad_out, argmax, dx):
    n_images, channels, out_h, out_w = grad_out.shape
    width = dx.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            for ox in range(out_w):
                k = argmax[n, c, oy, ox]
                dx[n, c, k // width, k % width] += grad_out[n, c, oy, ox]


@njit(parallel=True, cache=True)
def avg_pool_forward_cpu(x, geometry, out):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            y0, y1, count_y = _window(oy, sh, ph, kh, height)
            for ox in range(out_w):
                x0, x1, count_x = _window(ox, sw, pw, kw, width)
                total = 0.0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        total += x[n, c, iy, ix]
                out[n, c, oy, ox] = total / (count_y * count_x)


@njit(parallel=True, cache=True)
def avg_pool_backward_cpu(grad_out, geometry, dx):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, out_h, out_w = grad_out.shape
    height, width = dx.shape[2], dx.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oy in range(out_h):
            y0, y1, count_y = _window(oy, sh, ph, kh, height)
            for ox in range(out_w):
                x0, x1, count_x = _window(ox, sw, pw, kw, width)
                share = grad_out[n, c, oy, ox] / (count_y * count_x)
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        dx[n, c, iy, ix] += share
