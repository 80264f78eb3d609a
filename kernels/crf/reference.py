"""The permutohedral lattice (Adams, Baek & Davis, 2010) as plain loops: the definition the
fast kernels are held to.

A fully connected CRF needs, for every pixel i, the Gaussian-weighted sum over *all* pixels j

    out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j          (f: features already divided by theta)

which costs N^2. The lattice does it in O(N (d+1)) for d-dimensional features:

1. **Embed.** Each feature vector is lifted onto the hyperplane x_0 + ... + x_d = 0 of R^(d+1),
   which the permutohedral lattice tiles with simplices (``elevate``).
2. **Splat.** Each pixel lands in one simplex and spreads its value onto that simplex's d+1
   corners with barycentric weights (the corners are found by sorting the coordinates:
   ``enclosing_simplex``).
3. **Blur.** Along each of the d+1 lattice directions, every corner is mixed with its two
   neighbours with weights (1/2, 1, 1/2): a separable approximation of a Gaussian.
4. **Slice.** Each pixel reads back the barycentric mix of its simplex's corners.

The corners a pixel touches and their weights depend only on the features, so they are
computed once (``build_lattice_reference``: a Python dict plays the hash table) and the
mean-field iterations only repeat splat / blur / slice (``lattice_filter_reference``).

The result equals the Gaussian sum up to a constant factor (the lattice's cell volume),
which ``minisegnet.crf`` calibrates against exact sums on a sample of pixels.
"""
import math

import numpy as np


def scale_factors(d):
    """Per-axis feature scaling before the lift, so the lattice blur matches a unit Gaussian."""
    return np.array([(d + 1) * math.sqrt(2.0 / 3.0) / math.sqrt((i + 1) * (i + 2)) for i in range(d)])


def elevate(f, scale):
    """f (d,) -> (d+1,) point on the hyperplane sum = 0 (the lattice's home)."""
    d = f.shape[0]
    elevated = np.empty(d + 1)
    running = 0.0
    for j in range(d, 0, -1):
        cf = f[j - 1] * scale[j - 1]
        elevated[j] = running - j * cf
        running += cf
    elevated[0] = running
    return elevated


def enclosing_simplex(elevated):
    """The simplex around an elevated point: (rem0, rank, barycentric).

    rem0: the nearest lattice point whose coordinates are all multiples of d+1 ("remainder 0");
    rank: the order of the point's offsets from rem0 along each axis, which says which corner
    comes next; barycentric (d+2,): the weight of each of the d+1 corners (the last entry is
    scratch)."""
    d = elevated.shape[0] - 1
    rem0 = np.empty(d + 1, dtype=np.int64)
    total = 0
    for i in range(d + 1):
        v = elevated[i] / (d + 1)
        up, down = math.ceil(v) * (d + 1), math.floor(v) * (d + 1)
        rem0[i] = up if up - elevated[i] < elevated[i] - down else down
        total += rem0[i]
    total //= d + 1
    rank = np.zeros(d + 1, dtype=np.int64)
    for i in range(d):
        for j in range(i + 1, d + 1):
            if elevated[i] - rem0[i] < elevated[j] - rem0[j]:
                rank[i] += 1
            else:
                rank[j] += 1
    for i in range(d + 1):  # the nearest point may not lie on the hyperplane: wrap it back
        rank[i] += total
        if rank[i] < 0:
            rank[i] += d + 1
            rem0[i] += d + 1
        elif rank[i] > d:
            rank[i] -= d + 1
            rem0[i] -= d + 1
    barycentric = np.zeros(d + 2)
    for i in range(d + 1):
        v = (elevated[i] - rem0[i]) / (d + 1)
        barycentric[d - rank[i]] += v
        barycentric[d + 1 - rank[i]] -= v
    barycentric[0] += 1.0 + barycentric[d + 1]
    return rem0, rank, barycentric


def corner_key(rem0, rank, r):
    """The lattice coordinates (first d of d+1; they sum to 0) of corner r of the simplex."""
    d = rem0.shape[0] - 1
    return tuple(int(rem0[i] + (r if rank[i] <= d - r else r - (d + 1))) for i in range(d))


def neighbour_keys(key, direction):
    """The two lattice neighbours of a point along one of the d+1 lattice directions."""
    d = len(key)
    minus = [k - 1 for k in key]
    plus = [k + 1 for k in key]
    if direction < d:
        minus[direction] = key[direction] + d
        plus[direction] = key[direction] - d
    return tuple(minus), tuple(plus)


def build_lattice_reference(features):
    """features (N, d), already divided by the kernel widths ->
    (corners (N, d+1) int64, weights (N, d+1), neighbours (d+1, M, 2) int64 with -1 = absent)."""
    n, d = features.shape
    scale = scale_factors(d)
    table = {}  # lattice key -> index of the lattice point
    corners = np.empty((n, d + 1), dtype=np.int64)
    weights = np.empty((n, d + 1))
    for p in range(n):
        rem0, rank, barycentric = enclosing_simplex(elevate(features[p], scale))
        for r in range(d + 1):
            corners[p, r] = table.setdefault(corner_key(rem0, rank, r), len(table))
            weights[p, r] = barycentric[r]
    keys = list(table)
    neighbours = np.full((d + 1, len(keys), 2), -1, dtype=np.int64)
    for direction in range(d + 1):
        for i, key in enumerate(keys):
            minus, plus = neighbour_keys(key, direction)
            neighbours[direction, i] = table.get(minus, -1), table.get(plus, -1)
    return corners, weights, neighbours


def lattice_filter_reference(values, corners, weights, neighbours):
    """values (N, C) -> (N, C): splat onto the lattice, blur along each direction, slice back."""
    n, channels = values.shape
    d = corners.shape[1] - 1
    lattice = np.zeros((neighbours.shape[1], channels))
    for p in range(n):  # splat
        for r in range(d + 1):
            for c in range(channels):
                lattice[corners[p, r], c] += weights[p, r] * values[p, c]
    for direction in range(d + 1):  # blur: (1/2, 1, 1/2) along each direction in turn
        blurred = lattice.copy()
        for i in range(lattice.shape[0]):
            for side in range(2):
                j = neighbours[direction, i, side]
                if j >= 0:
                    for c in range(channels):
                        blurred[i, c] += 0.5 * lattice[j, c]
        lattice = blurred
    out = np.zeros((n, channels))
    for p in range(n):  # slice
        for r in range(d + 1):
            for c in range(channels):
                out[p, c] += weights[p, r] * lattice[corners[p, r], c]
    return out


def gaussian_sum_reference(features, values):
    """The exact sum the lattice approximates: out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j (N^2)."""
    out = np.zeros_like(values, dtype=np.float64)
    for i in range(features.shape[0]):
        for j in range(features.shape[0]):
            out[i] += math.exp(-0.5 * float(np.sum((features[i] - features[j]) ** 2))) * values[j]
    return out
