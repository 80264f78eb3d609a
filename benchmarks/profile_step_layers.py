"""Where a training step's convolution time goes, layer by layer: the wall time of every conv2d forward and
backward inside the benchmark's training step (bench_ops.training_steps), keyed by channels, size, kernel and dilation.

    python benchmarks/profile_step_layers.py [fcn8s|dilated] [batch]      (default fcn8s 4)

Timed inside the step, so each layer pays what it pays there (cold columns, the thread hand-offs); a noisy
machine moves every row, so compare layers within one run, not across runs.
"""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
name = sys.argv[1] if len(sys.argv) > 1 else "fcn8s"
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 4
sys.argv = sys.argv[:1]  # bench_ops parses the command line on import
import bench_ops  # noqa: E402

from minisegnet.functional import conv  # noqa: E402

bench_ops.ARGS = type("Args", (), {"device": "cpu"})()
seconds = collections.defaultdict(float)
flops = {}
forward, backward = conv.Conv2d.forward, conv.Conv2d.backward


def timed_forward(ctx, x, w, b, geometry, groups):
    t0 = time.perf_counter()
    y = forward(ctx, x, w, b, geometry, groups)
    ctx.layer = (f"{x.shape[1]:3d} -> {w.shape[0]:3d}, {x.shape[2]:2d}x{x.shape[3]:<2d}, {w.shape[2]}x{w.shape[3]}"
                 f" dil {geometry.dilation_h}")
    seconds[ctx.layer + "  forward"] += time.perf_counter() - t0
    flops[ctx.layer] = 2 * y.size * w[0].size  # multiply-adds of the forward product
    return y


def timed_backward(ctx, g):
    t0 = time.perf_counter()
    grads = backward(ctx, g)
    seconds[ctx.layer + "  backward"] += time.perf_counter() - t0
    return grads


conv.Conv2d.forward, conv.Conv2d.backward = staticmethod(timed_forward), staticmethod(timed_backward)
ours, _ = bench_ops.training_steps(name, batch)
for _ in range(5):
    ours()
seconds.clear()
repeats = 30
t0 = time.perf_counter()
for _ in range(repeats):
    ours()
step = (time.perf_counter() - t0) / repeats
print(f"{name} N{batch} training step: {1000 * step:.1f} ms, of which conv2d {1000 * sum(seconds.values()) / repeats:.1f} ms "
      "(GFLOP/s: a backward counts two products, dx and dW, though the first layer computes no dx)")
for key in sorted(seconds):
    layer, kind = key.rsplit("  ", 1)
    ms = 1000 * seconds[key] / repeats
    work = flops[layer] * (1 if kind == "forward" else 2)
    print(f"  {layer}  {kind:8s} {ms:7.2f} ms  {work / ms / 1e6:6.1f} GFLOP/s")
