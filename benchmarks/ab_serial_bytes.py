"""Training-step time under two of ``kernels.parallel``'s size rules, alternated in one process.

    python benchmarks/ab_serial_bytes.py [old_mb] [new_mb] [net:batch,...]            the batch-split rule
    python benchmarks/ab_serial_bytes.py --kernels [old_mb] [new_mb] [net:batch,...]  the serial-kernel rule

Defaults: 0.25 1 (the split rule) or 0 2 (``--kernels``), and fcn8s:4,dilated:4,fcn8s:16.

The split rule, SERIAL_BYTES: a convolution batch with less than that many bytes of columns runs alone in the
calling thread (serial kernels, one-thread BLAS); a larger one is split over the cores. ``old_mb`` reproduces
the rule before it: a batch under 256 KB ran in the calling thread with every pool awake, and none ran alone.

The serial-kernel rule, SERIAL_KERNEL_BYTES: a Numba kernel (im2col, pooling, bilinear) outside a worker runs
its serial twin when its array is smaller than that; 0 is the rule before it (always the parallel driver).

Both rules run in the same process, ten rounds of six steps each, with PyTorch's step between them, so a busy
minute moves all three.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
kernels_rule = "--kernels" in args
args = [a for a in args if a != "--kernels"]
old_mb, new_mb = (float(args[0]), float(args[1])) if len(args) >= 2 else ((0.0, 2.0) if kernels_rule else (0.25, 1.0))
nets = (args[2] if len(args) >= 3 else "fcn8s:4,dilated:4,fcn8s:16").split(",")
sys.argv = sys.argv[:1]  # bench_ops parses the command line on import
import bench_ops  # noqa: E402

from minisegnet.kernels import parallel  # noqa: E402

bench_ops.ARGS = type("Args", (), {"device": "cpu"})()
run_alone = parallel._run_alone


def with_pools_awake(work, n_images, blas):  # the split rule before: a small batch ran with Numba's and BLAS's pools
    return [work(0, n_images)]


def use(rule):
    limit = int((old_mb if rule == "old" else new_mb) * (1 << 20))
    if kernels_rule:
        parallel.SERIAL_KERNEL_BYTES = limit
    else:
        parallel.SERIAL_BYTES = limit
        parallel._run_alone = with_pools_awake if rule == "old" else run_alone


if kernels_rule:
    print(f"old: SERIAL_KERNEL_BYTES {old_mb} MB; new: {new_mb} MB")
else:
    print(f"old: SERIAL_BYTES {old_mb} MB, small batches with every pool awake; new: {new_mb} MB, small batches alone")
for spec in nets:
    name, batch = spec.split(":")
    ours, theirs = bench_ops.training_steps(name, int(batch))
    for _ in range(3):
        ours(), theirs()
    ms = {"old": [], "new": [], "torch": []}
    for _ in range(10):
        for rule in ms:
            use("new" if rule == "torch" else rule)
            step = theirs if rule == "torch" else ours
            step()
            times = []
            for _ in range(6):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            ms[rule].append(1000 * np.median(times))
    ratio = np.array(ms["new"]) / np.array(ms["old"])
    times = "  ".join(f"{k} {np.median(v):.1f} ms ({min(v):.1f}-{max(v):.1f})" for k, v in ms.items())
    print(f"{name} N{batch}: {times}  new/old per round {np.median(ratio):.2f} ({ratio.min():.2f}-{ratio.max():.2f})")
use("new")
