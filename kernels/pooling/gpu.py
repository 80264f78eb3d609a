"""Max and average pooling on a GPU: the CUDA C kernels of ``pooling.cu`` launched through CuPy.

``*_launch`` describes a launch for arrays of any kind (the tests run it through the CUDA C compiled for
the host); ``*_gpu`` allocates with CuPy and runs it. geometry = (kh, kw, sh, sw, ph, pw).
"""
from .. import cuda_c
from ..cuda_c import Launch, c_type, ints, plane_grid

SOURCE = "pooling/pooling.cu"


def _launch(kernel, arrays, threads_over, planes, height, width, geometry, out_h, out_w):
    """One thread per pixel of a plane of ``threads_over`` pixels, grid rows over the N*C planes."""
    grid, block = plane_grid(threads_over, planes, height * width, out_h * out_w)
    args = tuple(arrays) + ints(height, width, *geometry, out_h, out_w, planes)
    return Launch(SOURCE, f"{kernel}<{c_type(arrays[0].dtype)}>", grid, block, args)


def max_pool_forward_launch(x, out, argmax, geometry):
    n, c, h, w = x.shape
    return _launch("max_pool_forward", (x, out, argmax), out.shape[2] * out.shape[3], n * c, h, w, geometry,
                   out.shape[2], out.shape[3])


def max_pool_backward_launch(grad_out, argmax, dx, geometry):
    n, c, h, w = dx.shape
    return _launch("max_pool_backward", (grad_out, argmax, dx), h * w, n * c, h, w, geometry, grad_out.shape[2],
                   grad_out.shape[3])


def avg_pool_forward_launch(x, out, geometry):
    n, c, h, w = x.shape
    return _launch("avg_pool_forward", (x, out), out.shape[2] * out.shape[3], n * c, h, w, geometry, out.shape[2],
                   out.shape[3])


def avg_pool_backward_launch(grad_out, dx, geometry):
    n, c, h, w = dx.shape
    return _launch("avg_pool_backward", (grad_out, dx), h * w, n * c, h, w, geometry, grad_out.shape[2],
                   grad_out.shape[3])


def max_pool_forward_gpu(x, geometry, out_h, out_w, xp):
    out = xp.empty((x.shape[0], x.shape[1], out_h, out_w), dtype=x.dtype)
    argmax = xp.empty(out.shape, dtype=xp.int64)
    if out.size:
        cuda_c.run(max_pool_forward_launch(x, out, argmax, geometry))
    return out, argmax


def max_pool_backward_gpu(grad_out, argmax, x_shape, geometry, xp):
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    if dx.size:
        cuda_c.run(max_pool_backward_launch(grad_out, xp.ascontiguousarray(argmax), dx, geometry))
    return dx


def avg_pool_forward_gpu(x, geometry, out_h, out_w, xp):
    out = xp.empty((x.shape[0], x.shape[1], out_h, out_w), dtype=x.dtype)
    if out.size:
        cuda_c.run(avg_pool_forward_launch(x, out, geometry))
    return out


def avg_pool_backward_gpu(grad_out, x_shape, geometry, xp):
    dx = xp.empty(x_shape, dtype=grad_out.dtype)
    if dx.size:
        cuda_c.run(avg_pool_backward_launch(grad_out, dx, geometry))
    return dx
