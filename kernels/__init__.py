"""Hand-written kernels for the hot loops, installed as ``minisegnet.kernels``.

Each hot loop has a folder with three twins side by side:

    reference.py  plain Python loops that read like the formula (tests and lessons)
    cpu.py        Numba CPU kernel (njit, parallel over planes, cached compile)
    cuda.py       Numba CUDA kernel (one thread per element): the readable GPU twin
    <name>.cu     the same GPU kernel in CUDA C, launched through CuPy by gpu.py (cuda_c.py)

The rule for which kernel runs is one line: **the array's device decides**. A
NumPy array goes to the ``cpu.py`` kernel, a CuPy array to the CUDA C kernel (or, with
MINISEGNET_GPU_KERNELS=numba, to the ``cuda.py`` twin; README.md says why both exist). (On the CPU,
a convolution may split its batch over the cores, ``parallel.over_images``. Inside such a worker, and
for an array too small to pay for waking a second core, the entry points run the serial twin of the Numba
kernel: ``parallel.serial_kernel`` decides.)
The plain-loop references are never picked automatically; call them directly.
The functions below are the only entry points the autodiff layer uses, so it
never knows which device kernel ran. They also allocate every kernel's output
(NumPy or CuPy), so the kernels themselves only fill arrays.

Shapes: x is (N, C, H, W). Where a window reads is a ``Geometry``: kernel size, stride, padding and
dilation, each (rows, columns); a pooling geometry leaves dilation at 1. It is a named tuple, so the
entry points also take a plain (kh, kw, sh, sw, ph, pw[, dh, dw]), and the kernels receive plain ints.

A Numba kernel does no bounds checking: an array of the wrong shape makes it read or write
outside memory, silently. ``minisegnet.functional`` checks every argument with a message for
the user; the entry points below check again what the kernels rely on (dtype, rank, the
shapes that must agree), the last line of defence for anyone who calls them directly.
"""
import functools
import importlib
import os
from collections import namedtuple

import numpy as np

from ..backend import is_cupy_array as _on_gpu
from .bilinear.cpu import (bilinear_backward_cpu, bilinear_backward_cpu_serial, bilinear_forward_cpu,
                           bilinear_forward_cpu_serial)
from .bilinear.reference import source_taps
from .columns.cpu import col2im_cpu, col2im_cpu_serial, im2col_cpu, im2col_cpu_serial
from .crf.cpu import build_lattice_cpu, lattice_filter_cpu
from .crf.reference import scale_factors
from .optim.cpu import adam_update_cpu
from .parallel import over_images, serial_kernel  # noqa: F401  (over_images: for the convolutions)
from .pooling.cpu import (avg_pool_backward_cpu, avg_pool_backward_cpu_serial, avg_pool_forward_cpu,
                          avg_pool_forward_cpu_serial, max_pool_backward_cpu, max_pool_backward_cpu_serial,
                          max_pool_forward_cpu, max_pool_forward_cpu_serial)


def _cupy():
    import cupy
    return cupy


#: which kernels a CuPy array runs: "cuda-c", the CUDA C of each folder's .cu file launched through CuPy
#: (``gpu.py``, the default), or "numba", the Numba CUDA twins of ``cuda.py`` (the readable versions;
#: a launch costs ~10x the host time). Set with the environment variable MINISEGNET_GPU_KERNELS.
GPU_KERNELS = os.environ.get("MINISEGNET_GPU_KERNELS", "cuda-c")


def _cuda_c():
    """True when CuPy arrays run the CUDA C kernels, False for the Numba twins (a typo is refused, not ignored)."""
    if GPU_KERNELS not in ("cuda-c", "numba"):
        raise ValueError(f"MINISEGNET_GPU_KERNELS must be 'cuda-c' or 'numba', got {GPU_KERNELS!r}")
    return GPU_KERNELS == "cuda-c"


def _gpu(folder, name):
    """The GPU launcher ``name`` of kernels/<folder>: ``gpu.<name>_gpu`` (CUDA C) or ``cuda.<name>_cuda`` (Numba)."""
    module, suffix = ("gpu", "_gpu") if _cuda_c() else ("cuda", "_cuda")
    return getattr(importlib.import_module(f".{folder}.{module}", __name__), name + suffix)


def _ints(values):
    return tuple(int(v) for v in values)


