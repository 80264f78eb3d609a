// One Adam step for one parameter in CUDA C, launched through CuPy (gpu.py); twin of cpu.py.
// kernels: adam_update
//
// One launch per parameter, one pass over p, g, m and v (as CuPy array expressions the same step took
// about ten launches and as many passes). The formula (reference.py), in the parameter's type T:
//     grad = g + weight_decay * p
//     m = b1 * m + (1 - b1) * grad;   v = b2 * v + (1 - b2) * grad^2
//     p -= lr * (m * correction1) / (sqrt(v * correction2) + eps)
// with correction1 = 1 / (1 - b1^t), correction2 = 1 / (1 - b2^t) computed once per step on the host.
// A grid-stride loop: any number of elements with a grid of a fixed size.
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            T lr, T b1, T b2, T eps, T correction1, T correction2, T weight_decay, long long size)
{
    const T one = T(1);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        const T grad = g[i] + weight_decay * p[i];
        const T m_i = b1 * m[i] + (one - b1) * grad;
        const T v_i = b2 * v[i] + (one - b2) * grad * grad;
        m[i] = m_i;
        v[i] = v_i;
        p[i] -= lr * (m_i * correction1) / (sqrt(v_i * correction2) + eps);
    }
}
