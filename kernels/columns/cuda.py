"""im2col / col2im as Numba CUDA kernels, twins of ``cpu.py``.

One thread per output element instead of one loop iteration:

* im2col: thread (n, row, column) of ``cols`` (N, C*kh*kw, out_h*out_w) reads the one pixel
  it copies;
* col2im: thread (n, c, iy, ix) of ``dx`` *gathers* every column entry that came
  from its pixel (the inverse of the im2col index map), so no two threads write
  the same element and no atomics are needed: the result is deterministic.

The launchers accept any array exposing ``__cuda_array_interface__`` (CuPy on a
GPU) and, under Numba's CUDA simulator, NumPy arrays, which is how CI tests
these kernels without a GPU.
"""
import math

from numba import cuda

THREADS = 256


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


@cuda.jit
def _im2col_kernel(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w):
    index = cuda.grid(1)
    n_images, n_rows, n_cols = cols.shape
    if index >= n_images * n_rows * n_cols:
        return
    # index = (n*n_rows + row)*n_cols + col, with row = (c*kh + ky)*kw + kx and col = oy*out_w + ox
    col = index % n_cols
    row = (index // n_cols) % n_rows
    n = index // (n_cols * n_rows)
    c = row // (kh * kw)
    ky = (row // kw) % kh
    kx = row % kw
    oy = col // out_w
    ox = col % out_w
    iy = oy * sh - ph + ky * dh
    ix = ox * sw - pw + kx * dw
    if 0 <= iy < x.shape[2] and 0 <= ix < x.shape[3]:
        cols[n, row, col] = x[n, c, iy, ix]
    else:
        cols[n, row, col] = 0


@cuda.jit
def _col2im_kernel(cols, dx, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w):
    index = cuda.grid(1)
    n_images, channels, height, width = dx.shape
    if index >= dx.size:
        return
    ix = index % width
    iy = (index // width) % height
    c = (index // (width * height)) % channels
    n = index // (width * height * channels)
    total = dx.dtype.type(0)  # a float32 kernel adds in float32 (a bare 0.0 is a float64)
    for ky in range(kh):
        # iy = oy*sh - ph + ky*dh  =>  oy = (iy + ph - ky*dh) / sh, when that is a whole number in range
        ty = iy + ph - ky * dh
        if ty < 0 or ty % sh != 0 or ty // sh >= out_h:
            continue
        oy = ty // sh
        for kx in range(kw):
            tx = ix + pw - kx * dw
            if tx < 0 or tx % sw != 0 or tx // sw >= out_w:
                continue
            ox = tx // sw
            total += cols[n, (c * kh + ky) * kw + kx, oy * out_w + ox]
    dx[n, c, iy, ix] = total


def im2col_cuda(x, geometry, out_h, out_w, xp):
    """x (N, C, H, W) device array -> cols (N, C*kh*kw, out_h*out_w); xp allocates (cupy, or numpy in the simulator)."""
    kh, kw = geometry[0], geometry[1]
    n_images, channels = x.shape[0], x.shape[1]
    cols = xp.empty((n_images, channels * kh * kw, out_h * out_w), dtype=x.dtype)
    _im2col_kernel[_blocks(cols.size), THREADS](x, cols, *geometry, out_h, out_w)
    return cols


def col2im_cuda(cols, x_shape, geometry, out_h, out_w, xp):
    """cols (N, C*kh*kw, out_h*out_w) device array -> dx of shape x_shape (N, C, H, W)."""
    dx = xp.empty(x_shape, dtype=cols.dtype)
    _col2im_kernel[_blocks(dx.size), THREADS](cols, dx, *geometry, out_h, out_w)
    return dx
