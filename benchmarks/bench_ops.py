"""Speed of minisegnet's ops against PyTorch, side by side in one run, as ratios.

    python benchmarks/bench_ops.py                 # CPU, all cores, float32
    python benchmarks/bench_ops.py --threads 2     # both libraries limited to 2 threads
    python benchmarks/bench_ops.py --device cuda   # GPU: minisegnet (CuPy, CUDA C kernels) vs PyTorch + cuDNN, TF32 off

Each row times forward + backward of one op (the median of --repeats runs after a warm-up)
for both libraries on the same inputs. ratio = minisegnet / PyTorch (lower is better, 1.0 is parity).
Also printed: conv GFLOP/s next to the machine's measured float32 matrix-product rate, and how
long the Numba kernels take to compile in a fresh process and to load from the cache in a second one.
This is a benchmark, never a test: shared machines are noisy, so read the ratios, not the digits.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description="minisegnet vs PyTorch, forward+backward per op")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and no compile-time measurement")
    parser.add_argument("--only", default="", help="run only the ops whose name contains this text")
    parser.add_argument("--memory-probe", default="", help=argparse.SUPPRESS)  # library,net,batch (a subprocess)
    return parser.parse_args()


ARGS = parse_args()
# Thread counts must be fixed before NumPy's BLAS and Numba start their pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# torch imports NumPy (and so loads OpenBLAS) before minisegnet can make its OpenBLAS setting
# (see minisegnet/__init__.py), so make it here, as it is in a program that imports minisegnet
# first. It does not touch PyTorch, which uses its own BLAS (oneDNN/MKL) and OpenMP runtime.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import torch  # noqa: E402  (a benchmark peer only; the library never imports it)

import minisegnet as msn  # noqa: E402
from minisegnet import functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)
# Both libraries compute float32 in float32: PyTorch would otherwise be free to run convolutions (and, in
# some versions, matrix products) in TF32 on the GPU, a 10-bit mantissa, and a faster but different sum.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False


# (name, minisegnet op, torch op, input shapes, flops of forward) -- the lesson-scale shapes and the conv shape.
def conv_flops(n, c_in, c_out, h, w, k):
    return 2 * n * c_out * h * w * c_in * k * k


CASES = [
    ("conv2d 3x3 N8 32->64 64x64", lambda x, w: F.conv2d(x, w, padding=1),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), [(8, 32, 64, 64), (64, 32, 3, 3)],
     conv_flops(8, 32, 64, 64, 64, 3)),
    ("conv2d 3x3 dil2 N8 32->64 64x64", lambda x, w: F.conv2d(x, w, padding=2, dilation=2),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=2, dilation=2), [(8, 32, 64, 64), (64, 32, 3, 3)],
     conv_flops(8, 32, 64, 64, 64, 3)),
    ("conv2d 3x3 N8 3->16 64x64 (first layer)", lambda x, w: F.conv2d(x, w, padding=1),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), [(8, 3, 64, 64), (16, 3, 3, 3)],
     conv_flops(8, 3, 16, 64, 64, 3)),
    ("conv2d 3x3 N4 16->16 64x64 (lesson net, stage 1)", lambda x, w: F.conv2d(x, w, padding=1),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), [(4, 16, 64, 64), (16, 16, 3, 3)],
     conv_flops(4, 16, 16, 64, 64, 3)),
    ("conv2d 3x3 N8 32->32 16x16 (deep layer)", lambda x, w: F.conv2d(x, w, padding=1),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), [(8, 32, 16, 16), (32, 32, 3, 3)],
     conv_flops(8, 32, 32, 16, 16, 3)),
    ("conv2d 3x3 dil4 N8 32->32 16x16", lambda x, w: F.conv2d(x, w, padding=4, dilation=4),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=4, dilation=4), [(8, 32, 16, 16), (32, 32, 3, 3)],
     conv_flops(8, 32, 32, 16, 16, 3)),
    ("conv2d 3x3 N4 64->64 32x32", lambda x, w: F.conv2d(x, w, padding=1),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), [(4, 64, 32, 32), (64, 64, 3, 3)],
     conv_flops(4, 64, 64, 32, 32, 3)),
    ("conv2d 3x3 dil2 N2 16->32 128x128", lambda x, w: F.conv2d(x, w, padding=2, dilation=2),
     lambda x, w: torch.nn.functional.conv2d(x, w, padding=2, dilation=2), [(2, 16, 128, 128), (32, 16, 3, 3)],
     conv_flops(2, 16, 32, 128, 128, 3)),
    ("conv2d 1x1 N8 64->9 16x16 (score layer)", lambda x, w: F.conv2d(x, w),
     lambda x, w: torch.nn.functional.conv2d(x, w), [(8, 64, 16, 16), (9, 64, 1, 1)],
     conv_flops(8, 64, 9, 16, 16, 1)),
    ("conv_transpose2d 4x4 s2 N8 8->8 32x32", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
     lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=2, padding=1), [(8, 8, 32, 32), (8, 8, 4, 4)],
     None),
    ("conv_transpose2d 16x16 s8 N8 9->9 8x8 (x8 upsampling)",
     lambda x, w: F.conv_transpose2d(x, w, stride=8, padding=4),
     lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=8, padding=4), [(8, 9, 8, 8), (9, 9, 16, 16)],
     None),
    ("max_pool2d 2x2 N8 C32 64x64", lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2),
     [(8, 32, 64, 64)], None),
    ("avg_pool2d 3x3 s1 p1 N8 C32 64x64", lambda x: F.avg_pool2d(x, 3, 1, 1),
     lambda x: torch.nn.functional.avg_pool2d(x, 3, 1, 1), [(8, 32, 64, 64)], None),
    ("bilinear x2 N8 C32 32x32->64x64", lambda x: F.interpolate_bilinear(x, scale_factor=2),
     lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
     [(8, 32, 32, 32)], None),
    ("bilinear x8 N8 C5 8x8->64x64 (score upsampling)", lambda x: F.interpolate_bilinear(x, size=(64, 64)),
     lambda x: torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False),
     [(8, 5, 8, 8)], None),
]


def torch_lesson_net(name, num_classes, widths, depths):
    """The same FCN-8s or dilated net as minisegnet.models (lesson sizes), in PyTorch, for the training-step rows."""
    nn = torch.nn
    dilated = name == "dilated"
    dilations, pools = ((1, 1, 1, 2, 4), (True, True, True, False, False)) if dilated else ((1,) * 5, (True,) * 5)

    class TorchNet(nn.Module):
        def __init__(self):
            super().__init__()
            stages, c = [], 3
            for width, depth, d, pool in zip(widths, depths, dilations, pools):
                layers = []
                for _ in range(depth):
                    layers += [nn.Conv2d(c, width, 3, padding=d, dilation=d), nn.ReLU()]
                    c = width
                stages.append(nn.Sequential(*layers, *([nn.MaxPool2d(2, 2, ceil_mode=True)] if pool else [])))
            self.stages = nn.ModuleList(stages)
            self.score = nn.Conv2d(widths[4], num_classes, 1)
            if not dilated:
                self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
                self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
                self.up2 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False)
                self.up4 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False)

        def forward(self, x):
            feats = []
            h = x
            for stage in self.stages:
                h = stage(h)
                feats.append(h)
            s = self.score(feats[4])
            if not dilated:
                p4 = self.score_pool4(feats[3])
                s = self.up2(s)[:, :, :p4.shape[2], :p4.shape[3]] + p4
                p3 = self.score_pool3(feats[2])
                s = self.up4(s)[:, :, :p3.shape[2], :p3.shape[3]] + p3
            up = torch.nn.functional.interpolate(s, scale_factor=8, mode="bilinear", align_corners=False)
            return up[:, :, :x.shape[2], :x.shape[3]]

    return TorchNet()


def training_steps(name, batch, size=64):
    """(ours, theirs): one optimizer step (forward, cross-entropy, backward, Adam) of the lesson net
    ``name`` ("fcn8s" or "dilated") in each library, on the same images."""
    from minisegnet import optim
    from minisegnet.models import DEFAULT_DEPTHS, DEFAULT_WIDTHS, build_model
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, 9, size=(batch, size, size))
    model = build_model(name, 9).to(ARGS.device)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = msn.tensor(images, device=ARGS.device)

    def ours_step():
        opt.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        opt.step()

    torch_device = "cuda" if ARGS.device == "cuda" else "cpu"
    tmodel = torch_lesson_net(name, 9, DEFAULT_WIDTHS, DEFAULT_DEPTHS).to(torch_device)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.tensor(images, device=torch_device), torch.tensor(labels, device=torch_device)

    def theirs_step():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        topt.step()

    return ours_step, theirs_step


def time_training_step(name, batch, repeats):
    ours_step, theirs_step = training_steps(name, batch)
    return median_time(ours_step, repeats), median_time(theirs_step, repeats)


def _status_kib(field):
    """A line of /proc/self/status (VmRSS: resident now, VmHWM: its peak) in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_probe(library, name, batch):
    """Run in a fresh process (``--memory-probe``): how much memory a training step needs on top of
    what the process already holds. One step of a single image first (Numba's kernels loaded, the
    allocators warm, the parameters and Adam's moments allocated); then the peak resident size is
    reset (Linux: writing 5 to /proc/self/clear_refs) and four steps of ``batch`` images run; their
    peak minus the resident size before them is the step's memory. (Reading ru_maxrss instead, as
    the first version did, kept the peak of the imports and the warm-up: PyTorch's N4 step then
    "needed" 0 MiB.)"""
    warm_ours, warm_theirs = training_steps(name, 1)
    ours, theirs = training_steps(name, batch)
    warm, step = (warm_ours, ours) if library == "minisegnet" else (warm_theirs, theirs)
    del warm_ours, warm_theirs, ours, theirs
    warm()
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # VmHWM := VmRSS
    for _ in range(4):
        step()
    print((_status_kib("VmHWM") - before) / 1024)


