"""im2col / col2im as Numba CPU kernels: the reference loops, reordered for speed.

Same index arithmetic as ``reference.py``; the differences are all about speed:

* the loops are compiled (``njit``) and the outer loop runs on all cores (``prange`` over
  (image, channel) planes: in the layout cols (N, C*kh*kw, L), plane (n, c) owns the kh*kw
  consecutive rows of image n that hold channel c, one contiguous block of memory; col2im's
  plane owns its plane of ``dx``; so no two threads ever write the same element);
* the bounds test is hoisted out of the innermost loop: for each kernel column kx, the
  output columns whose input column ix = ox*sw - pw + kx*dw lies inside the image form one
  range [ox_lo, ox_hi), computed once (``_valid_range``). The innermost loop is then a plain
  copy, and the padding a plain fill, both indexed with unsigned integers so that LLVM compiles
  them to vector instructions (see ``U`` below);
* the output array is allocated by the caller with NumPy, not inside the kernel: NumPy asks
  the OS for huge pages for big arrays, and a fresh 40 MB ``cols`` built from 4 KB pages cost
  more in page faults than the copy itself;
* each kernel has a serial twin (``*_serial``: the same plane loop in one thread, GIL released)
  for when ``kernels/parallel.py`` already runs one thread per core, each on its share of the batch;
* ``cache=True`` stores the compiled code next to this file, so only the first process
  after an install pays the compile.
"""
import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _valid_range(offset, stride, size, out_size):
    """Outputs o in [lo, hi) with 0 <= o*stride + offset < size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = (size - offset + stride - 1) // stride if size > offset else 0
    return min(lo, out_size), max(min(hi, out_size), min(lo, out_size))


# Why every index below is an unsigned ``np.uintp``: Numba supports Python's negative indices, so
# for a signed index i it compiles ``a[i]`` as ``a[i + n if i < 0 else i]``. That branch inside the
# innermost loop stops LLVM from turning the loop into vector instructions; with an unsigned index
# there is no negative case and the copy loop becomes a plain vectorised copy. On 2 cores this made
# im2col 4-5x faster on 64-pixel rows (1.18 -> 0.34 ms for 2 images of 32 channels, 64x64: from 8 to
# 28 GB/s of columns written; benchmarks/README.md). The indices are never negative: _valid_range
# keeps every read inside the image, and everything outside it is written as zero.
U = np.uintp


@njit(inline="always", cache=True)
def _fill_zero(flat, start, stop):
    for i in range(U(start), U(stop)):
        flat[i] = 0


@njit(inline="always", cache=True)
def _im2col_plane(x_flat, cols_flat, plane, geometry, height, width, out_h, out_w):
    """Fill the kh*kw rows of cols that hold one (image, channel) plane of x."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    row_length = out_h * out_w
    # Row (c*kh + ky)*kw + kx of image n is row (plane*kh + ky)*kw + kx of the flat (N*C*kh*kw, L) matrix.
    for ky in range(kh):
        oy_lo, oy_hi = _valid_range(ky * dh - ph, sh, height, out_h)
        for kx in range(kw):
            row_start = ((plane * kh + ky) * kw + kx) * row_length
            x_offset = kx * dw - pw
            ox_lo, ox_hi = _valid_range(x_offset, sw, width, out_w)
            _fill_zero(cols_flat, row_start, row_start + oy_lo * out_w)          # window rows above the image
            for oy in range(oy_lo, oy_hi):
                dst = row_start + oy * out_w
                # where output pixel ox = 0 of this row reads x (may lie left of the image: never read there)
                src = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                _fill_zero(cols_flat, dst, dst + ox_lo)                          # left padding
                to, start, step = U(dst + ox_lo), U(src + ox_lo * sw), U(sw)
                for i in range(U(ox_hi - ox_lo)):                                # stride 1: a vectorised copy
                    cols_flat[to + i] = x_flat[start + i * step]
                _fill_zero(cols_flat, dst + ox_hi, dst + out_w)                  # right padding
            _fill_zero(cols_flat, row_start + oy_hi * out_w, row_start + row_length)  # rows below the image


@njit(inline="always", cache=True)
def _col2im_plane(cols_flat, dx_flat, plane, geometry, height, width, out_h, out_w):
    """Add the kh*kw rows of cols that belong to one (image, channel) plane into that plane of dx."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    row_length = out_h * out_w
    for ky in range(kh):
        oy_lo, oy_hi = _valid_range(ky * dh - ph, sh, height, out_h)
        for kx in range(kw):
            row_start = ((plane * kh + ky) * kw + kx) * row_length
            x_offset = kx * dw - pw
            ox_lo, ox_hi = _valid_range(x_offset, sw, width, out_w)
            for oy in range(oy_lo, oy_hi):
                dst = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                src = row_start + oy * out_w
                to, start, step = U(dst + ox_lo * sw), U(src + ox_lo), U(sw)
                for i in range(U(ox_hi - ox_lo)):                                # stride 1: a vectorised add
                    dx_flat[to + i * step] += cols_flat[start + i]


# Flat views: one index per element keeps the innermost loops simple enough to vectorise.

@njit(parallel=True, cache=True)
def im2col_cpu(x, geometry, out_h, out_w, cols):
    """x (N, C, H, W) -> fills cols (N, C*kh*kw, out_h*out_w). geometry = (kh, kw, sh, sw, ph, pw, dh, dw)."""
    n_images, channels, height, width = x.shape
    x_flat, cols_flat = x.reshape(-1), cols.reshape(-1)
    for plane in prange(n_images * channels):
        _im2col_plane(x_flat, cols_flat, plane, geometry, height, width, out_h, out_w)


@njit(parallel=True, cache=True)
def col2im_cpu(cols, geometry, out_h, out_w, dx):
    """cols (N, C*kh*kw, out_h*out_w) -> adds into dx (N, C, H, W) (zeroed by the caller)."""
    n_images, channels, height, width = dx.shape
    cols_flat, dx_flat = cols.reshape(-1), dx.reshape(-1)
    for plane in prange(n_images * channels):
        _col2im_plane(cols_flat, dx_flat, plane, geometry, height, width, out_h, out_w)


# The serial twins, for a caller that already runs one thread per core (kernels/parallel.py):
# the same planes in one thread, and without the GIL, so that the other cores' threads run meanwhile.

@njit(nogil=True, cache=True)
def im2col_cpu_serial(x, geometry, out_h, out_w, cols):
    n_images, channels, height, width = x.shape
    x_flat, cols_flat = x.reshape(-1), cols.reshape(-1)
    for plane in range(n_images * channels):
        _im2col_plane(x_flat, cols_flat, plane, geometry, height, width, out_h, out_w)


@njit(nogil=True, cache=True)
def col2im_cpu_serial(cols, geometry, out_h, out_w, dx):
    n_images, channels, height, width = dx.shape
    cols_flat, dx_flat = cols.reshape(-1), dx.reshape(-1)
    for plane in range(n_images * channels):
        _col2im_plane(cols_flat, dx_flat, plane, geometry, height, width, out_h, out_w)
