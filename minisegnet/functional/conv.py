"""Convolution (with dilation and groups), transposed convolution, and FCN's bilinear filter.

Both ops are one matrix product around im2col / col2im (``minisegnet.kernels``):

    conv2d:            cols = im2col(x);  y = W @ cols                 (W: C_out x C_in*kh*kw)
      backward:        dW = dy @ cols^T;  dx = col2im(W^T @ dy);  db = sum of dy
    conv_transpose2d:  y = col2im(W^T @ x)   -- exactly conv2d's backward with respect to its input
      backward:        dx = W @ im2col(dy);  dW = x @ im2col(dy)^T

With groups, channels split into ``groups`` independent blocks and the product
is batched over them (depthwise convolution is groups = C_in).

Inputs are checked before a kernel runs (the kernels do no bounds checking): float32 or
float64, the same dtype for input, weight and bias (PyTorch's rule: no silent promotion),
C, H, W >= 1 and integer geometry. An empty batch (N = 0) works and gives an empty output
and zero weight gradients, as in PyTorch; every reshape below names its sizes, because
a -1 cannot be inferred from an array with 0 elements.
"""
import numpy as np

from .. import kernels
from ..backend import array_module
from ..engine import Function
from ._geometry import (as_int, check_4d, check_at_least, check_float, check_images, check_same_dtype,
                        conv_output_size, pair)


