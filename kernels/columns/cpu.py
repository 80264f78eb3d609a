"""im2col / col2im as Numba CPU kernels: the reference loops, reordered for speed.

Same index arithmetic as ``reference.py``; the differences are all about speed:

* the loops are compiled (``njit``) and the outer loop runs on all cores (``prange`` over
  (image, channel) planes: in the layout cols (N, C*kh*kw, L), plane (n, c) owns the kh*kw
  consecutive rows of image n that hold channel c, one contiguous block of memory; col2im's
  plane owns its plane of ``dx``; so no two threads ever write the same element);
* the bounds test is hoisted out of the innermost loop: for each kernel column kx, the
  output columns whose input column ix = ox*sw - pw + kx*dw lies inside the image form one
  range [ox_lo, ox_hi), computed once (``_valid_range``). The innermost loop is then a plain
  strided copy that the compiler vectorises, and the padding is a plain fill;
* the output array is allocated by the caller with NumPy, not inside the kernel: NumPy asks
  the OS for huge pages for big arrays, and a fresh 40 MB ``cols`` built from 4 KB pages cost
  more in page faults than the copy itself;
* ``cache=True`` stores the compiled code next to this file, so only the first process
  after an install pays the compile.
"""
from numba import njit, prange


@njit(inline="always", cache=True)
def _valid_range(offset, stride, size, out_size):
    """Outputs o in [lo, hi) with 0 <= o*stride + offset < size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - offset + stride - 1) // stride if size > offset else 0
    return min(lo, out_size), max(min(hi, out_size), min(lo, out_size))


@njit(parallel=True, cache=True)
def im2col_cpu(x, geometry, out_h, out_w, cols):
    """x (N, C, H, W) -> fills cols (N, C*kh*kw, out_h*out_w). geometry = (kh, kw, sh, sw, ph, pw, dh, dw)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = x.shape
    # Flat views: one index per element keeps the innermost loop simple enough to vectorise.
    x_flat = x.reshape(-1)
    cols_flat = cols.reshape(-1)
    row_length = out_h * out_w
    for plane in prange(n_images * channels):
        # Row (c*kh + ky)*kw + kx of image n is row (plane*kh + ky)*kw + kx of the flat (N*C*kh*kw, L) matrix.
        for ky in range(kh):
            oy_lo, oy_hi = _valid_range(ky * dh - ph, sh, height, out_h)
            for kx in range(kw):
                row = (plane * kh + ky) * kw + kx
                x_offset = kx * dw - pw
                ox_lo, ox_hi = _valid_range(x_offset, sw, width, out_w)
                for oy in range(out_h):
                    dst = row * row_length + oy * out_w
                    if oy < oy_lo or oy >= oy_hi:  # the whole row of the window is padding
                        for ox in range(out_w):
                            cols_flat[dst + ox] = 0
                        continue
                    src = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                    for ox in range(ox_lo):
                        cols_flat[dst + ox] = 0
                    if sw == 1:  # contiguous source: a straight copy
                        for ox in range(ox_lo, ox_hi):
                            cols_flat[dst + ox] = x_flat[src + ox]
                    else:
                        for ox in range(ox_lo, ox_hi):
                            cols_flat[dst + ox] = x_flat[src + ox * sw]
                    for ox in range(ox_hi, out_w):
                        cols_flat[dst + ox] = 0


@njit(parallel=True, cache=True)
def col2im_cpu(cols, geometry, out_h, out_w, dx):
    """cols (N, C*kh*kw, out_h*out_w) -> adds into dx (N, C, H, W) (zeroed by the caller)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    n_images, channels, height, width = dx.shape
    # Flat views, as in im2col: the innermost loop becomes a plain strided add that vectorises.
    cols_flat = cols.reshape(-1)
    dx_flat = dx.reshape(-1)
    row_length = out_h * out_w
    for plane in prange(n_images * channels):
        for ky in range(kh):
            oy_lo, oy_hi = _valid_range(ky * dh - ph, sh, height, out_h)
            for kx in range(kw):
                row = (plane * kh + ky) * kw + kx
                x_offset = kx * dw - pw
                ox_lo, ox_hi = _valid_range(x_offset, sw, width, out_w)
                for oy in range(oy_lo, oy_hi):
                    dst = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                    src = row * row_length + oy * out_w
                    if sw == 1:  # contiguous destination: a straight add
                        for ox in range(ox_lo, ox_hi):
                            dx_flat[dst + ox] += cols_flat[src + ox]
                    else:
                        for ox in range(ox_lo, ox_hi):
                            dx_flat[dst + ox * sw] += cols_flat[src + ox]
