"""Max and average pooling as Numba CUDA kernels, twins of ``cpu.py``.

Forward: one thread per output element, the same window loop as the CPU kernel (and
the same rules for NaN and for a window of -infinity alone, see ``reference.py``).
Backward: one thread per *input* pixel, which gathers from every output window
that contains it (outputs oy with oy*sh - ph <= iy < oy*sh - ph + kh). Each
thread writes only its own pixel: no atomics, deterministic sums.
"""
import math

from numba import cuda

THREADS = 256


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


@cuda.jit(device=True, inline=True)
def _window(o, stride, pad, kernel, size):
    start = o * stride - pad
    end_padded = min(start + kernel, size + pad)
    return max(start, 0), min(end_padded, size), end_padded - start


@cuda.jit(device=True, inline=True)
def _outputs_covering(i, stride, pad, kernel, out_size):
    """Outputs [first, last) whose window contains input position i."""
    first = max(0, (i + pad - kernel + stride) // stride)  # ceil((i + pad - kernel + 1) / stride)
    last = min(out_size, (i + pad) // stride + 1)
    return first, last


@cuda.jit
def _max_pool_forward_kernel(x, out, argmax, kh, kw, sh, sw, ph, pw):
    index = cuda.grid(1)
    if index >= out.size:
        return
    n_images, channels, out_h, out_w = out.shape
    height, width = x.shape[2], x.shape[3]
    ox = index % out_w
    oy = (index // out_w) % out_h
    c = (index // (out_w * out_h)) % channels
    n = index // (out_w * out_h * channels)
    y0, y1, _ = _window(oy, sh, ph, kh, height)
    x0, x1, _ = _window(ox, sw, pw, kw, width)
    best = x.dtype.type(-math.inf)  # in the array's dtype: a bare -math.inf would make best a float64
    best_index = y0 * width + x0  # a window of -inf alone: its first pixel
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            v = x[n, c, iy, ix]
            # strict: ties keep the first in row-major order; a NaN always wins (PyTorch)
            if v > best or math.isnan(v):
                best = v
                best_index = iy * width + ix
    out[n, c, oy, ox] = best
    argmax[n, c, oy, ox] = best_index


@cuda.jit
def _max_pool_backward_kernel(grad_out, argmax, dx, kh, kw, sh, sw, ph, pw):
    index = cuda.grid(1)
    if index >= dx.size:
        return
    n_images, channels, height, width = dx.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    ix = index % width
    iy = (index // width) % height
    c = (index // (width * height)) % channels
    n = index // (width * height * channels)
    me = iy * width + ix
    oy0, oy1 = _outputs_covering(iy, sh, ph, kh, out_h)
    ox0, ox1 = _outputs_covering(ix, sw, pw, kw, out_w)
    total = dx.dtype.type(0)
    for oy in range(oy0, oy1):
        for ox in range(ox0, ox1):
            if argmax[n, c, oy, ox] == me:
                total += grad_out[n, c, oy, ox]
    dx[n, c, iy, ix] = total


@cuda.jit
def _avg_pool_forward_kernel(x, out, kh, kw, sh, sw, ph, pw):
    index = cuda.grid(1)
    if index >= out.size:
        return
    n_images, channels, out_h, out_w = out.shape
    height, width = x.shape[2], x.shape[3]
    ox = index % out_w
    oy = (index // out_w) % out_h
    c = (index // (out_w * out_h)) % channels
    n = index // (out_w * out_h * channels)
    y0, y1, count_y = _window(oy, sh, ph, kh, height)
    x0, x1, count_x = _window(ox, sw, pw, kw, width)
    total = x.dtype.type(0)
    for iy in range(y0, y1):
        for ix in range(x0, x1):
            total += x[n, c, iy, ix]
    out[n, c, oy, ox] = total / x.dtype.type(count_y * count_x)  # (an integer divisor would promote to float64)


@cuda.jit
def _avg_pool_backward_kernel(grad_out, dx, kh, kw, sh, sw, ph, pw):
    index = cuda.grid(1)
    if index >= dx.size:
        return
    n_images, channels, height, width = dx.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    ix = index % width
    iy = (index // width) % height
    c = (index // (width * height)) % channels
    n = index // (width * height * channels)
    oy0, oy1 = _outputs_covering(iy, sh, ph, kh, out_h)
    ox0, ox1 = _outputs_covering(ix, sw, pw, kw, out_w)
    total = dx.dtype.type(0)
    for oy in range(oy0, oy1):
        _, _, count_y = _window(oy, sh, ph, kh, height)
        for ox in range(ox0, ox1):
            _, _, count_x = _window(ox, sw, pw, kw, width)
            total += grad_out[n, c, oy, ox] / dx.dtype.type(count_y * count_x)
    dx[n, c, iy, ix] = total


def max_pool_forward_cuda(x, geometry, out_h, out_w, xp):
    shape = (x.shape[0], x.shape[1], out_h, out_w)
    out = xp.empty(shape, dtype=x.dtype)
    argmax = xp.empty(shape, dtype=xp.int64)
    _max_pool_forward_kernel[_blocks(out.size), THREADS](x, out, argmax, *geometry)
    return out, argmax


def max_pool_backward_cuda(grad_out, argmax, x_shape, geometry, xp):
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    _max_pool_backward_kernel[_blocks(dx.size), THREADS](grad_out, argmax, dx, *geometry)
    return dx


def avg_pool_forward_cuda(x, geometry, out_h, out_w, xp):
    out = xp.empty((x.shape[0], x.shape[1], out_h, out_w), dtype=x.dtype)
    _avg_pool_forward_kernel[_blocks(out.size), THREADS](x, out, *geometry)
    return out


def avg_pool_backward_cuda(grad_out, x_shape, geometry, xp):
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    _avg_pool_backward_kernel[_blocks(dx.size), THREADS](grad_out, dx, *geometry)
    return dx
