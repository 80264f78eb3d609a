"""Max and average pooling as Numba CPU kernels: ``reference.py``'s loops, compiled
and run in parallel over (image, channel) planes (each plane is independent, so
threads never write the same element). Window arithmetic, and the rules for NaN and for
a window of -infinity alone, as in ``reference.py``. Outputs are allocated by the caller
with NumPy (see ``columns/cpu.py`` for why); gradients arrive zeroed.

Each kernel is one plane's loops (``_..._plane``, inlined) and two drivers: ``*_cpu`` runs the
planes on every core (``prange``), ``*_cpu_serial`` in the calling thread. Waking Numba's thread
pool costs about 100 us on a shared VM, more than a small map's work (kernels/parallel.py decides)."""
import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _window(o, stride, pad, kernel, size):
    start = o * stride - pad
    end_padded = min(start + kernel, size + pad)
    return max(start, 0), min(end_padded, size), end_padded - start


# Indices into the flat arrays are unsigned (``U``), as in columns/cpu.py: Numba compiles a signed
# index with a check for Python's negative indices, a branch on every read. With them, and the 2x2
# fast path below, 2x2 max pooling of 4 x 16 x 64 x 64 floats on one core went from 1.02 to 0.28 ms
# forward and from 0.52 to 0.20 ms backward.
U = np.uintp
I = np.int64


@njit(inline="always", cache=True)
def _max_pool_plane(x_flat, out_flat, argmax_flat, plane, geometry, height, width, out_h, out_w):
    kh, kw, sh, sw, ph, pw = geometry
    x_plane, out_plane = U(plane * height * width), U(plane * out_h * out_w)
    for oy in range(out_h):
        y0, y1, _ = _window(oy, sh, ph, kh, height)
        for ox in range(out_w):
            x0, x1, _ = _window(ox, sw, pw, kw, width)
            best = -np.inf
            best_index = I(y0 * width + x0)  # a window of -inf alone: its first pixel
            nan_seen = False
            for iy in range(U(y0), U(y1)):
                row = x_plane + iy * U(width)
                for ix in range(U(x0), U(x1)):
                    v = x_flat[row + ix]
                    if v > best:  # strict: ties keep the first in row-major order
                        best = v
                        best_index = I(iy * U(width) + ix)
                    nan_seen |= v != v  # v != v: v is NaN
            if nan_seen:  # rare, so off the fast path: a NaN wins, and the last NaN takes the gradient
                best, best_index = _last_nan(x_flat, x_plane, width, y0, y1, x0, x1)
            at = out_plane + U(oy * out_w + ox)
            out_flat[at] = best
            argmax_flat[at] = best_index


@njit(inline="always", cache=True)
def _whole_2x2(geometry, height, width, out_h, out_w):
    """The backbone's pooling, 2x2 at stride 2 with every window inside the image: no window arithmetic."""
    kh, kw, sh, sw, ph, pw = geometry
    return kh == kw == sh == sw == 2 and ph == pw == 0 and out_h * 2 <= height and out_w * 2 <= width


@njit(inline="always", cache=True)
def _last_nan(x_flat, x_plane, width, y0, y1, x0, x1):
    """(NaN, its flat index iy*W + ix) for the last NaN of a window in row-major order."""
    best, best_index = np.nan, I(-1)
    for iy in range(U(y0), U(y1)):
        for ix in range(U(x0), U(x1)):
            v = x_flat[x_plane + iy * U(width) + ix]
            if v != v:
                best, best_index = v, I(iy * U(width) + ix)
    return best, best_index


@njit(inline="always", cache=True)
def _max_pool_2x2_plane(x_flat, out_flat, argmax_flat, plane, height, width, out_h, out_w):
    """2x2 windows at stride 2 that all lie inside the image: the four pixels a, b (top row), c, d of each,
    compared in row-major order with strict > (the first maximum wins a tie), written as selects
    rather than branches; the same rules as the general loop above, NaN included."""
    x_plane, out_plane = U(plane * height * width), U(plane * out_h * out_w)
    for oy in range(U(out_h)):
        top = x_plane + U(2) * oy * U(width)
        for ox in range(U(out_w)):
            i = top + U(2) * ox
            a, b, c, d = x_flat[i], x_flat[i + U(1)], x_flat[i + U(width)], x_flat[i + U(width) + U(1)]
            corner = I(2 * oy * U(width) + U(2) * ox)  # flat index of a in its plane
            best, best_index = a, corner
            best_index = corner + 1 if b > best else best_index
            best = b if b > best else best
            best_index = corner + width if c > best else best_index
            best = c if c > best else best
            best_index = corner + width + 1 if d > best else best_index
            best = d if d > best else best
            if (a != a) | (b != b) | (c != c) | (d != d):  # rare: the last NaN wins
                best, best_index = _last_nan(x_flat, x_plane, width, I(2 * oy), I(2 * oy + 2), I(2 * ox), I(2 * ox + 2))
            at = out_plane + oy * U(out_w) + ox
            out_flat[at] = best
            argmax_flat[at] = best_index


@njit(inline="always", cache=True)
def _max_pool_forward_plane(x, geometry, out, argmax, plane):
    height, width, out_h, out_w = x.shape[2], x.shape[3], out.shape[2], out.shape[3]
    x_flat, out_flat, argmax_flat = x.reshape(-1), out.reshape(-1), argmax.reshape(-1)
    if _whole_2x2(geometry, height, width, out_h, out_w):
        _max_pool_2x2_plane(x_flat, out_flat, argmax_flat, plane, height, width, out_h, out_w)
    else:
        _max_pool_plane(x_flat, out_flat, argmax_flat, plane, geometry, height, width, out_h, out_w)