class Conv2d(Function):
    name = "conv2d"

    @staticmethod
    def forward(ctx, x, w, b, geometry, groups):
        n_images, c_in, height, width = x.shape
        c_out, c_group, kh, kw = w.shape
        sh, sw, ph, pw, dh, dw = geometry[2:]
        out_h = conv_output_size(height, kh, sh, ph, dh, "conv2d")
        out_w = conv_output_size(width, kw, sw, pw, dw, "conv2d")
        columns = n_images * out_h * out_w                             # N*L, one per output pixel
        cols = kernels.im2col(x, geometry, out_h, out_w)              # (C_in*kh*kw, N*L)
        cols = cols.reshape(groups, c_group * kh * kw, columns)        # one block per group
        w_mat = w.reshape(groups, c_out // groups, c_group * kh * kw)
        y = (w_mat @ cols).reshape(c_out, n_images, out_h, out_w).transpose(1, 0, 2, 3)
        y = array_module(x).ascontiguousarray(y)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] else None,
                              w_mat if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape, ctx.geometry, ctx.groups = x.shape, w.shape, geometry, groups
        return y

    @staticmethod
    def backward(ctx, g):
        cols, w_mat = ctx.saved
        groups, (c_out, c_group, kh, kw) = ctx.groups, ctx.w_shape
        n_images, out_h, out_w = g.shape[0], g.shape[2], g.shape[3]
        columns = n_images * out_h * out_w
        g_mat = g.transpose(1, 0, 2, 3).reshape(groups, c_out // groups, columns)   # (G, C_out/G, N*L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dcols = (w_mat.transpose(0, 2, 1) @ g_mat).reshape(groups * c_group * kh * kw, columns)
            dx = kernels.col2im(dcols, ctx.x_shape, ctx.geometry, out_h, out_w)
        if ctx.needs_input_grad[1]:
            dw = (g_mat @ cols.transpose(0, 2, 1)).reshape(ctx.w_shape)
        if ctx.needs_input_grad[2]:
            db = g.sum(axis=(0, 2, 3))
        return dx, dw, db, None, None


class ConvTranspose2d(Function):
    name = "conv_transpose2d"

    @staticmethod
    def forward(ctx, x, w, b, geometry, groups, out_hw):
        n_images, c_in, height, width = x.shape
        _, c_out_group, kh, kw = w.shape
        c_out = c_out_group * groups
        pixels = n_images * height * width
        x_mat = x.transpose(1, 0, 2, 3).reshape(groups, c_in // groups, pixels)  # (G, C_in/G, N*H*W)
        w_mat = w.reshape(groups, c_in // groups, c_out_group * kh * kw)
        cols = (w_mat.transpose(0, 2, 1) @ x_mat).reshape(c_out * kh * kw, pixels)
        y = kernels.col2im(cols, (n_images, c_out) + tuple(out_hw), geometry, height, width)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        ctx.save_for_backward(x_mat if ctx.needs_input_grad[1] else None,
                              w_mat if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape, ctx.geometry, ctx.groups = x.shape, w.shape, geometry, groups
        return y

    @staticmethod
    def backward(ctx, g):
        x_mat, w_mat = ctx.saved
        n_images, c_in, height, width = ctx.x_shape
        groups, (_, c_out_group, kh, kw) = ctx.groups, ctx.w_shape
        dx = dw = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            g_cols = kernels.im2col(g, ctx.geometry, height, width).reshape(
                groups, c_out_group * kh * kw, n_images * height * width)
            if ctx.needs_input_grad[0]:
                dx = (w_mat @ g_cols).reshape(c_in, n_images, height, width).transpose(1, 0, 2, 3)
                dx = array_module(g).ascontiguousarray(dx)
            if ctx.needs_input_grad[1]:
                dw = (x_mat @ g_cols.transpose(0, 2, 1)).reshape(ctx.w_shape)
        if ctx.needs_input_grad[2]:
            db = g.sum(axis=(0, 2, 3))
        return dx, dw, db, None, None, None


def _check_conv_args(op, x, w, b, stride, padding, dilation, groups):
    """Everything both convolutions need before a kernel runs; returns the geometry as int pairs and groups."""
    check_images(x, op)
    check_4d(w, op, "weight")
    check_float(w, op, "weight")
    check_same_dtype(op, x, w)
    if min(w.shape) < 1:
        raise ValueError(f"{op}: weight has shape {tuple(w.shape)}; every dimension (channels and kernel size) "
                         "must be >= 1")
    if b is not None:
        check_same_dtype(op, x, b, "input", "bias")
    stride, padding, dilation = pair(stride, op, "stride"), pair(padding, op, "padding"), pair(dilation, op, "dilation")
    check_at_least(stride, 1, op, "stride")
    check_at_least(dilation, 1, op, "dilation")
    check_at_least(padding, 0, op, "padding")
    groups = as_int(groups, op, "groups")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    if x.shape[1] % groups:
        raise ValueError(f"{op}: input channels {x.shape[1]} are not divisible by groups={groups}")
    return stride, padding, dilation, groups


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, PyTorch's conv2d.

    x: (N, C_in, H, W);  w: (C_out, C_in/groups, kH, kW);  b: (C_out,) or None
    returns (N, C_out, H_out, W_out) with H_out = floor((H + 2p - d(k-1) - 1)/s + 1).
    stride, padding, dilation: int or (rows, cols) pair. Dilation spaces the kernel taps
    d pixels apart: a 3x3 kernel with d=2 sees a 5x5 window with the same 9 weights.
    x, w and b share one dtype, float32 or float64; N may be 0.
    """
    op = "conv2d"
    stride, padding, dilation, groups = _check_conv_args(op, x, w, b, stride, padding, dilation, groups)
    c_out, c_group = w.shape[0], w.shape[1]
    if c_group * groups != x.shape[1]:
        raise ValueError(f"{op}: weight {w.shape} expects {c_group * groups} input channels "
                         f"(C_in/groups={c_group}, groups={groups}), input has {x.shape[1]}")
    if c_out % groups:
        raise ValueError(f"{op}: output channels {c_out} are not divisible by groups={groups}")
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{op}: bias has shape {tuple(b.shape)}, expected ({c_out},)")
    geometry = (w.shape[2], w.shape[3]) + stride + padding + dilation
    return Conv2d.apply(x, w, b, geometry, groups)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution ("deconvolution"), PyTorch's conv_transpose2d: the adjoint of conv2d.

    x: (N, C_in, H, W);  w: (C_in, C_out/groups, kH, kW);  b: (C_out,) or None
    returns (N, C_out, H_out, W_out) with H_out = (H - 1)s - 2p + d(k - 1) + output_padding + 1.
    x, w and b share one dtype, float32 or float64; N may be 0.
    """
    op = "conv_transpose2d"
    stride, padding, dilation, groups = _check_conv_args(op, x, w, b, stride, padding, dilation, groups)
    output_padding = pair(output_padding, op, "output_padding")
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{op}: weight {w.shape} expects {w.shape[0]} input channels, input has {x.shape[1]}")
    for op_, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op_ < max(s, d):
            raise ValueError(f"{op}: output_padding {op_} must be >= 0 and smaller than stride {s} or dilation {d}")
    c_out = w.shape[1] * groups
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{op}: bias has shape {tuple(b.shape)}, expected ({c_out},)")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1
                   for n, s, p, d, k, o in zip(x.shape[2:], stride, padding, dilation, w.shape[2:], output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty (input {x.shape[2:]}, kernel {w.shape[2:]}, "
                         f"stride {stride}, padding {padding})")
    geometry = (w.shape[2], w.shape[3]) + stride + padding + dilation
    return ConvTranspose2d.apply(x, w, b, geometry, groups, out_hw)


def bilinear_kernel(size, dtype=np.float32):
    """FCN's ``upsample_filt``: the (size, size) filter that makes a stride-f transposed
    convolution interpolate bilinearly, with factor f = (size + 1) // 2 and centre
    f - 1 (odd size) or f - 0.5 (even size):

        filt[i, j] = (1 - |i - centre| / f) * (1 - |j - centre| / f)
    """
    size = as_int(size, "bilinear_kernel", "size")
    if size < 1:
        raise ValueError(f"bilinear_kernel: size must be >= 1, got {size}")
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - np.abs(np.arange(size) - centre) / factor
    return np.outer(taps, taps).astype(dtype)


def bilinear_upsampling_weight(channels, size, dtype=np.float32):
    """(channels, channels, size, size) transposed-convolution weight: channel c -> channel c, bilinear."""
    w = np.zeros((channels, channels, size, size), dtype=dtype)
    w[np.arange(channels), np.arange(channels)] = bilinear_kernel(size, dtype)
    return w