class Geometry(namedtuple("Geometry", "kernel_h kernel_w stride_h stride_w pad_h pad_w dilation_h dilation_w",
                          defaults=(1, 1))):
    """Where a sliding window reads: the kernel's size, the stride, the zero padding and the dilation, each
    (rows, columns). Output size per axis: (size + 2 pad - dilation (kernel - 1) - 1) // stride + 1.
    The convolution kernels receive it in this order as eight ints (``kh, kw, sh, sw, ph, pw, dh, dw =
    geometry``); the pooling kernels receive the first six (``_pool_ints``)."""
    __slots__ = ()


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_array(op, what, array, ndim):
    """The kernels are compiled for float32 and float64 arrays of a fixed rank."""
    if array.ndim != ndim:
        raise ValueError(f"kernels.{op}: {what} must have {ndim} dimensions, got shape {tuple(array.shape)}")
    if array.dtype not in _FLOATS:
        raise TypeError(f"kernels.{op}: {what} has dtype {array.dtype}; the kernels support float32 and float64")


def _check_geometry(op, geometry, pooling=False):
    """A checked ``Geometry``: kernel, stride and dilation >= 1, padding >= 0. A convolution's has eight
    numbers; a pooling's six (or eight, with dilation 1: pooling here has no dilation)."""
    values = _ints(geometry)
    if len(values) not in ((6, 8) if pooling else (8,)):
        raise ValueError(f"kernels.{op}: geometry must have {'6 (or 8, with dilation 1)' if pooling else '8'} numbers, "
                         f"got {values}")
    geometry = Geometry(*values)
    if min(geometry.kernel_h, geometry.kernel_w, geometry.stride_h, geometry.stride_w, geometry.dilation_h,
           geometry.dilation_w) < 1 or min(geometry.pad_h, geometry.pad_w) < 0:
        raise ValueError(f"kernels.{op}: geometry {values} needs kernel, stride and dilation >= 1 and padding >= 0")
    if pooling and (geometry.dilation_h, geometry.dilation_w) != (1, 1):
        raise ValueError(f"kernels.{op}: pooling has no dilation, got {geometry.dilation_h, geometry.dilation_w}")
    return geometry


def _pool_ints(geometry):
    """The six ints a pooling kernel reads: (kh, kw, sh, sw, ph, pw)."""
    return _ints(geometry)[:6]


def _check_planes(op, array, x_shape):
    """A gradient and the input it belongs to must have the same (N, C) planes and H, W >= 1."""
    if len(x_shape) != 4 or tuple(array.shape[:2]) != tuple(x_shape[:2]) or min(x_shape[2:]) < 1:
        raise ValueError(f"kernels.{op}: gradient of shape {tuple(array.shape)} does not belong to "
                         f"an input of shape {tuple(x_shape)}")


def im2col(x, geometry, out_h, out_w):
    """x (N, C, H, W) -> cols (N, C*kh*kw, out_h*out_w): every receptive field of image n as a column of cols[n]."""
    _check_array("im2col", "x", x, 4)
    geometry = _check_geometry("im2col", geometry)
    if out_h < 0 or out_w < 0:
        raise ValueError(f"kernels.im2col: output size ({out_h}, {out_w}) is negative")
    if _on_gpu(x):
        cp = _cupy()
        return _gpu("columns", "im2col")(cp.ascontiguousarray(x), _ints(geometry), out_h, out_w, cp)
    cols = np.empty((x.shape[0], x.shape[1] * geometry.kernel_h * geometry.kernel_w, out_h * out_w), dtype=x.dtype)
    kernel = im2col_cpu_serial if serial_kernel(cols.nbytes) else im2col_cpu  # (parallel.py says when)
    kernel(np.ascontiguousarray(x), _ints(geometry), out_h, out_w, cols)
    return cols


