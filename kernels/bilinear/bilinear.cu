// Bilinear resizing in CUDA C, launched through CuPy (gpu.py); twins of cpu.py and cuda.py.
// kernels: bilinear_forward bilinear_backward
//
// The source taps come from the host (reference.source_taps, cached per size): output row oy reads input
// rows y0[oy] and y1[oy] with weights 1 - ly[oy] and ly[oy]; the same for columns (x0, x1, lx).

// One thread per output pixel: blockIdx.x * blockDim.x + threadIdx.x along a plane, blockIdx.y over planes.
template <typename T>
__global__ void bilinear_forward(const T* __restrict__ x, T* __restrict__ out, const long long* __restrict__ y0,
                                 const long long* __restrict__ y1, const T* __restrict__ ly,
                                 const long long* __restrict__ x0, const long long* __restrict__ x1,
                                 const T* __restrict__ lx, int height, int width, int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= out_h * out_w) return;
    const int oy = pixel / out_w, ox = pixel - oy * out_w;
    const T wy = ly[oy], wx = lx[ox], one = T(1);
    const int top = (int)y0[oy] * width, bottom = (int)y1[oy] * width, left = (int)x0[ox], right = (int)x1[ox];
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const T* image = x + (long long)plane * height * width;
        const T upper = (one - wx) * image[top + left] + wx * image[top + right];
        const T lower = (one - wx) * image[bottom + left] + wx * image[bottom + right];
        out[(long long)plane * out_h * out_w + pixel] = (one - wy) * upper + wy * lower;
    }
}

// One thread per input pixel, gathering from the outputs that read it: rows (4, H) holds, for input row iy,
// [rows[0][iy], rows[1][iy]) the outputs whose first tap is iy and [rows[2][iy], rows[3][iy]) those whose
// second tap is iy (the taps are monotonic, so each set is one range); cols (4, W) the same for columns.
// No atomics: every sum is added in the same order on every run.
template <typename T>
__global__ void bilinear_backward(const T* __restrict__ grad_out, T* __restrict__ dx, const T* __restrict__ ly,
                                  const T* __restrict__ lx, const long long* __restrict__ rows,
                                  const long long* __restrict__ cols, int height, int width, int out_h, int out_w,
                                  int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= height * width) return;
    const int iy = pixel / width, ix = pixel - iy * width;
    const T one = T(1);
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const T* grad = grad_out + (long long)plane * out_h * out_w;
        T total = T(0);
        for (int tap_y = 0; tap_y < 2; ++tap_y) {
            const int oy_end = (int)rows[(2 * tap_y + 1) * height + iy];
            for (int oy = (int)rows[2 * tap_y * height + iy]; oy < oy_end; ++oy) {
                const T wy = tap_y == 1 ? ly[oy] : one - ly[oy];
                for (int tap_x = 0; tap_x < 2; ++tap_x) {
                    const int ox_end = (int)cols[(2 * tap_x + 1) * width + ix];
                    for (int ox = (int)cols[2 * tap_x * width + ix]; ox < ox_end; ++ox) {
                        const T wx = tap_x == 1 ? lx[ox] : one - lx[ox];
                        total += wy * wx * grad[oy * out_w + ox];
                    }
                }
            }
        }
        dx[(long long)plane * height * width + pixel] = total;
    }
}