def peak_memory(name, batch):
    """(ours, theirs) in MiB, each measured in its own fresh process."""
    def run(library):
        command = [sys.executable, __file__, "--threads", str(ARGS.threads), "--memory-probe",
                   f"{library},{name},{batch}"]
        return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])
    return run("minisegnet"), run("torch")


def sync():
    if ARGS.device == "cuda":
        import cupy
        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()


def median_time(step, repeats):
    step()  # warm-up (compilation, allocator)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_case(ours, theirs, shapes, repeats):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    torch_device = "cuda" if ARGS.device == "cuda" else "cpu"
    ms_inputs = [msn.tensor(a, requires_grad=True, device=ARGS.device) for a in arrays]
    th_inputs = [torch.tensor(a, requires_grad=True, device=torch_device) for a in arrays]
    out_shape = ours(*ms_inputs).shape
    grad = rng.standard_normal(out_shape).astype(np.float32)
    ms_grad = msn.tensor(grad, device=ARGS.device).data
    th_grad = torch.tensor(grad, device=torch_device)

    def ours_step():
        for t in ms_inputs:
            t.grad = None
        ours(*ms_inputs).backward(ms_grad)

    def theirs_step():
        for t in th_inputs:
            t.grad = None
        theirs(*th_inputs).backward(th_grad)

    return median_time(ours_step, repeats), median_time(theirs_step, repeats)


