"""The direct 3x3 convolution (stride 1, any dilation) as Numba CPU kernels: no columns at all.

im2col + BLAS is the right tool when the matrix product is large, but on the first stages of a
segmentation net it is not: a 16 -> 16 layer on 64x64 images multiplies a 16 x 144 matrix by
144 x 4096 columns, and the columns (9x the input) are written and read again for a product whose
16 rows give BLAS almost nothing to reuse. These kernels compute the formula of ``reference.py``
directly, arranged so that LLVM keeps the work in vector registers:

* **one output row at a time, two output channels at once.** For an input channel c, the three
  padded input rows that a 3x3 window of output row oy touches are read once, and each of the
  nine taps (x_pad[c, oy + ky*dh, ox + kx*dw] for ox along the row) feeds both output channels'
  accumulator rows: 18 multiply-adds per 9 loads, the 18 weights held in registers. The innermost
  loop runs along the row (ox), contiguous in memory, with unsigned indices (see
  ``kernels/columns/cpu.py``), so it compiles to vector instructions;
* **the weight gradient as 18 running sums** (two output channels x nine taps) along the rows of
  one image, so each input row is read once for 18 products, added up image by image;
* **parallel over independent outputs** (``prange`` over (image, channel pair) in forward, over
  (channel pair, block of input channels) in the weight gradient): each output element is computed by one
  thread, in the same order on every run, so the result does not depend on the thread count;
* ``fastmath`` only where it is needed: ``contract`` (multiply-add as one FMA instruction) in
  forward, and ``reassoc`` too in the weight gradient, so LLVM may split each running sum across
  vector lanes (the sums are then added in a different, but fixed, order).

The caller pads the input (and, for the input gradient, the output gradient) with zeros first, so
the inner loops never test bounds. Measured on the lesson net's 16 -> 16 layer at 64x64 (N4), each
kernel alone: 63-76 GFLOP/s on one core, 110-134 on two, where im2col + OpenBLAS ran the whole layer at
55-60 on two. In a whole forward + backward the gain is smaller (the copies around it stay), and with
many output channels BLAS wins: ``functional/conv.py`` (DIRECT_MIN_WIDTH) says where each path runs.

There is no CUDA twin: on a GPU the convolution goes through im2col and cuBLAS, whose products are
large enough there.
"""
import numpy as np
from numba import njit, prange

U = np.uintp  # unsigned indices: no negative-index branch in the inner loops (kernels/columns/cpu.py)


@njit(parallel=True, cache=True, fastmath={"contract"})
def conv3x3_forward_cpu(x_pad, w, b, dilation, y):
    """y[n, o, oy, ox] = b[o] + sum_{c, ky, kx} w[o, c, ky, kx] * x_pad[n, c, oy + ky*dh, ox + kx*dw]."""
    n_images, channels = x_pad.shape[0], x_pad.shape[1]
    c_out, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    dh, dw = U(dilation[0]), U(dilation[1])
    dw2 = dw + dw
    pairs = (c_out + 1) // 2
    for task in prange(n_images * pairs):
        n, o0 = task // pairs, 2 * (task % pairs)
        o1 = min(o0 + 1, c_out - 1)  # an odd C_out: the last pair computes its channel twice, stores it once
        acc = np.empty((2, out_w), dtype=y.dtype)
        a, z = acc[0], acc[1]
        for oy in range(out_h):
            a[:] = b[o0]
            z[:] = b[o1]
            top = U(oy)
            for c in range(channels):
                r0, r1, r2 = x_pad[n, c, top], x_pad[n, c, top + dh], x_pad[n, c, top + dh + dh]
                k = w[o0, c]
                a00, a01, a02, a10, a11, a12 = k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2]
                a20, a21, a22 = k[2, 0], k[2, 1], k[2, 2]
                k = w[o1, c]
                z00, z01, z02, z10, z11, z12 = k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2]
                z20, z21, z22 = k[2, 0], k[2, 1], k[2, 2]
                for ox in range(U(out_w)):
                    p00, p01, p02 = r0[ox], r0[ox + dw], r0[ox + dw2]
                    p10, p11, p12 = r1[ox], r1[ox + dw], r1[ox + dw2]
                    p20, p21, p22 = r2[ox], r2[ox + dw], r2[ox + dw2]
                    a[ox] += (a00 * p00 + a01 * p01 + a02 * p02 + a10 * p10 + a11 * p11 + a12 * p12
                              + a20 * p20 + a21 * p21 + a22 * p22)
                    z[ox] += (z00 * p00 + z01 * p01 + z02 * p02 + z10 * p10 + z11 * p11 + z12 * p12
                              + z20 * p20 + z21 * p21 + z22 * p22)
            y[n, o0, oy] = a
            if o1 != o0:
                y[n, o1, oy] = z


