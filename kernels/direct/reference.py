"""The direct 3x3 convolution as plain loops: the definition the fast kernels are held to.

No columns: every output pixel is the sum over the input channels of a 3x3 window of the (already
padded) input, the taps spaced by the dilation:

    y[n, o, oy, ox]     = b[o] + sum over c, ky, kx of  w[o, c, ky, kx] * x_pad[n, c, oy + ky*dh, ox + kx*dw]
    dw[o, c, ky, kx]    = sum over n, oy, ox of  g[n, o, oy, ox] * x_pad[n, c, oy + ky*dh, ox + kx*dw]

(stride 1 only). The gradient with respect to the input is the first formula again, run on the
gradient padded by (2*dh - ph, 2*dw - pw) with the kernel flipped and its channel axes swapped
(``flipped_kernel``): each input pixel collects from the output pixels whose windows hold it.
"""
import numpy as np


def conv3x3_forward_reference(x_pad, w, b, dilation):
    """x_pad (N, C, H + 2ph, W + 2pw), w (C_out, C, 3, 3), b (C_out,) -> y (N, C_out, out_h, out_w)."""
    dh, dw = dilation
    n_images, channels, padded_h, padded_w = x_pad.shape
    c_out = w.shape[0]
    out_h, out_w = padded_h - 2 * dh, padded_w - 2 * dw
    y = np.zeros((n_images, c_out, out_h, out_w), dtype=x_pad.dtype)
    for n in range(n_images):
        for o in range(c_out):
            for oy in range(out_h):
                for ox in range(out_w):
                    total = b[o]
                    for c in range(channels):
                        for ky in range(3):
                            for kx in range(3):
                                total += w[o, c, ky, kx] * x_pad[n, c, oy + ky * dh, ox + kx * dw]
                    y[n, o, oy, ox] = total
    return y


def conv3x3_weight_grad_reference(x_pad, g, dilation):
    """x_pad (N, C, H + 2ph, W + 2pw), g (N, C_out, out_h, out_w) -> dw (C_out, C, 3, 3)."""
    dh, dw = dilation
    channels, c_out = x_pad.shape[1], g.shape[1]
    n_images, _, out_h, out_w = g.shape
    grad = np.zeros((c_out, channels, 3, 3), dtype=g.dtype)
    for o in range(c_out):
        for c in range(channels):
            for ky in range(3):
                for kx in range(3):
                    total = 0.0
                    for n in range(n_images):
                        for oy in range(out_h):
                            for ox in range(out_w):
                                total += g[n, o, oy, ox] * x_pad[n, c, oy + ky * dh, ox + kx * dw]
                    grad[o, c, ky, kx] = total
    return grad


def flipped_kernel(w):
    """(C_out, C, 3, 3) -> (C, C_out, 3, 3), rotated by 180 degrees: the kernel of the input gradient."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
