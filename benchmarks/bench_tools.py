"""Timings of the inspection tools and the CRF on this machine (issue targets in brackets):

* occlusion sensitivity: a 64x64 scene, 8x8 square at stride 2 (841 occluded copies, batched)
  through the lesson FCN-8s [seconds]
* the fast fully connected CRF: 256x256 image, 5 classes, 10 iterations [about a second or less],
  and the exact all-pairs CRF on 64x64 for scale

    python benchmarks/bench_tools.py [--threads N]

Each is timed after one warm-up call (Numba compiles on first use), best of 3.
"""
import argparse
import os
import time


def best_of(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np

    from minisegnet import crf
    from minisegnet.data import render_scene
    from minisegnet.inspect import occlusion_sensitivity
    from minisegnet.models import build_model

    rng = np.random.default_rng(0)
    image, labels = render_scene(rng, size=64)
    model = build_model("fcn8s", 9)
    occlusion = best_of(lambda: occlusion_sensitivity(model, image, 4, size=8, stride=2), repeat=2)
    print(f"occlusion sensitivity, 64x64, 8x8 square, stride 2 (841 positions): {occlusion:.2f} s")

    big_image, big_labels = render_scene(rng, size=256)
    probabilities = crf.blocky_prediction(big_labels % 5, 5, factor=32)
    fast = best_of(lambda: crf.dense_crf(probabilities, big_image))
    print(f"fast CRF (permutohedral lattice), 256x256, 5 classes, 10 iterations: {fast:.2f} s")
    small = crf.blocky_prediction(labels % 5, 5, factor=16)
    exact = best_of(lambda: crf.dense_crf(small, image, method="exact"))
    fast_small = best_of(lambda: crf.dense_crf(small, image))
    print(f"64x64, 5 classes, 10 iterations: exact (all pairs) {exact:.3f} s, fast {fast_small:.3f} s")


if __name__ == "__main__":
    main()
