"""Bilinear resizing as plain loops: the definition the fast kernels are held to.

Output pixel (oy, ox) reads the input at a real-valued source position; PyTorch's two conventions:

* align_corners=True:  src = dst * (in - 1) / (out - 1)           (corner pixels' centres line up)
* align_corners=False: src = (dst + 0.5) * scale - 0.5, clamped at 0, with scale = in / out,
  or 1 / scale_factor when a scale factor was given             (pixel areas line up)

and blends the two neighbouring rows (y0, y1 = y0 + 1, clipped at the border)
with weights (1 - ly, ly), and likewise for columns.
"""
import numpy as np


def source_taps(in_size, out_size, scale, align_corners):
    """For every output index: the two input indices it blends and the weight of the second.

    scale: in/out, or 1/scale_factor when the caller gave a scale factor (ignored for align_corners).
    Returns (i0, i1, lam) as int64, int64, float64 arrays of length out_size.
    """
    i0 = np.empty(out_size, dtype=np.int64)
    i1 = np.empty(out_size, dtype=np.int64)
    lam = np.empty(out_size, dtype=np.float64)
    for dst in range(out_size):
        if align_corners:
            src = dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        else:
            src = max((dst + 0.5) * scale - 0.5, 0.0)
        i0[dst] = min(int(src), in_size - 1)
        i1[dst] = min(i0[dst] + 1, in_size - 1)
        lam[dst] = src - i0[dst]
    return i0, i1, lam


def bilinear_forward_reference(x, out_h, out_w, scale_h, scale_w, align_corners):
    """x (N, C, H, W) -> (N, C, out_h, out_w)."""
    n_images, channels, height, width = x.shape
    y0, y1, ly = source_taps(height, out_h, scale_h, align_corners)
    x0, x1, lx = source_taps(width, out_w, scale_w, align_corners)
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    top = (1 - lx[ox]) * x[n, c, y0[oy], x0[ox]] + lx[ox] * x[n, c, y0[oy], x1[ox]]
                    bottom = (1 - lx[ox]) * x[n, c, y1[oy], x0[ox]] + lx[ox] * x[n, c, y1[oy], x1[ox]]
                    out[n, c, oy, ox] = (1 - ly[oy]) * top + ly[oy] * bottom
    return out


def bilinear_backward_reference(grad_out, x_shape, scale_h, scale_w, align_corners):
    """The adjoint: each output gradient is shared among its four source pixels with the same weights."""
    n_images, channels, height, width = x_shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    y0, y1, ly = source_taps(height, out_h, scale_h, align_corners)
    x0, x1, lx = source_taps(width, out_w, scale_w, align_corners)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for n in range(n_images):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    g = grad_out[n, c, oy, ox]
                    dx[n, c, y0[oy], x0[ox]] += (1 - ly[oy]) * (1 - lx[ox]) * g
                    dx[n, c, y0[oy], x1[ox]] += (1 - ly[oy]) * lx[ox] * g
                    dx[n, c, y1[oy], x0[ox]] += ly[oy] * (1 - lx[ox]) * g
                    dx[n, c, y1[oy], x1[ox]] += ly[oy] * lx[ox] * g
    return dx
