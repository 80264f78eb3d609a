"""im2col / col2im on a GPU: the CUDA C kernels of ``columns.cu`` launched through CuPy.

``*_launch`` describes a launch (``kernels/cuda_c.py``) for arrays of any kind, so the tests run the
very same launch through the CUDA C compiled for the host; ``*_gpu`` allocates with CuPy and runs it.
"""
from .. import cuda_c
from ..cuda_c import Launch, c_type, ints, plane_grid

SOURCE = "columns/columns.cu"


def im2col_launch(x, cols, geometry, out_h, out_w):
    """x (N, C, H, W) -> cols (N, C*kh*kw, out_h*out_w): one thread per output pixel, grid rows over cols' rows."""
    n_images, channels, height, width = x.shape
    kh, kw = geometry[0], geometry[1]
    rows = n_images * channels * kh * kw
    grid, block = plane_grid(out_h * out_w, rows, height * width)  # (the grid's rows are cols' rows here)
    args = (x, cols) + ints(height, width, *geometry, out_h, out_w, rows)
    return Launch(SOURCE, f"im2col<{c_type(x.dtype)}>", grid, block, args)


def col2im_launch(cols, dx, geometry, out_h, out_w):
    """cols (N, C*kh*kw, out_h*out_w) -> dx (N, C, H, W): one thread per input pixel, grid rows over planes."""
    n_images, channels, height, width = dx.shape
    planes = n_images * channels
    grid, block = plane_grid(height * width, planes, out_h * out_w)
    args = (cols, dx) + ints(height, width, *geometry, out_h, out_w, planes)
    return Launch(SOURCE, f"col2im<{c_type(cols.dtype)}>", grid, block, args)


def im2col_gpu(x, geometry, out_h, out_w, xp):
    kh, kw = geometry[0], geometry[1]
    cols = xp.empty((x.shape[0], x.shape[1] * kh * kw, out_h * out_w), dtype=x.dtype)
    if cols.size:
        cuda_c.run(im2col_launch(x, cols, geometry, out_h, out_w))
    return cols


def col2im_gpu(cols, x_shape, geometry, out_h, out_w, xp):
    dx = xp.empty(x_shape, dtype=cols.dtype)
    if dx.size:
        cuda_c.run(col2im_launch(cols, dx, geometry, out_h, out_w))
    return dx