def col2im(cols, x_shape, geometry, out_h, out_w):
    """cols (N, C*kh*kw, out_h*out_w) -> (N, C, H, W), adding up entries that came from one pixel."""
    _check_array("col2im", "cols", cols, 3)
    geometry = _check_geometry("col2im", geometry)
    if len(x_shape) != 4:
        raise ValueError(f"kernels.col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    n_images, channels = x_shape[0], x_shape[1]
    expected = (n_images, channels * geometry.kernel_h * geometry.kernel_w, out_h * out_w)
    if tuple(cols.shape) != expected:
        raise ValueError(f"kernels.col2im: cols has shape {tuple(cols.shape)}, expected {expected} "
                         f"for an image of shape {tuple(x_shape)} and a {out_h}x{out_w} output")
    if _on_gpu(cols):
        cp = _cupy()
        return _gpu("columns", "col2im")(cp.ascontiguousarray(cols), _ints(x_shape), _ints(geometry), out_h, out_w, cp)
    dx = np.zeros(x_shape, dtype=cols.dtype)
    kernel = col2im_cpu_serial if serial_kernel(cols.nbytes) else col2im_cpu
    kernel(np.ascontiguousarray(cols), _ints(geometry), out_h, out_w, dx)
    return dx


def _check_pool_output(op, x_shape, geometry, out_h, out_w):
    """Every window must start inside the image or its left/top padding (the kernels read its first pixel)."""
    g = geometry
    if out_h < 0 or out_w < 0 or (out_h and (out_h - 1) * g.stride_h - g.pad_h >= x_shape[2]) or \
            (out_w and (out_w - 1) * g.stride_w - g.pad_w >= x_shape[3]):
        raise ValueError(f"kernels.{op}: a {out_h}x{out_w} output of an input of shape {tuple(x_shape)} with "
                         f"geometry {_pool_ints(g)} has windows that start outside the image")


def max_pool_forward(x, geometry, out_h, out_w):
    """-> (out, argmax): the window maxima and the flat index iy*W + ix of each (first) maximum."""
    _check_array("max_pool_forward", "x", x, 4)
    geometry = _check_geometry("max_pool_forward", geometry, pooling=True)
    if geometry.pad_h > geometry.kernel_h // 2 or geometry.pad_w > geometry.kernel_w // 2:
        # a window made only of padding would have no maximum for argmax to point at
        raise ValueError(f"kernels.max_pool_forward: padding {geometry.pad_h, geometry.pad_w} is more than half the "
                         f"kernel {geometry.kernel_h, geometry.kernel_w}")
    _check_pool_output("max_pool_forward", x.shape, geometry, out_h, out_w)
    if _on_gpu(x):
        cp = _cupy()
        return _gpu("pooling", "max_pool_forward")(cp.ascontiguousarray(x), _pool_ints(geometry), out_h, out_w, cp)
    out = np.empty(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    kernel = max_pool_forward_cpu_serial if serial_kernel(x.nbytes) else max_pool_forward_cpu
    kernel(np.ascontiguousarray(x), _pool_ints(geometry), out, argmax)
    return out, argmax


def max_pool_backward(grad_out, argmax, x_shape, geometry):
    _check_array("max_pool_backward", "grad_out", grad_out, 4)
    _check_planes("max_pool_backward", grad_out, x_shape)
    if tuple(argmax.shape) != tuple(grad_out.shape):
        raise ValueError(f"kernels.max_pool_backward: argmax has shape {tuple(argmax.shape)}, "
                         f"grad_out {tuple(grad_out.shape)}")
    if argmax.dtype.kind not in "iu":
        raise TypeError(f"kernels.max_pool_backward: argmax holds {argmax.dtype}, not integer pixel indices")
    geometry = _check_geometry("max_pool_backward", geometry, pooling=True)
    if _on_gpu(grad_out):  # (the GPU kernel gathers: an index outside the image matches no pixel, writes nothing)
        cp = _cupy()
        return _gpu("pooling", "max_pool_backward")(cp.ascontiguousarray(grad_out),
                                                    cp.ascontiguousarray(argmax, dtype=cp.int64), _ints(x_shape),
                                                    _pool_ints(geometry), cp)
    # The CPU kernel scatters to dx[argmax]: an index outside the image would write outside dx.
    if argmax.size and (int(argmax.min()) < 0 or int(argmax.max()) >= x_shape[2] * x_shape[3]):
        raise ValueError(f"kernels.max_pool_backward: argmax holds indices outside [0, {x_shape[2] * x_shape[3]}), "
                         f"from {int(argmax.min())} to {int(argmax.max())}")
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    kernel = max_pool_backward_cpu_serial if serial_kernel(dx.nbytes) else max_pool_backward_cpu
    kernel(np.ascontiguousarray(grad_out), argmax, dx)
    return dx


def avg_pool_forward(x, geometry, out_h, out_w):
    _check_array("avg_pool_forward", "x", x, 4)
    geometry = _check_geometry("avg_pool_forward", geometry, pooling=True)
    _check_pool_output("avg_pool_forward", x.shape, geometry, out_h, out_w)
    if _on_gpu(x):
        cp = _cupy()
        return _gpu("pooling", "avg_pool_forward")(cp.ascontiguousarray(x), _pool_ints(geometry), out_h, out_w, cp)
    out = np.empty(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
    kernel = avg_pool_forward_cpu_serial if serial_kernel(x.nbytes) else avg_pool_forward_cpu
    kernel(np.ascontiguousarray(x), _pool_ints(geometry), out)
    return out


def avg_pool_backward(grad_out, x_shape, geometry):
    _check_array("avg_pool_backward", "grad_out", grad_out, 4)
    _check_planes("avg_pool_backward", grad_out, x_shape)
    geometry = _check_geometry("avg_pool_backward", geometry, pooling=True)
    if _on_gpu(grad_out):
        cp = _cupy()
        return _gpu("pooling", "avg_pool_backward")(cp.ascontiguousarray(grad_out), _ints(x_shape), _pool_ints(geometry),
                                                    cp)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    kernel = avg_pool_backward_cpu_serial if serial_kernel(dx.nbytes) else avg_pool_backward_cpu
    kernel(np.ascontiguousarray(grad_out), _pool_ints(geometry), dx)
    return dx


@functools.lru_cache(maxsize=128)
def cached_source_taps(in_size, out_size, scale, align_corners):
    """``source_taps`` computed once per (in_size, out_size, scale, align_corners): it is a Python
    loop over the output pixels, and a network resizes the same few sizes on every forward and
    backward pass. The arrays are read-only, so no caller can corrupt the cached value."""
    taps = source_taps(in_size, out_size, scale, align_corners)
    for array in taps:
        array.flags.writeable = False
    return taps


def bilinear_taps(in_hw, out_hw, scales, align_corners, dtype, xp=np):
    """(y0, y1, ly, x0, x1, lx): the source rows/columns and weights, on the device of ``xp``."""
    taps = []
    for in_size, out_size, scale in zip(in_hw, out_hw, scales):
        i0, i1, lam = cached_source_taps(int(in_size), int(out_size), scale, bool(align_corners))
        # copies (a few hundred numbers): the kernels get arrays of their own, the cache stays read-only
        taps += [xp.array(i0), xp.array(i1), xp.array(lam, dtype=dtype)]
    return tuple(taps)


def bilinear_forward(x, out_hw, scales, align_corners):
    """x (N, C, H, W) -> (N, C, out_h, out_w); scales = (in/out or 1/scale_factor) per axis."""
    _check_array("bilinear_forward", "x", x, 4)
    if min(x.shape[2:]) < 1 or len(out_hw) != 2 or min(out_hw) < 1:
        # an empty input has no pixel for the taps to point at: they would read outside it
        raise ValueError(f"kernels.bilinear_forward: cannot resize an input of shape {tuple(x.shape)} "
                         f"to {tuple(out_hw)}; both need H, W >= 1")
    if _on_gpu(x) and _cuda_c():  # taps cached on the GPU (bilinear/gpu.py)
        from .bilinear.gpu import bilinear_forward_gpu
        cp = _cupy()
        return bilinear_forward_gpu(cp.ascontiguousarray(x), tuple(out_hw), tuple(scales), align_corners, cp)
    xp = _cupy() if _on_gpu(x) else np
    taps = bilinear_taps(x.shape[2:], out_hw, scales, align_corners, x.dtype, xp)
    if xp is not np:
        from .bilinear.cuda import bilinear_forward_cuda
        return bilinear_forward_cuda(xp.ascontiguousarray(x), taps, xp)
    out = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    kernel = bilinear_forward_cpu_serial if serial_kernel(out.nbytes) else bilinear_forward_cpu
    kernel(np.ascontiguousarray(x), *taps, out)
    return out


def bilinear_backward(grad_out, x_shape, scales, align_corners):
    _check_array("bilinear_backward", "grad_out", grad_out, 4)
    _check_planes("bilinear_backward", grad_out, x_shape)
    if min(grad_out.shape[2:]) < 1:
        raise ValueError(f"kernels.bilinear_backward: grad_out has an empty output size {tuple(grad_out.shape)}")
    if _on_gpu(grad_out) and _cuda_c():
        from .bilinear.gpu import bilinear_backward_gpu
        cp = _cupy()
        return bilinear_backward_gpu(cp.ascontiguousarray(grad_out), _ints(x_shape), tuple(scales), align_corners, cp)
    xp = _cupy() if _on_gpu(grad_out) else np
    taps = bilinear_taps(x_shape[2:], grad_out.shape[2:], scales, align_corners, grad_out.dtype, xp)
    if xp is not np:
        from .bilinear.cuda import bilinear_backward_cuda
        return bilinear_backward_cuda(xp.ascontiguousarray(grad_out), _ints(x_shape), taps, xp)
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    kernel = bilinear_backward_cpu_serial if serial_kernel(dx.nbytes) else bilinear_backward_cpu
    kernel(np.ascontiguousarray(grad_out), *taps, dx)
    return dx


def permutohedral_lattice(features):
    """features (N, d), divided by the kernel widths -> (corners (N, d+1), weights (N, d+1),
    neighbours (d+1, M, 2)), on the features' device. Built on the host either way: it fills a
    hash table, once per image (kernels/crf/cpu.py)."""
    host = features.get() if _on_gpu(features) else features
    host = np.ascontiguousarray(host, dtype=np.float64)
    n, d = host.shape
    corners = np.empty((n, d + 1), dtype=np.int64)
    weights = np.empty((n, d + 1), dtype=np.float64)
    neighbours = build_lattice_cpu(host, scale_factors(d), corners, weights)
    if _on_gpu(features):
        cp = _cupy()
        return cp.asarray(corners), cp.asarray(weights), cp.asarray(neighbours)
    return corners, weights, neighbours


def lattice_filter(values, lattice):
    """values (N, C) -> (N, C): splat onto the lattice, blur, slice (about a Gaussian sum over all pixels)."""
    corners, weights, neighbours = lattice
    if values.ndim != 2 or values.shape[0] != corners.shape[0]:
        raise ValueError(f"kernels.lattice_filter: values of shape {tuple(values.shape)} do not match a lattice "
                         f"built for {corners.shape[0]} points")
    if _on_gpu(values):
        cp = _cupy()
        return _gpu("crf", "lattice_filter")(cp.ascontiguousarray(values), corners, weights, neighbours, cp)
    out = np.empty_like(values)
    lattice_filter_cpu(np.ascontiguousarray(values), corners, weights, neighbours, out)
    return out


def adam_update(p, g, m, v, lr, betas, eps, step, weight_decay):
    """One Adam step for one parameter, in place: p, m and v updated from the gradient g
    (formula in ``optim/reference.py``). All four arrays share one shape, dtype and device."""
    for what, array in (("g", g), ("m", m), ("v", v)):
        if array.shape != p.shape or array.dtype != p.dtype or _on_gpu(array) != _on_gpu(p):
            raise ValueError(f"kernels.adam_update: {what} is a {array.dtype} array of shape {tuple(array.shape)}, "
                             f"the parameter a {p.dtype} array of shape {tuple(p.shape)}; they must match")
    b1, b2 = betas
    correction1, correction2 = 1 / (1 - b1 ** step), 1 / (1 - b2 ** step)
    contiguous = all(a.flags.c_contiguous for a in (p, g, m, v))
    if _on_gpu(p) and contiguous and _cuda_c():  # one fused launch (optim/adam.cu)
        from .optim.gpu import adam_update_gpu
        adam_update_gpu(p, g, m, v, lr, b1, b2, eps, correction1, correction2, weight_decay)
        return
    if _on_gpu(p) or not contiguous:
        # Array expressions (several passes; on a GPU several launches)
        xp = _cupy() if _on_gpu(p) else np
        grad = g + weight_decay * p if weight_decay else g
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        p -= (lr * correction1 * m / (xp.sqrt(v * correction2) + eps)).astype(p.dtype, copy=False)
        return
    scalar = p.dtype.type  # float32 parameters are updated in float32 arithmetic, as in PyTorch
    adam_update_cpu(p, g, m, v, scalar(lr), scalar(b1), scalar(b2), scalar(eps), scalar(correction1),
                    scalar(correction2), scalar(weight_decay))
