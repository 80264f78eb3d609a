"""The permutohedral lattice as Numba CPU kernels: ``reference.py``'s loops, compiled.

* ``build_lattice_cpu`` runs once per image (the corners depend only on the features). Its
  insertions are sequential because they share a hash table (the neighbour lookups that follow
  run in parallel), and it numbers the lattice points in the
  order pixels first touch them, exactly as the reference's dict does, so the two agree index
  for index. The table is open addressing on the first d lattice coordinates (the last one is
  minus their sum).
* ``lattice_filter_cpu`` is the hot loop, run twice per mean-field iteration: splat in parallel
  over channels (each thread adds into its own column, so no two threads write one element),
  blur and slice in parallel over lattice points and pixels.
"""
import math

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _hash(key, d, mask):
    # Combine the coordinates, then mix the bits (MurmurHash3's finaliser): lattice keys are
    # small, structured integers, and without the mixing linear probing clusters badly.
    h = np.uint64(0)
    for k in range(d):
        h = (h + np.uint64(key[k] & 0xFFFFFFFF)) * np.uint64(2531011)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return np.int64(h & np.uint64(mask))


@njit(cache=True)
def _probe(table, keys, key, d, mask):
    """The table slot that holds ``key``, or the empty slot where it would go (linear probing)."""
    slot = _hash(key, d, mask)
    while table[slot] >= 0:
        i = table[slot]
        same = True
        for k in range(d):
            if keys[i, k] != key[k]:
                same = False
                break
        if same:
            return slot
        slot = (slot + 1) & mask
    return slot


@njit(cache=True)
def _find(table, keys, key, d, mask):
    """Index of ``key`` in the table, or -1."""
    return table[_probe(table, keys, key, d, mask)]


@njit(cache=True)
def _find_or_insert(table, keys, key, d, mask, count):
    """(index of ``key``, new count): inserts it as point number ``count`` when absent."""
    slot = _probe(table, keys, key, d, mask)
    if table[slot] >= 0:
        return table[slot], count
    table[slot] = count
    for k in range(d):
        keys[count, k] = key[k]
    return count, count + 1


@njit(parallel=True, cache=True)
def build_lattice_cpu(features, scale, corners, weights):
    """features (N, d), scale (d,) -> fills corners (N, d+1), weights (N, d+1);
    returns neighbours (d+1, M, 2) (-1 where a neighbour is absent)."""
    n, d = features.shape
    capacity = 1
    while capacity < 2 * n * (d + 1):
        capacity *= 2
    mask = np.int64(capacity - 1)
    table = np.full(capacity, -1, dtype=np.int64)
    keys = np.empty((n * (d + 1), d), dtype=np.int64)
    count = 0
    elevated = np.empty(d + 1)
    rem0 = np.empty(d + 1, dtype=np.int64)
    rank = np.empty(d + 1, dtype=np.int64)
    barycentric = np.empty(d + 2)
    key = np.empty(d, dtype=np.int64)
    for p in range(n):
        running = 0.0  # lift onto the hyperplane sum = 0
        for j in range(d, 0, -1):
            cf = features[p, j - 1] * scale[j - 1]
            elevated[j] = running - j * cf
            running += cf
        elevated[0] = running
        total = 0  # nearest remainder-0 point
        for i in range(d + 1):
            v = elevated[i] / (d + 1)
            up, down = math.ceil(v) * (d + 1), math.floor(v) * (d + 1)
            rem0[i] = up if up - elevated[i] < elevated[i] - down else down
            total += rem0[i]
        total //= d + 1
        for i in range(d + 1):  # (explicit loops: under parallel=True, ``rank[:] = 0`` would
            rank[i] = 0         # start a parallel region for every pixel)
        for i in range(d):  # order of the offsets: which corner comes next
            for j in range(i + 1, d + 1):
                if elevated[i] - rem0[i] < elevated[j] - rem0[j]:
                    rank[i] += 1
                else:
                    rank[j] += 1
        for i in range(d + 1):
            rank[i] += total
            if rank[i] < 0:
                rank[i] += d + 1
                rem0[i] += d + 1
            elif rank[i] > d:
                rank[i] -= d + 1
                rem0[i] -= d + 1
        for i in range(d + 2):
            barycentric[i] = 0.0
        for i in range(d + 1):
            v = (elevated[i] - rem0[i]) / (d + 1)
            barycentric[d - rank[i]] += v
            barycentric[d + 1 - rank[i]] -= v
        barycentric[0] += 1.0 + barycentric[d + 1]
        for r in range(d + 1):
            for i in range(d):
                key[i] = rem0[i] + (r if rank[i] <= d - r else r - (d + 1))
            corners[p, r], count = _find_or_insert(table, keys, key, d, mask, count)
            weights[p, r] = barycentric[r]
    neighbours = np.empty((d + 1, count, 2), dtype=np.int64)
    for direction in range(d + 1):
        for i in prange(count):
            minus = np.empty(d, dtype=np.int64)
            plus = np.empty(d, dtype=np.int64)
            for k in range(d):
                minus[k] = keys[i, k] - 1
                plus[k] = keys[i, k] + 1
            if direction < d:
                minus[direction] = keys[i, direction] + d
                plus[direction] = keys[i, direction] - d
            neighbours[direction, i, 0] = _find(table, keys, minus, d, mask)
            neighbours[direction, i, 1] = _find(table, keys, plus, d, mask)
    return neighbours


@njit(parallel=True, cache=True)
def lattice_filter_cpu(values, corners, weights, neighbours, out):
    """values (N, C) -> fills out (N, C): splat, blur along each direction, slice."""
    n, channels = values.shape
    vertices = corners.shape[1]
    points = neighbours.shape[1]
    lattice = np.zeros((points, channels), dtype=values.dtype)
    blurred = np.empty_like(lattice)
    for c in prange(channels):  # splat: each thread owns one channel's column
        for p in range(n):
            for r in range(vertices):
                lattice[corners[p, r], c] += weights[p, r] * values[p, c]
    for direction in range(vertices):  # blur: (1/2, 1, 1/2) along each lattice direction
        for i in prange(points):
            minus, plus = neighbours[direction, i, 0], neighbours[direction, i, 1]
            for c in range(channels):
                v = lattice[i, c]
                if minus >= 0:
                    v += 0.5 * lattice[minus, c]
                if plus >= 0:
                    v += 0.5 * lattice[plus, c]
                blurred[i, c] = v
        lattice, blurred = blurred, lattice
    for p in prange(n):  # slice
        for c in range(channels):
            v = 0.0
            for r in range(vertices):
                v += weights[p, r] * lattice[corners[p, r], c]
            out[p, c] = v
