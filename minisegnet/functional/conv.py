"""Convolution (with dilation and groups), transposed convolution, and FCN's bilinear filter.

Both ops are matrix products around im2col / col2im (``minisegnet.kernels``). im2col lays
the receptive fields of each image out as the columns of one matrix: cols has shape (N, K, L),
with K = C_in*kh*kw rows (one per kernel tap of each channel) and L = H_out*W_out columns (one
per output pixel). With W = w.reshape(C_out, K), for every image n:

    conv2d:            cols = im2col(x);  y[n] = W @ cols[n]             ((C_out, L): y in NCHW as it is)
      backward:        dW = sum over n of dy[n] @ cols[n]^T  (computed as (cols[n] @ dy[n]^T)^T);
                       dx = col2im(W^T @ dy);  db = sum of dy
    conv_transpose2d:  y = col2im(W^T @ x)   -- exactly conv2d's backward with respect to its input
      backward:        dx = W @ im2col(dy);  dW = sum over n of x[n] @ im2col(dy)[n]^T

The images are independent, so the work goes a piece of the batch at a time
(``kernels.over_images``): on a CPU each core takes its share of the images and runs im2col, the
products and col2im for them, a few images at a time, so the columns of the whole batch never
exist at once; on a GPU the whole batch is one piece. Each piece's product is one batched
``matmul`` (BLAS once per image, cuBLAS batched on a GPU), and each image's result is a
(channels, pixels) matrix, which is already NCHW memory order, so no transpose or copy surrounds
the products. conv2d saves x, not its columns (9x larger for a 3x3 kernel), and backward builds
the columns again, a piece at a time: one more im2col for a much smaller training step. A 1x1 convolution with stride 1 and no padding (FCN's
score layers) needs no im2col at all: each window is one pixel, so cols = x.reshape(N, C_in, H*W),
a view of x (never written to).

With groups, channels split into ``groups`` = G independent blocks: cols is viewed as
(N, G, K/G, L) and W as (G, C_out/G, K/G), and the product is batched over the groups too
(depthwise convolution is groups = C_in).

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


def _is_pointwise(geometry):
    """A 1x1 kernel with stride 1 and no padding: every window is one pixel, so im2col(x) is x itself."""
    g = geometry  # a kernels.Geometry (Conv2d.forward makes one of whatever it is given)
    return (g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w) == (1, 1, 1, 1, 0, 0)


def _columns(x, geometry, out_h, out_w):
    """(n, C_in*kh*kw, L): the receptive fields of the images x as columns (a view of x when pointwise)."""
    if _is_pointwise(geometry):
        return x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    return kernels.im2col(x, geometry, out_h, out_w)


def _transpose_last(a):
    """(..., m, k) -> (..., k, m), a view: matmul hands it to BLAS as a transposed operand, without a copy."""
    return a.swapaxes(-1, -2)


def _sum_in_order(parts):
    """The per-piece weight gradients added in image order (the same sum whichever thread finished first)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


