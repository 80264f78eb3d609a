"""The permutohedral lattice filter as Numba CUDA kernels, twins of ``cpu.py``'s hot loop.

The lattice itself (which corners each pixel touches, with what weight, and who neighbours
whom) is built once per image by ``cpu.build_lattice_cpu`` on the host, because it fills a
hash table; its arrays are then copied to the device and the mean-field iterations run the
three kernels below on the GPU:

* splat: one thread per (lattice point, channel), *gathering* the weighted values of the
  pixels that touch it (many pixels share a corner). Scattering from each pixel into its d+1
  corners would need ``cuda.atomic.add``, whose additions land in a different order on every
  run; the gather reads a list of (pixel, corner) entries sorted by lattice point, built
  once per lattice (``_entries_by_point``), so the result is the same on every run;
* blur: one thread per (lattice point, channel), reading its two neighbours (a gather, no
  atomics), once per lattice direction;
* slice: one thread per (pixel, channel), reading its d+1 corners.
"""
import math

from numba import cuda

from .gpu import entries_by_point as _entries_by_point  # (shared with the CUDA C launcher)

THREADS = 256


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


@cuda.jit
def _splat_kernel(values, weights, entries, starts, lattice):
    """lattice[i, c] = sum of weights[p, r] * values[p, c] over the (pixel p, corner r) entries whose corner is
    point i: entries (N*(d+1),) holds the flat indices p*(d+1) + r sorted by point, point i's run
    entries[starts[i]:starts[i + 1]], in increasing flat index (a fixed order of additions)."""
    index = cuda.grid(1)
    points, channels = lattice.shape
    if index >= points * channels:
        return
    i = index // channels
    c = index % channels
    corners_per_pixel = weights.shape[1]
    v = lattice.dtype.type(0)
    for k in range(starts[i], starts[i + 1]):
        entry = entries[k]
        p = entry // corners_per_pixel
        v += weights[p, entry % corners_per_pixel] * values[p, c]
    lattice[i, c] = v


@cuda.jit
def _blur_kernel(lattice, neighbours, direction, blurred):
    index = cuda.grid(1)
    points, channels = lattice.shape
    if index >= points * channels:
        return
    i = index // channels
    c = index % channels
    minus = neighbours[direction, i, 0]
    plus = neighbours[direction, i, 1]
    v = lattice[i, c]
    half = lattice.dtype.type(0.5)  # a bare 0.5 would be a float64
    if minus >= 0:
        v += half * lattice[minus, c]
    if plus >= 0:
        v += half * lattice[plus, c]
    blurred[i, c] = v


@cuda.jit
def _slice_kernel(lattice, corners, weights, out):
    index = cuda.grid(1)
    n, channels = out.shape
    if index >= n * channels:
        return
    p = index // channels
    c = index % channels
    v = out.dtype.type(0)
    for r in range(corners.shape[1]):
        v += weights[p, r] * lattice[corners[p, r], c]
    out[p, c] = v


def lattice_filter_cuda(values, corners, weights, neighbours, xp):
    """values (N, C) CuPy -> (N, C): splat, blur along each of the d+1 directions, slice."""
    n, channels = values.shape
    points = neighbours.shape[1]
    weights = weights.astype(values.dtype)  # the host builds them in float64: a float32 filter runs in float32
    entries, starts = _entries_by_point(corners, points, xp)
    lattice = xp.empty((points, channels), dtype=values.dtype)
    blurred = xp.empty_like(lattice)
    _splat_kernel[_blocks(lattice.size), THREADS](values, weights, entries, starts, lattice)
    for direction in range(corners.shape[1]):
        _blur_kernel[_blocks(lattice.size), THREADS](lattice, neighbours, direction, blurred)
        lattice, blurred = blurred, lattice
    out = xp.empty_like(values)
    _slice_kernel[_blocks(n * channels), THREADS](lattice, corners, weights, out)
    return out
