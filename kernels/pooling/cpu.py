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


@njit(cache=True)
def _window_table(out_size, stride, pad, kernel, size):
    """(starts, ends, counts) of every window along one axis (``_window`` for o = 0 .. out_size - 1)."""
    starts, ends, counts = np.empty(out_size, np.int64), np.empty(out_size, np.int64), np.empty(out_size, np.int64)
    for o in range(out_size):
        starts[o], ends[o], counts[o] = _window(o, stride, pad, kernel, size)
    return starts, ends, counts


# Average pooling is separable: a window's sum is a sum over its rows of sums over its columns, and its
# divisor count_y * count_x is a product. So each plane is done in two passes, first along the rows
# (row_sums[iy, ox]: the window columns of output column ox, in input row iy) and then down the columns,
# adding whole rows at a time (slices that the compiler vectorises). That reads each input pixel about
# kw + kh times where the window-by-window loop of reference.py reads it kh * kw times (9 -> 6 for 3x3).
# Arithmetic stays in the arrays' dtype (float32 in, float32 sums). The order of the additions differs
# from the reference's, so float32 results agree with it to rounding, not bit for bit.

@njit(parallel=True, cache=True)
def avg_pool_forward_cpu(x, geometry, out):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    y_start, y_end, count_y = _window_table(out_h, sh, ph, kh, height)
    x_start, x_end, count_x = _window_table(out_w, sw, pw, kw, width)
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        row_sums = np.zeros((height, out_w), dtype=x.dtype)
        for iy in range(height):
            for ox in range(out_w):
                for ix in range(x_start[ox], x_end[ox]):
                    row_sums[iy, ox] += x[n, c, iy, ix]
        for oy in range(out_h):
            total = out[n, c, oy]
            total[:] = 0
            for iy in range(y_start[oy], y_end[oy]):
                total += row_sums[iy]
            for ox in range(out_w):
                total[ox] /= count_y[oy] * count_x[ox]


@njit(parallel=True, cache=True)
def avg_pool_backward_cpu(grad_out, geometry, dx):
    """The adjoint of the two passes, in reverse: each output's share g / (count_y * count_x) goes to the
    rows of its window (whole rows at a time), then each row's shares to the columns of their windows."""
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, out_h, out_w = grad_out.shape
    height, width = dx.shape[2], dx.shape[3]
    y_start, y_end, count_y = _window_table(out_h, sh, ph, kh, height)
    x_start, x_end, count_x = _window_table(out_w, sw, pw, kw, width)
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        row_shares = np.zeros((height, out_w), dtype=dx.dtype)
        share = np.empty(out_w, dtype=dx.dtype)
        for oy in range(out_h):
            for ox in range(out_w):
                share[ox] = grad_out[n, c, oy, ox] / (count_y[oy] * count_x[ox])
            for iy in range(y_start[oy], y_end[oy]):
                row_shares[iy] += share
        for iy in range(height):
            for ox in range(out_w):
                g = row_shares[iy, ox]
                for ix in range(x_start[ox], x_end[ox]):
                    dx[n, c, iy, ix] += g
