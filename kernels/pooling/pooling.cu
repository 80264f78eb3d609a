// Max and average pooling in CUDA C, launched through CuPy (gpu.py); twins of cpu.py and cuda.py.
// kernels: max_pool_forward max_pool_backward avg_pool_forward avg_pool_backward
//
// x is (N, C, H, W), seen as N*C planes of H x W; the outputs are (N, C, out_h, out_w). Forward: one
// thread per output pixel; backward: one thread per input pixel, gathering from every window that holds
// it (no atomics: the sums are added in the same order on every run). blockIdx.x * blockDim.x +
// threadIdx.x runs along a plane (the contiguous axis), blockIdx.y over the planes.

// The window of output o along one axis: input positions [first, last) inside the image, and its size
// counting the padding (average pooling divides by it, count_include_pad as in PyTorch).
__device__ __forceinline__ void window(int o, int stride, int pad, int kernel, int size, int& first, int& last,
                                       int& padded_size)
{
    const int start = o * stride - pad;
    const int end_padded = min(start + kernel, size + pad);
    first = max(start, 0);
    last = min(end_padded, size);
    padded_size = end_padded - start;
}

// The outputs [first, last) along one axis whose window holds input position i.
__device__ __forceinline__ void outputs_covering(int i, int stride, int pad, int kernel, int out_size, int& first,
                                                 int& last)
{
    // ceil((i + pad - kernel + 1) / stride), or 0; C's division truncates a negative numerator towards 0
    // where Python's floors it, and both give 0 after the max
    first = max(0, (i + pad - kernel + stride) / stride);
    last = min(out_size, (i + pad) / stride + 1);
}

// The window's largest value and the flat index iy*W + ix of its first maximum; a NaN always wins (the
// last NaN, as in PyTorch). best starts at the window's first pixel: no infinity constant is needed.
template <typename T>
__global__ void max_pool_forward(const T* __restrict__ x, T* __restrict__ out, long long* __restrict__ argmax,
                                 int height, int width, int kh, int kw, int sh, int sw, int ph, int pw,
                                 int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= out_h * out_w) return;
    const int oy = pixel / out_w, ox = pixel - oy * out_w;
    int y0, y1, x0, x1, unused;
    window(oy, sh, ph, kh, height, y0, y1, unused);
    window(ox, sw, pw, kw, width, x0, x1, unused);
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const T* image = x + (long long)plane * height * width;
        int best_index = y0 * width + x0;
        T best = image[best_index];
        for (int iy = y0; iy < y1; ++iy)
            for (int ix = x0; ix < x1; ++ix) {
                const T v = image[iy * width + ix];
                if (v > best || v != v) {  // strict: ties keep the first; v != v: v is NaN
                    best = v;
                    best_index = iy * width + ix;
                }
            }
        const long long o = (long long)plane * out_h * out_w + pixel;
        out[o] = best;
        argmax[o] = best_index;
    }
}

template <typename T>
__global__ void max_pool_backward(const T* __restrict__ grad_out, const long long* __restrict__ argmax,
                                  T* __restrict__ dx, int height, int width, int kh, int kw, int sh, int sw,
                                  int ph, int pw, int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= height * width) return;
    const int iy = pixel / width, ix = pixel - iy * width;
    int oy0, oy1, ox0, ox1;
    outputs_covering(iy, sh, ph, kh, out_h, oy0, oy1);
    outputs_covering(ix, sw, pw, kw, out_w, ox0, ox1);
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const long long base = (long long)plane * out_h * out_w;
        T total = T(0);
        for (int oy = oy0; oy < oy1; ++oy)
            for (int ox = ox0; ox < ox1; ++ox)
                if (argmax[base + oy * out_w + ox] == pixel) total += grad_out[base + oy * out_w + ox];
        dx[(long long)plane * height * width + pixel] = total;
    }
}

template <typename T>
__global__ void avg_pool_forward(const T* __restrict__ x, T* __restrict__ out, int height, int width, int kh,
                                 int kw, int sh, int sw, int ph, int pw, int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= out_h * out_w) return;
    const int oy = pixel / out_w, ox = pixel - oy * out_w;
    int y0, y1, count_y, x0, x1, count_x;
    window(oy, sh, ph, kh, height, y0, y1, count_y);
    window(ox, sw, pw, kw, width, x0, x1, count_x);
    const T divisor = T(count_y * count_x);
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const T* image = x + (long long)plane * height * width;
        T total = T(0);
        for (int iy = y0; iy < y1; ++iy)
            for (int ix = x0; ix < x1; ++ix) total += image[iy * width + ix];
        out[(long long)plane * out_h * out_w + pixel] = total / divisor;
    }
}

template <typename T>
__global__ void avg_pool_backward(const T* __restrict__ grad_out, T* __restrict__ dx, int height, int width,
                                  int kh, int kw, int sh, int sw, int ph, int pw, int out_h, int out_w, int planes)
{
    const int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    if (pixel >= height * width) return;
    const int iy = pixel / width, ix = pixel - iy * width;
    int oy0, oy1, ox0, ox1, first, last, count_y, count_x;
    outputs_covering(iy, sh, ph, kh, out_h, oy0, oy1);
    outputs_covering(ix, sw, pw, kw, out_w, ox0, ox1);
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const long long base = (long long)plane * out_h * out_w;
        T total = T(0);
        for (int oy = oy0; oy < oy1; ++oy) {
            window(oy, sh, ph, kh, height, first, last, count_y);
            for (int ox = ox0; ox < ox1; ++ox) {
                window(ox, sw, pw, kw, width, first, last, count_x);
                total += grad_out[base + oy * out_w + ox] / T(count_y * count_x);
            }
        }
        dx[(long long)plane * height * width + pixel] = total;
    }
}
