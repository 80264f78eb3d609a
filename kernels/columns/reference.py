"""im2col / col2im as plain loops: the definition the fast kernels are held to.

A convolution is a matrix product once every receptive-field patch is laid
out as a column ("image to columns"). Each image gets its own matrix of
K = C*kh*kw rows (one per kernel tap of each channel) and L = out_h*out_w
columns (one per output pixel):

    cols[n, (c, ky, kx), (oy, ox)] = x[n, c, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw]   (0 outside the image)

so that  y[n, o, oy, ox] = sum over (c, ky, kx) of  w[o, c, ky, kx] * cols[n, (c, ky, kx), (oy, ox)],
i.e. y[n] = W @ cols[n] with W = w.reshape(C_out, K): the result is already in NCHW order.
col2im is the adjoint: it adds every column entry back onto the pixel it came from.
"""
import numpy as np


def im2col_reference(x, geometry, out_h, out_w):
    """x (N, C, H, W) -> cols (N, C*kh*kw, out_h*out_w). geometry = (kh, kw, sh, sw, ph, pw, dh, dw)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = x.shape
    cols = np.zeros((n_images, channels * kh * kw, out_h * out_w), dtype=x.dtype)
    for n in range(n_images):
        for c in range(channels):
            for ky in range(kh):
                for kx in range(kw):
                    row = (c * kh + ky) * kw + kx
                    for oy in range(out_h):
                        for ox in range(out_w):
                            iy = oy * sh - ph + ky * dh
                            ix = ox * sw - pw + kx * dw
                            if 0 <= iy < height and 0 <= ix < width:
                                cols[n, row, oy * out_w + ox] = x[n, c, iy, ix]
    return cols


def col2im_reference(cols, x_shape, geometry, out_h, out_w):
    """cols (N, C*kh*kw, out_h*out_w) -> dx (N, C, H, W), summing entries that share a pixel."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = x_shape
    dx = np.zeros(x_shape, dtype=cols.dtype)
    for n in range(n_images):
        for c in range(channels):
            for ky in range(kh):
                for kx in range(kw):
                    row = (c * kh + ky) * kw + kx
                    for oy in range(out_h):
                        for ox in range(out_w):
                            iy = oy * sh - ph + ky * dh
                            ix = ox * sw - pw + kx * dw
                            if 0 <= iy < height and 0 <= ix < width:
                                dx[n, c, iy, ix] += cols[n, row, oy * out_w + ox]
    return dx


def conv2d_reference(x, w, b, stride, padding, dilation, groups):
    """Direct convolution, the formula itself (cross-correlation, as in every DL library):

        y[n, o, i, j] = b[o] + sum_{c, ky, kx} w[o, c, ky, kx] * x_pad[n, g*Cg + c, i*sh + ky*dh, j*sw + kx*dw]

    where g = o // (C_out / groups) is the group of output channel o.
    """
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n_images, channels, height, width = x.shape
    c_out, c_group, kh, kw = w.shape
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x_pad = np.zeros((n_images, channels, height + 2 * ph, width + 2 * pw), dtype=x.dtype)
    x_pad[:, :, ph:ph + height, pw:pw + width] = x
    y = np.zeros((n_images, c_out, out_h, out_w), dtype=np.result_type(x, w))
    per_group = c_out // groups
    for n in range(n_images):
        for o in range(c_out):
            g = o // per_group
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0 if b is None else b[o]
                    for c in range(c_group):
                        for ky in range(kh):
                            for kx in range(kw):
                                total += w[o, c, ky, kx] * x_pad[n, g * c_group + c, i * sh + ky * dh, j * sw + kx * dw]
                    y[n, o, i, j] = total
    return y