#: the weight gradient's tasks take this many input channels each (see conv3x3_weight_grad_cpu)
CHANNEL_BLOCK = 8


@njit(parallel=True, cache=True, fastmath={"contract", "reassoc"})
def conv3x3_weight_grad_cpu(x_pad, g, dilation, grad):
    """grad[o, c, ky, kx] = sum_{n, oy, ox} g[n, o, oy, ox] * x_pad[n, c, oy + ky*dh, ox + kx*dw].

    One task per (output-channel pair, block of CHANNEL_BLOCK input channels), and inside it the images
    in the outer loop: the task's two gradient planes and input planes of one image are read while they
    sit in cache, and the next image's follow (a task per (pair, channel) over every image read each
    plane from memory again for every task: 2x slower inside a training step)."""
    n_images, channels = x_pad.shape[0], x_pad.shape[1]
    c_out, out_h, out_w = g.shape[1], g.shape[2], g.shape[3]
    dh, dw = U(dilation[0]), U(dilation[1])
    dw2 = dw + dw
    pairs, blocks = (c_out + 1) // 2, (channels + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    zero = g.dtype.type(0)
    for task in prange(pairs * blocks):
        o0, c_lo = 2 * (task // blocks), CHANNEL_BLOCK * (task % blocks)
        o1, c_hi = min(o0 + 1, c_out - 1), min(c_lo + CHANNEL_BLOCK, channels)
        sums = np.zeros((c_hi - c_lo, 2, 9), dtype=g.dtype)  # (channel, output of the pair, tap)
        for n in range(n_images):
            for c in range(c_lo, c_hi):
                a00 = a01 = a02 = a10 = a11 = a12 = a20 = a21 = a22 = zero
                z00 = z01 = z02 = z10 = z11 = z12 = z20 = z21 = z22 = zero
                for oy in range(out_h):
                    top = U(oy)
                    r0, r1, r2 = x_pad[n, c, top], x_pad[n, c, top + dh], x_pad[n, c, top + dh + dh]
                    ga, gz = g[n, o0, oy], g[n, o1, oy]
                    for ox in range(U(out_w)):
                        p00, p01, p02 = r0[ox], r0[ox + dw], r0[ox + dw2]
                        p10, p11, p12 = r1[ox], r1[ox + dw], r1[ox + dw2]
                        p20, p21, p22 = r2[ox], r2[ox + dw], r2[ox + dw2]
                        u, v = ga[ox], gz[ox]
                        a00 += u * p00; a01 += u * p01; a02 += u * p02  # noqa: E702
                        a10 += u * p10; a11 += u * p11; a12 += u * p12  # noqa: E702
                        a20 += u * p20; a21 += u * p21; a22 += u * p22  # noqa: E702
                        z00 += v * p00; z01 += v * p01; z02 += v * p02  # noqa: E702
                        z10 += v * p10; z11 += v * p11; z12 += v * p12  # noqa: E702
                        z20 += v * p20; z21 += v * p21; z22 += v * p22  # noqa: E702
                s = sums[c - c_lo, 0]
                s[0] += a00; s[1] += a01; s[2] += a02; s[3] += a10; s[4] += a11  # noqa: E702
                s[5] += a12; s[6] += a20; s[7] += a21; s[8] += a22  # noqa: E702
                s = sums[c - c_lo, 1]
                s[0] += z00; s[1] += z01; s[2] += z02; s[3] += z10; s[4] += z11  # noqa: E702
                s[5] += z12; s[6] += z20; s[7] += z21; s[8] += z22  # noqa: E702
        for c in range(c_lo, c_hi):
            grad[o0, c] = sums[c - c_lo, 0].reshape(3, 3)
            if o1 != o0:
                grad[o1, c] = sums[c - c_lo, 1].reshape(3, 3)
