"""The lattice filter on a GPU: the CUDA C kernels of ``crf.cu`` launched through CuPy.

``*_launch`` describes a launch for arrays of any kind (the tests run it through the CUDA C compiled for
the host); ``lattice_filter_gpu`` allocates with ``xp`` and runs splat, one blur per lattice direction,
and slice, as ``cuda.py`` does.
"""
from .. import cuda_c
from ..cuda_c import Launch, blocks, c_type, ints

SOURCE = "crf/crf.cu"


def entries_by_point(corners, points, xp):
    """(entries, starts): the flat (pixel, corner) indices p*(d+1) + r sorted by the lattice point corners[p, r]
    they touch, ties in increasing flat index, and where each point's run starts (points + 1 offsets)."""
    flat = corners.ravel()
    # a unique sort key (point, then flat index) makes the order the same whichever sort the device uses
    entries = xp.argsort(flat * flat.size + xp.arange(flat.size))
    starts = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(xp.bincount(flat, minlength=points))])
    return entries.astype(xp.int64), starts.astype(xp.int64)


def _grid(rows, channels):
    ints(rows * channels)  # one thread per (row, channel): their count must fit an int
    return (blocks(rows * channels), 1, 1), (cuda_c.THREADS, 1, 1)


def splat_launch(values, weights, entries, starts, lattice):
    points, channels = lattice.shape
    grid, block = _grid(points, channels)
    return Launch(SOURCE, f"splat<{c_type(values.dtype)}>", grid, block,
                  (values, weights, entries, starts, lattice) + ints(points, channels, weights.shape[1]))


def blur_launch(lattice, neighbours, blurred, direction):
    points, channels = lattice.shape
    grid, block = _grid(points, channels)
    return Launch(SOURCE, f"blur<{c_type(lattice.dtype)}>", grid, block,
                  (lattice, neighbours, blurred) + ints(points, channels, direction))


def slice_launch(lattice, corners, weights, out):
    pixels, channels = out.shape
    grid, block = _grid(pixels, channels)
    return Launch(SOURCE, f"slice<{c_type(out.dtype)}>", grid, block,
                  (lattice, corners, weights, out) + ints(pixels, channels, corners.shape[1]))


def lattice_filter_gpu(values, corners, weights, neighbours, xp):
    """values (N, C) -> (N, C): splat, blur along each of the d+1 directions, slice."""
    points = neighbours.shape[1]
    weights = xp.ascontiguousarray(weights, dtype=values.dtype)  # built in float64 on the host: compute in values' dtype
    corners, neighbours = xp.ascontiguousarray(corners, dtype=xp.int64), xp.ascontiguousarray(neighbours, dtype=xp.int64)
    entries, starts = entries_by_point(corners, points, xp)
    ints(corners.size)  # the kernels index the (pixel, corner) entries with 32-bit ints
    entries, starts = entries.astype(xp.int32), starts.astype(xp.int32)
    lattice = xp.empty((points, values.shape[1]), dtype=values.dtype)
    blurred = xp.empty_like(lattice)
    out = xp.empty_like(values)
    if values.size == 0 or points == 0:
        out[...] = 0
        return out
    cuda_c.run(splat_launch(values, weights, entries, starts, lattice))
    for direction in range(corners.shape[1]):
        cuda_c.run(blur_launch(lattice, neighbours, blurred, direction))
        lattice, blurred = blurred, lattice
    cuda_c.run(slice_launch(lattice, corners, weights, out))
    return out