def matmul_gflops():
    """The machine's float32 matrix-product rate through NumPy's BLAS (the ceiling for im2col + GEMM)."""
    n = 1024
    a, b = (np.random.default_rng(i).standard_normal((n, n)).astype(np.float32) for i in (1, 2))
    seconds = median_time(lambda: a @ b, 5)
    return 2 * n ** 3 / seconds / 1e9


def blas_description():
    """Which BLAS NumPy runs and which of its kernels: an OPENBLAS_CORETYPE in the environment
    (some shared machines set one) can force an older kernel, e.g. AVX2 on an AVX-512 CPU."""
    from threadpoolctl import threadpool_info
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            forced = os.environ.get("OPENBLAS_CORETYPE")
            return (f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')} kernels"
                    f"{', forced by OPENBLAS_CORETYPE' if forced else ''})")
    return "BLAS unknown"


COMPILE_SNIPPET = """
import time, numpy as np
start = time.perf_counter()
import minisegnet as msn
from minisegnet import functional as F
x = msn.tensor(np.ones((1, 2, 8, 8), dtype=np.float32), requires_grad=True)
w = msn.tensor(np.ones((2, 2, 3, 3), dtype=np.float32), requires_grad=True)
y = F.interpolate_bilinear(F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, padding=1), 2), 3, 1, 1), size=(8, 8))
F.conv_transpose2d(y, w).sum().backward()
print(time.perf_counter() - start)
"""