@njit(parallel=True, cache=True)
def max_pool_forward_cpu(x, geometry, out, argmax):
    for plane in prange(x.shape[0] * x.shape[1]):
        _max_pool_forward_plane(x, geometry, out, argmax, plane)


@njit(nogil=True, cache=True)
def max_pool_forward_cpu_serial(x, geometry, out, argmax):
    for plane in range(x.shape[0] * x.shape[1]):
        _max_pool_forward_plane(x, geometry, out, argmax, plane)


@njit(inline="always", cache=True)
def _max_pool_backward_plane(grad_out, argmax, dx, plane):
    plane_in, plane_out = dx.shape[2] * dx.shape[3], grad_out.shape[2] * grad_out.shape[3]
    grad_flat, argmax_flat, dx_flat = grad_out.reshape(-1), argmax.reshape(-1), dx.reshape(-1)
    for o in range(U(plane * plane_out), U((plane + 1) * plane_out)):
        dx_flat[U(plane * plane_in) + U(argmax_flat[o])] += grad_flat[o]


@njit(parallel=True, cache=True)
def max_pool_backward_cpu(grad_out, argmax, dx):
    for plane in prange(grad_out.shape[0] * grad_out.shape[1]):
        _max_pool_backward_plane(grad_out, argmax, dx, plane)


@njit(nogil=True, cache=True)
def max_pool_backward_cpu_serial(grad_out, argmax, dx):
    for plane in range(grad_out.shape[0] * grad_out.shape[1]):
        _max_pool_backward_plane(grad_out, argmax, dx, plane)


@njit(cache=True)
def _window_table(out_size, stride, pad, kernel, size):
    """(starts, ends, counts) of every window along one axis (``_window`` for o = 0 .. out_size - 1)."""
    starts, ends, counts = np.empty(out_size, np.int64), np.empty(out_size, np.int64), np.empty(out_size, np.int64)
    for o in range(out_size):
        starts[o], ends[o], counts[o] = _window(o, stride, pad, kernel, size)
    return starts, ends, counts


@njit(cache=True)
def _window_tables(geometry, in_shape, out_shape):
    """The window tables of both axes: (y_start, y_end, count_y, x_start, x_end, count_x)."""
    kh, kw, sh, sw, ph, pw = geometry
    return (_window_table(out_shape[2], sh, ph, kh, in_shape[2]) +
            _window_table(out_shape[3], sw, pw, kw, in_shape[3]))


# Average pooling is separable: a window's sum is a sum over its rows of sums over its columns, and its
# divisor count_y * count_x is a product. So each plane is done in two passes, first along the rows
# (row_sums[iy, ox]: the window columns of output column ox, in input row iy) and then down the columns,
# adding whole rows at a time (slices that the compiler vectorises). That reads each input pixel about
# kw + kh times where the window-by-window loop of reference.py reads it kh * kw times (9 -> 6 for 3x3).
# Arithmetic stays in the arrays' dtype (float32 in, float32 sums). The order of the additions differs
# from the reference's, so float32 results agree with it to rounding, not bit for bit.

@njit(inline="always", cache=True)
def _avg_pool_plane(x, out, plane, tables):
    y_start, y_end, count_y, x_start, x_end, count_x = tables  # (_window_tables)
    channels, height = x.shape[1], x.shape[2]
    out_h, out_w = out.shape[2], out.shape[3]
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
def avg_pool_forward_cpu(x, geometry, out):
    tables = _window_tables(geometry, x.shape, out.shape)
    for plane in prange(x.shape[0] * x.shape[1]):
        _avg_pool_plane(x, out, plane, tables)


@njit(nogil=True, cache=True)
def avg_pool_forward_cpu_serial(x, geometry, out):
    tables = _window_tables(geometry, x.shape, out.shape)
    for plane in range(x.shape[0] * x.shape[1]):
        _avg_pool_plane(x, out, plane, tables)


@njit(inline="always", cache=True)
def _avg_pool_backward_plane(grad_out, dx, plane, tables):
    """The adjoint of the two passes, in reverse: each output's share g / (count_y * count_x) goes to the
    rows of its window (whole rows at a time), then each row's shares to the columns of their windows."""
    y_start, y_end, count_y, x_start, x_end, count_x = tables  # (_window_tables)
    channels, out_h, out_w = grad_out.shape[1], grad_out.shape[2], grad_out.shape[3]
    height = dx.shape[2]
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


@njit(parallel=True, cache=True)
def avg_pool_backward_cpu(grad_out, geometry, dx):
    tables = _window_tables(geometry, dx.shape, grad_out.shape)
    for plane in prange(grad_out.shape[0] * grad_out.shape[1]):
        _avg_pool_backward_plane(grad_out, dx, plane, tables)


@njit(nogil=True, cache=True)
def avg_pool_backward_cpu_serial(grad_out, geometry, dx):
    tables = _window_tables(geometry, dx.shape, grad_out.shape)
    for plane in range(grad_out.shape[0] * grad_out.shape[1]):
        _avg_pool_backward_plane(grad_out, dx, plane, tables)
