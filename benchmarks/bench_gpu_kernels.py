"""How close each GPU kernel runs to the GPU's memory bandwidth, and what a launch costs on the host.

    python benchmarks/bench_gpu_kernels.py                # needs CuPy and a GPU
    MINISEGNET_GPU_KERNELS=numba python benchmarks/...    # the same for the Numba CUDA twins

The kernels only move memory (each reads its inputs and writes its output once, ideally), so the yardstick
is a device-to-device copy: bytes read + written per second by ``cupy.copyto`` of a 1 GiB array. Each row
prints a kernel's time (CUDA events, median of --repeats), the bytes it must at least read and write, and
that rate as a share of the copy's (the target in the GPU issue: >= 60%). Then the host time of one launch:
the wall time of 1000 launches of a small kernel queued without waiting, per launch. A benchmark, never a
test; run it on an idle GPU.
"""
import argparse
import statistics
import time

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    return parser.parse_args()


def gpu_time(step, repeats):
    """Median seconds of ``step()`` on the GPU, by CUDA events around each call (after one warm-up)."""
    import cupy
    step()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        step()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def copy_rate(repeats):
    """Bytes read + written per second by a device-to-device copy of 1 GiB."""
    import cupy
    source = cupy.ones(1 << 28, dtype=cupy.float32)
    target = cupy.empty_like(source)
    seconds = gpu_time(lambda: cupy.copyto(target, source), repeats)
    return 2 * source.nbytes / seconds


def kernel_rows(dtype):
    """(name, step, minimum bytes read + written) at sizes that fill a GPU (N32 C64 128x128)."""
    import cupy
    from minisegnet import kernels
    item = np.dtype(dtype).itemsize
    rng = cupy.random.default_rng(0)
    x = rng.standard_normal((32, 64, 128, 128), dtype=dtype)
    image_bytes = x.nbytes
    conv = (3, 3, 1, 1, 1, 1, 1, 1)
    cols = kernels.im2col(x, conv, 128, 128)
    pool = (2, 2, 2, 2, 0, 0)
    pooled, argmax = kernels.max_pool_forward(x, pool, 64, 64)
    grad_pooled = cupy.ones_like(pooled)
    avg = (3, 3, 1, 1, 1, 1)
    small = rng.standard_normal((32, 64, 64, 64), dtype=dtype)
    up = kernels.bilinear_forward(small, (128, 128), (0.5, 0.5), False)
    return [
        ("im2col 3x3 (N32 C64 128x128)", lambda: kernels.im2col(x, conv, 128, 128), image_bytes + cols.nbytes),
        ("col2im 3x3", lambda: kernels.col2im(cols, x.shape, conv, 128, 128), cols.nbytes + image_bytes),
        ("max_pool 2x2 forward", lambda: kernels.max_pool_forward(x, pool, 64, 64),
         image_bytes + pooled.nbytes + argmax.nbytes),
        ("max_pool 2x2 backward", lambda: kernels.max_pool_backward(grad_pooled, argmax, x.shape, pool),
         grad_pooled.nbytes + argmax.nbytes + image_bytes),
        ("avg_pool 3x3 s1 forward", lambda: kernels.avg_pool_forward(x, avg, 128, 128), 2 * image_bytes),
        ("avg_pool 3x3 s1 backward", lambda: kernels.avg_pool_backward(x, x.shape, avg), 2 * image_bytes),
        ("bilinear x2 forward (64->128)", lambda: kernels.bilinear_forward(small, (128, 128), (0.5, 0.5), False),
         small.nbytes + up.nbytes),
        ("bilinear x2 backward", lambda: kernels.bilinear_backward(up, small.shape, (0.5, 0.5), False),
         up.nbytes + small.nbytes),
        ("adam update (16M parameters)", _adam_step(dtype), 7 * (1 << 24) * item),  # read p g m v, write p m v
    ]


def _adam_step(dtype):
    import cupy
    from minisegnet import kernels
    p, g, m, v = (cupy.ones(1 << 24, dtype=dtype) for _ in range(4))
    return lambda: kernels.adam_update(p, g, m, v, 1e-3, (0.9, 0.999), 1e-8, 1, 0.0)


def launch_cost(launches=1000):
    """Host seconds per launch of max_pool_forward on a tiny input, queued without waiting for the GPU."""
    import cupy
    from minisegnet import kernels
    x = cupy.ones((1, 1, 4, 4), dtype=cupy.float32)
    kernels.max_pool_forward(x, (2, 2, 2, 2, 0, 0), 2, 2)
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    for _ in range(launches):
        kernels.max_pool_forward(x, (2, 2, 2, 2, 0, 0), 2, 2)
    seconds = (time.perf_counter() - start) / launches
    cupy.cuda.Device().synchronize()
    return seconds


def main():
    args = parse_args()
    import cupy
    from minisegnet import kernels
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
    rate = copy_rate(args.repeats)
    print(f"{props['name'].decode()}, CuPy {cupy.__version__}, GPU kernels: {kernels.GPU_KERNELS}, {args.dtype}")
    print(f"device-to-device copy: {rate / 1e9:.0f} GB/s (read + write)\n")
    print("| kernel | ms | GB/s | share of the copy rate |")
    print("|---|---:|---:|---:|")
    for name, step, nbytes in kernel_rows(args.dtype):
        seconds = gpu_time(step, args.repeats)
        print(f"| {name} | {seconds * 1e3:.3f} | {nbytes / seconds / 1e9:.0f} | {nbytes / seconds / rate:.0%} |",
              flush=True)
    print(f"\nhost time per launch (max_pool_forward on a 4x4 image, allocation included): "
          f"{launch_cost() * 1e6:.1f} us")


if __name__ == "__main__":
    main()
