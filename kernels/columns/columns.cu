// im2col / col2im in CUDA C, launched through CuPy (gpu.py); twins of cpu.py and cuda.py.
// kernels: im2col col2im
//
// cols has shape (N, C*kh*kw, out_h*out_w): row (n*C + c)*kh*kw + ky*kw + kx holds, for every output
// pixel (oy, ox), the input pixel x[n, c, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw] (0 in the padding).
// Coordinates are 32-bit ints; only memory offsets are 64-bit (long long).

// One thread per (row, output pixel) of cols: blockIdx.x * blockDim.x + threadIdx.x is the output pixel
// (the contiguous axis, so a warp writes 32 neighbouring floats), blockIdx.y walks the rows.
template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, int height, int width, int kh, int kw,
                       int sh, int sw, int ph, int pw, int dh, int dw, int out_h, int out_w, int rows)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    const int pixels = out_h * out_w;
    if (pixel >= pixels) return;
    const int oy = pixel / out_w, ox = pixel - oy * out_w;
    for (int row = blockIdx.y; row < rows; row += gridDim.y) {
        const int kx = row % kw, ky = (row / kw) % kh, plane = row / (kh * kw);  // plane = n*C + c
        const int iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
        T value = T(0);
        if (iy >= 0 && iy < height && ix >= 0 && ix < width)
            value = x[((long long)plane * height + iy) * width + ix];
        cols[(long long)row * pixels + pixel] = value;
    }
}

// One thread per input pixel (iy, ix) of one (image, channel) plane: it *gathers* every column entry
// that was copied from it, so each thread writes only its own pixel (no atomics; the sum is added in the
// same order on every run). Input row iy was read by kernel row ky at output row oy = (iy + ph - ky*dh) / sh,
// when that division is exact and oy lies in [0, out_h); the same for columns.
template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ dx, int height, int width, int kh, int kw,
                       int sh, int sw, int ph, int pw, int dh, int dw, int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= height * width) return;
    const int iy = pixel / width, ix = pixel - iy * width;
    const long long pixels = (long long)out_h * out_w;
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const T* plane_cols = cols + (long long)plane * kh * kw * pixels;  // the kh*kw rows of this plane
        T total = T(0);
        for (int ky = 0; ky < kh; ++ky) {
            const int ty = iy + ph - ky * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= out_h) continue;
            const int oy = ty / sh;
            for (int kx = 0; kx < kw; ++kx) {
                const int tx = ix + pw - kx * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= out_w) continue;
                total += plane_cols[(ky * kw + kx) * pixels + oy * out_w + tx / sw];
            }
        }
        dx[(long long)plane * height * width + pixel] = total;
    }
}
