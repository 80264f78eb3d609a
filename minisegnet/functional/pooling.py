"""Max and average pooling (kernels in ``minisegnet.kernels.pooling``).

Output size (PyTorch's rule): floor((H + 2p - k)/s) + 1, or with ceil_mode the
ceiling, dropping a last window that would start in the right padding.
Padding may be at most half the kernel, so every window holds a real pixel.
"""
from .. import kernels
from ..engine import Function
from ._geometry import check_at_least, check_images, pair, pool_output_size


class MaxPool2d(Function):
    name = "max_pool2d"

    @staticmethod
    def forward(ctx, x, geometry, out_hw):
        out, argmax = kernels.max_pool_forward(x, geometry, *out_hw)
        ctx.save_for_backward(argmax)  # where each maximum came from: all the backward needs
        ctx.x_shape, ctx.geometry = x.shape, geometry
        return out

    @staticmethod
    def backward(ctx, g):
        (argmax,) = ctx.saved
        return kernels.max_pool_backward(g, argmax, ctx.x_shape, ctx.geometry), None, None


class AvgPool2d(Function):
    name = "avg_pool2d"

    @staticmethod
    def forward(ctx, x, geometry, out_hw):
        ctx.x_shape, ctx.geometry = x.shape, geometry
        return kernels.avg_pool_forward(x, geometry, *out_hw)

    @staticmethod
    def backward(ctx, g):
        return kernels.avg_pool_backward(g, ctx.x_shape, ctx.geometry), None, None


def _pool_geometry(op, x, kernel_size, stride, padding, ceil_mode):
    check_images(x, op)  # float32/float64, C, H, W >= 1: the kernels do no bounds checking
    kernel = pair(kernel_size, op, "kernel_size")
    stride = kernel if stride is None else pair(stride, op, "stride")
    padding = pair(padding, op, "padding")
    check_at_least(kernel, 1, op, "kernel_size")
    check_at_least(stride, 1, op, "stride")
    check_at_least(padding, 0, op, "padding")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    out_hw = tuple(pool_output_size(n, k, s, p, ceil_mode, op)
                   for n, k, s, p in zip(x.shape[2:], kernel, stride, padding))
    return kernels.Geometry(*kernel, *stride, *padding), out_hw


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Maximum over each kernel_size window. x: (N, C, H, W) -> (N, C, H_out, W_out).

    Padding counts as -infinity and never wins. Backward sends each output's gradient to the
    first maximum of its window in row-major order (PyTorch's rule), adding up where windows
    overlap. As in PyTorch, a NaN propagates: a window holding one outputs NaN and sends its
    gradient to its last NaN (row-major), and a window of -infinity alone outputs -infinity
    and sends its gradient to its first pixel.
    """
    geometry, out_hw = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d.apply(x, geometry, out_hw)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Mean over each kernel_size window. x: (N, C, H, W) -> (N, C, H_out, W_out).

    count_include_pad=True (PyTorch's default): zero padding counts in the divisor, so a
    corner window of a padded 3x3 pool divides by 9 even though only 4 pixels are real.
    """
    geometry, out_hw = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, ceil_mode)
    return AvgPool2d.apply(x, geometry, out_hw)
