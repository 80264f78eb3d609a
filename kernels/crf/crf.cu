// The permutohedral lattice filter's splat, blur and slice in CUDA C, launched through CuPy (gpu.py);
// twins of cuda.py (and of cpu.py's lattice_filter_cpu). The lattice (corners, weights, neighbours) is built
// on the host; every kernel is a gather, so the sums are added in the same order on every run.
// kernels: splat blur slice
//
// values and out are (N, C) (pixel, channel), lattice and blurred (M, C) (lattice point, channel), all
// row-major. One thread per (row, channel), the channel fastest: neighbouring threads read neighbouring
// addresses. index < rows * C is checked to fit an int on the host (gpu.py), so the divisions are 32-bit.

// lattice[i, c] = sum of weights[p, r] * values[p, c] over the (pixel p, corner r) entries of point i:
// entries holds the flat indices p*(d+1) + r sorted by point, point i's run entries[starts[i] .. starts[i+1]);
// both are 32-bit (N*(d+1) < 2^31 is checked on the host), so p = entry / (d+1) is a 32-bit division.
template <typename T>
__global__ void splat(const T* __restrict__ values, const T* __restrict__ weights,
                      const int* __restrict__ entries, const int* __restrict__ starts,
                      T* __restrict__ lattice, int points, int channels, int corners_per_pixel)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= points * channels) return;
    const int i = index / channels, c = index - i * channels;
    T total = T(0);
    for (int k = starts[i]; k < starts[i + 1]; ++k) {
        const int entry = entries[k];
        const int p = entry / corners_per_pixel;
        total += weights[entry] * values[(long long)p * channels + c];
    }
    lattice[index] = total;
}

// One blur step along one lattice direction: a point plus half of each of its two neighbours there
// (neighbours (d+1, M, 2), -1 where a neighbour is not on the lattice).
template <typename T>
__global__ void blur(const T* __restrict__ lattice, const long long* __restrict__ neighbours, T* __restrict__ blurred,
                     int points, int channels, int direction)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= points * channels) return;
    const int i = index / channels, c = index - i * channels;
    const long long* pair = neighbours + ((long long)direction * points + i) * 2;
    const T half = T(0.5);
    T v = lattice[index];
    if (pair[0] >= 0) v += half * lattice[pair[0] * channels + c];
    if (pair[1] >= 0) v += half * lattice[pair[1] * channels + c];
    blurred[index] = v;
}

// out[p, c] = sum over the pixel's d+1 corners r of weights[p, r] * lattice[corners[p, r], c].
template <typename T>
__global__ void slice(const T* __restrict__ lattice, const long long* __restrict__ corners,
                      const T* __restrict__ weights, T* __restrict__ out, int pixels, int channels,
                      int corners_per_pixel)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= pixels * channels) return;
    const int p = index / channels, c = index - p * channels;
    T v = T(0);
    for (int r = 0; r < corners_per_pixel; ++r) {
        const long long k = (long long)p * corners_per_pixel + r;
        v += weights[k] * lattice[corners[k] * channels + c];
    }
    out[index] = v;
}
