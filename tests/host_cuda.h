// Just enough of CUDA for a kernel of kernels/*/*.cu to compile as plain C++ and run on the host:
// the launch wrapper (tests/host_cuda.py) loops over every block and thread of the grid and calls the
// kernel once per thread, with blockIdx, threadIdx, blockDim and gridDim set as CUDA would. Valid for
// kernels whose threads do not talk to each other (no shared memory, no __syncthreads, no atomics),
// which is every kernel of minisegnet: each thread computes its own outputs.
#include <algorithm>
#include <cmath>
using std::max;
using std::min;
using std::sqrt;

#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 { unsigned x = 1, y = 1, z = 1; };
static dim3 blockIdx, threadIdx, blockDim, gridDim;

template <typename Kernel>
void launch_on_host(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, Kernel run)
{
    gridDim.x = gx; gridDim.y = gy; gridDim.z = gz;
    blockDim.x = bx; blockDim.y = by; blockDim.z = bz;
    for (blockIdx.z = 0; blockIdx.z < gz; ++blockIdx.z)
    for (blockIdx.y = 0; blockIdx.y < gy; ++blockIdx.y)
    for (blockIdx.x = 0; blockIdx.x < gx; ++blockIdx.x)
    for (threadIdx.z = 0; threadIdx.z < bz; ++threadIdx.z)
    for (threadIdx.y = 0; threadIdx.y < by; ++threadIdx.y)
    for (threadIdx.x = 0; threadIdx.x < bx; ++threadIdx.x)
        run();
}
