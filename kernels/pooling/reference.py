"""Max and average pooling as plain loops: the definition the fast kernels are held to.

For output (oy, ox) the window covers input rows oy*sh - ph ... oy*sh - ph + kh - 1
(and likewise columns); positions outside the image are padding.

* max pooling: padding counts as -infinity (it never wins: the loop visits only real
  pixels); the backward pass sends each output's gradient to the *first* maximum of its
  window in row-major order (PyTorch's rule) and adds up where windows overlap.
  A NaN propagates, as in PyTorch: a NaN always takes over (NaN > anything is false, so
  the test is "larger, or NaN"), so a window with NaNs outputs NaN and its argmax is the
  *last* NaN in row-major order. The argmax starts at the window's first real pixel, so a
  window of -infinity alone outputs -infinity and picks that first pixel (PyTorch again):
  the argmax always lies inside the window.
* average pooling (count_include_pad=True, PyTorch's default): the sum of the
  real pixels divided by the window size *including* zero padding, where the
  window is first clipped to the padded image (H + ph), which only matters when
  ceil_mode lets a window run past the padding.
"""
import numpy as np


def window(o, stride, pad, kernel, size):
    """Rows [start, end) of the image that window o covers, and its size counted with padding."""
    start = o * stride - pad
    end_padded = min(start + kernel, size + pad)
    return max(start, 0), min(end_padded, size), end_padded - start


def max_pool_forward_reference(x, geometry, out_h, out_w):
    """x (N, C, H, W) -> out (N, C, out_h, out_w) and argmax (flat index iy*W + ix of each maximum)."""
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, height, width = x.shape
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((n_images, channels, out_h, out_w), dtype=np.int64)
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                y0, y1, _ = window(oy, sh, ph, kh, height)
                for ox in range(out_w):
                    x0, x1, _ = window(ox, sw, pw, kw, width)
                    best, best_index = -np.inf, y0 * width + x0  # all -inf: the first pixel
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            v = x[n, c, iy, ix]
                            if v > best or np.isnan(v):  # strict: ties keep the first; NaN wins
                                best, best_index = v, iy * width + ix
                    out[n, c, oy, ox] = best
                    argmax[n, c, oy, ox] = best_index
    return out, argmax


def max_pool_backward_reference(grad_out, argmax, x_shape):
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    n_images, channels, out_h, out_w = grad_out.shape
    width = x_shape[3]
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    k = argmax[n, c, oy, ox]
                    dx[n, c, k // width, k % width] += grad_out[n, c, oy, ox]
    return dx


def avg_pool_forward_reference(x, geometry, out_h, out_w):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, height, width = x.shape
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                y0, y1, count_y = window(oy, sh, ph, kh, height)
                for ox in range(out_w):
                    x0, x1, count_x = window(ox, sw, pw, kw, width)
                    out[n, c, oy, ox] = x[n, c, y0:y1, x0:x1].sum() / (count_y * count_x)
    return out


def avg_pool_backward_reference(grad_out, x_shape, geometry):
    kh, kw, sh, sw, ph, pw = geometry
    n_images, channels, out_h, out_w = grad_out.shape
    height, width = x_shape[2], x_shape[3]
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                y0, y1, count_y = window(oy, sh, ph, kh, height)
                for ox in range(out_w):
                    x0, x1, count_x = window(ox, sw, pw, kw, width)
                    dx[n, c, y0:y1, x0:x1] += grad_out[n, c, oy, ox] / (count_y * count_x)
    return dx
