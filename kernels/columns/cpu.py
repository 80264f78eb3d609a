"""im2col / col2im as Numba CPU kernels: the reference loops, reordered for speed.

Same index arithmetic as ``reference.py``; the differences are all about speed:

* the loops are compiled (``njit``) and the outer loop runs on all cores (``prange`` over
  (image, channel) planes: in the layout cols (N, C*kh*kw, L), plane (n, c) owns the kh*kw
  consecutive rows of image n that hold channel c, one contiguous block of memory; col2im's
  plane owns its plane of ``dx``; so no two threads ever write the same element);
* the bounds test is hoisted out of the innermost loop: for each kernel column kx, the
  output columns whose input column ix = ox*sw - pw + kx*dw lies inside the image form one
  range [ox_lo, ox_hi), computed once (``_valid_range``). The innermost loop is then a plain
  copy, and the padding a plain fill; with stride 1 and long enough rows (``IM2COL_SLICES_FROM``,
  ``COL2IM_SLICES_FROM``) they are written as slices of the flat arrays, which Numba compiles to
  tight vector loops (faster on 64-pixel rows than the element loop; slower on 8-pixel rows, so
  those keep it: benchmarks/README.md);
* the output array is allocated by the caller with NumPy, not inside the kernel: NumPy asks
  the OS for huge pages for big arrays, and a fresh 40 MB ``cols`` built from 4 KB pages cost
  more in page faults than the copy itself;
* each kernel has a serial twin (``*_serial``: the same plane loop in one thread, GIL released)
  for when ``kernels/parallel.py`` already runs one thread per core, each on its share of the batch;
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


#: im2col copies output rows at least this long as slices, shorter ones element by element (a slice costs
#: a few nanoseconds to set up, which a 32-pixel row repays and an 8-pixel one does not: measured both ways);
#: col2im adds slices only from 64 pixels (its slice add lost to the element loop on 32-pixel rows)
IM2COL_SLICES_FROM, COL2IM_SLICES_FROM = 24, 64


@njit(inline="always", cache=True)
def _im2col_plane(x_flat, cols_flat, plane, geometry, height, width, out_h, out_w):
    """Fill the kh*kw rows of cols that hold one (image, channel) plane of x."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    row_length = out_h * out_w
    slices = sw == 1 and out_w >= IM2COL_SLICES_FROM
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
                    if slices:
                        cols_flat[dst:dst + out_w] = 0
                    else:
                        for ox in range(out_w):
                            cols_flat[dst + ox] = 0
                    continue
                src = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                if slices:  # contiguous source: one slice copy, the padding as slice fills
                    cols_flat[dst:dst + ox_lo] = 0
                    cols_flat[dst + ox_lo:dst + ox_hi] = x_flat[src + ox_lo:src + ox_hi]
                    cols_flat[dst + ox_hi:dst + out_w] = 0
                else:
                    for ox in range(ox_lo):
                        cols_flat[dst + ox] = 0
                    for ox in range(ox_lo, ox_hi):
                        cols_flat[dst + ox] = x_flat[src + ox * sw]
                    for ox in range(ox_hi, out_w):
                        cols_flat[dst + ox] = 0


@njit(inline="always", cache=True)
def _col2im_plane(cols_flat, dx_flat, plane, geometry, height, width, out_h, out_w):
    """Add the kh*kw rows of cols that belong to one (image, channel) plane into that plane of dx."""
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    row_length = out_h * out_w
    for ky in range(kh):
        oy_lo, oy_hi = _valid_range(ky * dh - ph, sh, height, out_h)
        for kx in range(kw):
            row = (plane * kh + ky) * kw + kx
            x_offset = kx * dw - pw
            ox_lo, ox_hi = _valid_range(x_offset, sw, width, out_w)
            for oy in range(oy_lo, oy_hi):
                dst = (plane * height + oy * sh - ph + ky * dh) * width + x_offset
                src = row * row_length + oy * out_w
                if sw == 1 and out_w >= COL2IM_SLICES_FROM:  # contiguous destination: one slice add
                    dx_flat[dst + ox_lo:dst + ox_hi] += cols_flat[src + ox_lo:src + ox_hi]
                elif sw == 1:
                    for ox in range(ox_lo, ox_hi):
                        dx_flat[dst + ox] += cols_flat[src + ox]
                else:
                    for ox in range(ox_lo, ox_hi):
                        dx_flat[dst + ox * sw] += cols_flat[src + ox]


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