class Conv2d(Function):
    name = "conv2d"

    @staticmethod
    def forward(ctx, x, w, b, geometry, groups):
        n_images, c_in, height, width = x.shape
        c_out, c_group, kh, kw = w.shape
        geometry = kernels.Geometry(*geometry)  # once, here: a plain tuple in the same order works too
        out_h = conv_output_size(height, kh, geometry.stride_h, geometry.pad_h, geometry.dilation_h, "conv2d")
        out_w = conv_output_size(width, kw, geometry.stride_w, geometry.pad_w, geometry.dilation_w, "conv2d")
        pixels, k_group = out_h * out_w, c_group * kh * kw                 # L per image, K_g = K / G
        w_mat = w.reshape(groups, c_out // groups, k_group)                # (G, C_out/G, K_g), for every image
        y = array_module(x).empty((n_images, groups, c_out // groups, pixels), dtype=x.dtype)

        def images(lo, hi):  # y[n] = W @ cols[n] for the images lo..hi-1; their columns then go
            cols = _columns(x[lo:hi], geometry, out_h, out_w).reshape(hi - lo, groups, k_group, pixels)
            array_module(x).matmul(w_mat, cols, out=y[lo:hi])              # (n, G, C_out/G, L) is NCHW already

        kernels.over_images(x, images, bytes_per_image=c_in * kh * kw * pixels * x.itemsize)
        y = y.reshape(n_images, c_out, out_h, out_w)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)  # y is a new array, never a view of x
        # x, not its columns (9x larger for a 3x3 kernel): backward rebuilds them, a piece at a time.
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w_mat if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape, ctx.geometry, ctx.groups = x.shape, w.shape, geometry, groups
        return y

    @staticmethod
    def backward(ctx, g):
        x, w_mat = ctx.saved
        groups, (c_out, c_group, kh, kw), x_shape = ctx.groups, ctx.w_shape, ctx.x_shape
        n_images, out_h, out_w = g.shape[0], g.shape[2], g.shape[3]
        pixels, k_group = out_h * out_w, c_group * kh * kw
        g_mat = g.reshape(n_images, groups, c_out // groups, pixels)       # (N, G, C_out/G, L), no transpose
        need_dx, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dx = array_module(g).empty(x_shape, dtype=g.dtype) if need_dx else None

        def images(lo, hi):  # dx and this piece's share of dW for the images lo..hi-1
            g_piece = g_mat[lo:hi]
            if need_dx:
                dcols = (_transpose_last(w_mat) @ g_piece).reshape(hi - lo, groups * k_group, pixels)  # (n, K, L)
                if _is_pointwise(ctx.geometry):
                    dx[lo:hi] = dcols.reshape((hi - lo,) + x_shape[1:])     # cols was x: no col2im
                else:
                    dx[lo:hi] = kernels.col2im(dcols, (hi - lo,) + x_shape[1:], ctx.geometry, out_h, out_w)
                del dcols  # freed before this piece's columns are built again: one (K, L) buffer per image at a time
            if need_dw:
                cols = _columns(x[lo:hi], ctx.geometry, out_h, out_w).reshape(hi - lo, groups, k_group, pixels)
                # one product per image and group, then the sum over the images: dW^T = cols @ dy^T, (K_g, C_out/G),
                # transposed back as a view. The same numbers as dy @ cols^T, but BLAS then reads cols as stored
                # (row-major, pixels contiguous): 1.3-2.3x faster on the lesson net's layers (benchmarks/README.md)
                return _transpose_last((cols @ _transpose_last(g_piece)).sum(axis=0))
            return None

        parts = kernels.over_images(g, images, bytes_per_image=x_shape[1] * kh * kw * pixels * g.itemsize)
        dw = _sum_in_order(parts).reshape(ctx.w_shape) if need_dw else None
        db = g.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None


class ConvTranspose2d(Function):
    name = "conv_transpose2d"

    @staticmethod
    def forward(ctx, x, w, b, geometry, groups, out_hw):
        n_images, c_in, height, width = x.shape
        _, c_out_group, kh, kw = w.shape
        c_out, pixels = c_out_group * groups, height * width
        x_mat = x.reshape(n_images, groups, c_in // groups, pixels)        # (N, G, C_in/G, H*W), a view of x
        w_mat = w.reshape(groups, c_in // groups, c_out_group * kh * kw)   # (G, C_in/G, K_g)
        y = array_module(x).empty((n_images, c_out) + tuple(out_hw), dtype=x.dtype)

        def images(lo, hi):  # y[n] = col2im(W^T @ x[n]) for the images lo..hi-1
            cols = (_transpose_last(w_mat) @ x_mat[lo:hi]).reshape(hi - lo, c_out * kh * kw, pixels)  # (n, K, H*W)
            y[lo:hi] = kernels.col2im(cols, (hi - lo, c_out) + tuple(out_hw), geometry, height, width)

        kernels.over_images(x, images, bytes_per_image=c_out * kh * kw * pixels * x.itemsize)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)  # y is a new array
        # x_mat is only a view of x: save x itself (backward reshapes it again).
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w_mat if ctx.needs_input_grad[0] else None)
        ctx.x_shape, ctx.w_shape, ctx.geometry, ctx.groups = x.shape, w.shape, geometry, groups
        return y

    @staticmethod
    def backward(ctx, g):
        x, w_mat = ctx.saved
        n_images, c_in, height, width = ctx.x_shape
        groups, (_, c_out_group, kh, kw) = ctx.groups, ctx.w_shape
        pixels, k_group = height * width, c_out_group * kh * kw
        need_dx, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dx = array_module(g).empty(ctx.x_shape, dtype=g.dtype) if need_dx else None

        def images(lo, hi):  # im2col of the gradient, then both products, for the images lo..hi-1
            g_cols = kernels.im2col(g[lo:hi], ctx.geometry, height, width).reshape(hi - lo, groups, k_group, pixels)
            if need_dx:
                dx[lo:hi] = (w_mat @ g_cols).reshape((hi - lo,) + ctx.x_shape[1:])  # (n, G, C_in/G, H*W) is NCHW
            if need_dw:
                x_mat = x[lo:hi].reshape(hi - lo, groups, c_in // groups, pixels)
                return _transpose_last((g_cols @ _transpose_last(x_mat)).sum(axis=0))  # as in Conv2d: dW^T, then a view
            return None

        if need_dx or need_dw:
            parts = kernels.over_images(g, images, bytes_per_image=groups * k_group * pixels * g.itemsize)
        dw = _sum_in_order(parts).reshape(ctx.w_shape) if need_dw else None
        db = g.sum(axis=(0, 2, 3)) if ctx.needs_input_grad[2] else None
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
    geometry = kernels.Geometry(*w.shape[2:], *stride, *padding, *dilation)
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
    geometry = kernels.Geometry(*w.shape[2:], *stride, *padding, *dilation)
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
