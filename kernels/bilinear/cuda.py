"""Bilinear resizing as Numba CUDA kernels, twins of ``cpu.py``.

Forward: one thread per output pixel. Backward: one thread per *input* pixel, gathering
from the outputs that read it. Scattering from each output into its four source pixels
would need ``cuda.atomic.add`` (several outputs share a source), and atomic adds land in
a different order on every run, so the gradient would not be reproducible bit for bit.
The gather is possible because the taps are monotonic: the outputs whose first tap
(``i0``) is input row i form one contiguous range, and so do those whose second tap
(``i1``) is row i (``_outputs_reading``), whatever the scale.
"""
import math

from numba import cuda

from .gpu import outputs_reading as _outputs_reading  # (shared with the CUDA C launcher)

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
def _bilinear_backward_kernel(grad_out, dx, ly, lx, rows, cols):
    """dx[n, c, iy, ix] = sum over the outputs (oy, ox) that read (iy, ix) of wy * wx * grad_out[n, c, oy, ox],
    where wy is 1 - ly[oy] when iy is oy's first tap and ly[oy] when it is its second (the same for x).
    rows (4, H): for each input row, [first, end) of the outputs whose first tap is it, then of those whose
    second tap is it; cols (4, W) the same for columns. A fixed order of additions: deterministic."""
    index = cuda.grid(1)
    if index >= dx.size:
        return
    n_images, channels, height, width = dx.shape
    ix = index % width
    iy = (index // width) % height
    c = (index // (width * height)) % channels
    n = index // (width * height * channels)
    one = dx.dtype.type(1)
    total = dx.dtype.type(0)
    for tap_y in range(2):
        for oy in range(rows[2 * tap_y, iy], rows[2 * tap_y + 1, iy]):
            wy = ly[oy] if tap_y == 1 else one - ly[oy]
            for tap_x in range(2):
                for ox in range(cols[2 * tap_x, ix], cols[2 * tap_x + 1, ix]):
                    wx = lx[ox] if tap_x == 1 else one - lx[ox]
                    total += wy * wx * grad_out[n, c, oy, ox]
    dx[n, c, iy, ix] = total


def bilinear_forward_cuda(x, taps, xp):
    y0, y1, ly, x0, x1, lx = taps
    out = xp.empty((x.shape[0], x.shape[1], y0.shape[0], x0.shape[0]), dtype=x.dtype)
    _bilinear_forward_kernel[_blocks(out.size), THREADS](x, out, *taps)
    return out


def bilinear_backward_cuda(grad_out, x_shape, taps, xp):
    y0, y1, ly, x0, x1, lx = taps
    rows, cols = _outputs_reading(y0, y1, x_shape[2], xp), _outputs_reading(x0, x1, x_shape[3], xp)
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    _bilinear_backward_kernel[_blocks(dx.size), THREADS](grad_out, dx, ly, lx, rows, cols)
    return dx