def compile_times():
    """Import + first call of every kernel in a fresh process: after clearing Numba's cache (compile)
    and again with the cache in place (load)."""
    import pathlib
    import shutil
    import minisegnet.kernels as kernels
    for cache in pathlib.Path(kernels.__file__).parent.rglob("__pycache__"):
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink()
    del shutil
    run = lambda: float(subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], capture_output=True, text=True,  # noqa: E731
                                       check=True).stdout.strip().splitlines()[-1])
    return run(), run()


def main():
    if ARGS.memory_probe:
        library, name, batch = ARGS.memory_probe.split(",")
        return memory_probe(library, name, int(batch))
    repeats = 3 if ARGS.quick else ARGS.repeats
    print(f"# minisegnet {msn.__version__} vs PyTorch {torch.__version__}, device={ARGS.device}, "
          f"threads={ARGS.threads}, float32, forward+backward, median of {repeats}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    if ARGS.device == "cpu":
        print(f"# NumPy float32 matmul (1024^3): {matmul_gflops():.1f} GFLOP/s, {blas_description()}")
    print()
    print("| op | minisegnet ms | PyTorch ms | ratio | minisegnet GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs, shapes, flops in CASES:
        if ARGS.only not in name:
            continue
        t_ours, t_theirs = time_case(ours, theirs, shapes, repeats)
        # forward + backward of a convolution is 3 products of the forward's size (y, dx, dw)
        rate = f"{3 * flops / t_ours / 1e9:.1f}" if flops else ""
        print(f"| {name} | {t_ours * 1e3:.2f} | {t_theirs * 1e3:.2f} | {t_ours / t_theirs:.2f} | {rate} |", flush=True)
    for name, batch in [("fcn8s", 4), ("fcn8s", 16), ("dilated", 4)]:
        row = f"{name} training step N{batch} 64x64 (lesson model, Adam)"
        if ARGS.only in row:
            t_ours, t_theirs = time_training_step(name, batch, repeats)
            print(f"| {row} | {t_ours * 1e3:.2f} | {t_theirs * 1e3:.2f} | {t_ours / t_theirs:.2f} | |", flush=True)
    if ARGS.device == "cpu" and ARGS.only in "memory":
        print("\n| peak memory of a training step (lesson net, Adam) | minisegnet MiB | PyTorch MiB | ratio |")
        print("|---|---:|---:|---:|")
        for name, batch in [("fcn8s", 4), ("fcn8s", 16), ("dilated", 4)]:
            ours, theirs = peak_memory(name, batch)
            print(f"| {name} N{batch} 64x64 | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |", flush=True)
    if ARGS.device == "cpu" and not ARGS.quick:
        first, second = compile_times()
        print(f"\nNumba kernels, import + first call in a fresh process: {first:.1f} s with an empty cache "
              f"(compiling), {second:.1f} s from the cache (second process)")


if __name__ == "__main__":
    main()
