"""Lesson 2: convolution, from loops to kernels.

A convolution layer computes, for every output pixel, a weighted sum over a small window of
every input channel. Written as the formula it is six nested loops, and it is slow. This lesson
computes the same convolution four ways and checks that they agree to the last digits:

1. naive loops, the formula itself            kernels/columns/reference.py: conv2d_reference
2. im2col with plain loops + one matrix product  kernels/columns/reference.py: im2col_reference
3. the Numba CPU kernel + BLAS (what F.conv2d runs on the CPU)   kernels/columns/cpu.py
4. the Numba CUDA kernel (on a GPU, or in Numba's CUDA simulator without one)  kernels/columns/cuda.py

and then shows that a dilated 3x3 kernel is a 5x5 kernel with holes: the same 9 weights, spread out.

    python lessons/02_convolution_loops_to_kernels.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]
"""
import os
import subprocess
import sys
import time

from _lesson import lesson_arguments  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import minisegnet as msn  # noqa: E402
from minisegnet import functional as F  # noqa: E402
from minisegnet.kernels.columns.reference import conv2d_reference, im2col_reference  # noqa: E402

args = lesson_arguments("Lesson 2: convolution from loops to kernels", quick="smaller shapes, seconds")
rng = np.random.default_rng(args.seed)

# A small layer: N images of C_in channels, C_out 3x3 filters, padding 2, dilation 2 (output size = input size).
N, C_IN, C_OUT, H = (1, 2, 3, 8) if args.quick else (2, 8, 16, 24)
STRIDE, PAD, DIL = 1, 2, 2
x = rng.standard_normal((N, C_IN, H, H)).astype(np.float32)
w = rng.standard_normal((C_OUT, C_IN, 3, 3)).astype(np.float32)
print(f"input {x.shape}, weight {w.shape}, stride {STRIDE}, padding {PAD}, dilation {DIL}")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


# 1. The formula, one multiply-add at a time.
y_loops, t_loops = timed(lambda: conv2d_reference(x, w, None, (STRIDE,) * 2, (PAD,) * 2, (DIL,) * 2, 1))
out_h = y_loops.shape[2]
geometry = (3, 3, STRIDE, STRIDE, PAD, PAD, DIL, DIL)


# 2. im2col: lay every receptive field of an image out as a column of that image's matrix; then the
#    convolution is a matrix product, the weights (C_out, C_in*3*3) times the image's columns. One
#    matmul call does it for the whole batch, and each image's (C_out, H_out*W_out) result holds the
#    image's output channels row after row: already the NCHW layout, with no transpose.
def im2col_then_matmul():
    cols = im2col_reference(x, geometry, out_h, out_h)              # (N, C_in*3*3, H_out*W_out)
    y = w.reshape(C_OUT, -1) @ cols                                  # (N, C_out, H_out*W_out)
    return y.reshape(N, C_OUT, out_h, out_h)


y_im2col, t_im2col = timed(im2col_then_matmul)

# 3. What the library runs: the Numba im2col kernel (compiled, parallel) and BLAS, through F.conv2d.
F.conv2d(msn.tensor(x), msn.tensor(w), stride=STRIDE, padding=PAD, dilation=DIL)  # first call: load/compile
y_numba, t_numba = timed(lambda: F.conv2d(msn.tensor(x), msn.tensor(w), stride=STRIDE, padding=PAD,
                                          dilation=DIL).numpy())

# 4. The CUDA twin: on a GPU when asked and present; otherwise in Numba's CUDA simulator, which runs the
#    very same kernel code as Python on the CPU (slow, but the numbers are the kernel's). The simulator
#    must be switched on before numba.cuda is imported, so it runs in a child process.
CUDA_SNIPPET = f"""
import numpy as np, time
from minisegnet.kernels.columns.cuda import im2col_cuda
x = np.load({os.path.join(args.out, '02_x.npy')!r}); w = np.load({os.path.join(args.out, '02_w.npy')!r})
xp = np
try:
    import cupy
    if {args.device == 'cuda'}:
        xp = cupy
except ImportError:
    pass
start = time.perf_counter()
cols = im2col_cuda(xp.asarray(x), {geometry}, {out_h}, {out_h}, xp)
y = (xp.asarray(w).reshape({C_OUT}, -1) @ cols).reshape({N}, {C_OUT}, {out_h}, {out_h})
y = y.get() if hasattr(y, 'get') else y
print(time.perf_counter() - start)
np.save({os.path.join(args.out, '02_y_cuda.npy')!r}, y)
"""
np.save(os.path.join(args.out, "02_x.npy"), x)
np.save(os.path.join(args.out, "02_w.npy"), w)
env = dict(os.environ)
if args.device != "cuda":
    env["NUMBA_ENABLE_CUDASIM"] = "1"
child = subprocess.run([sys.executable, "-c", CUDA_SNIPPET], env=env, capture_output=True, text=True)
if child.returncode == 0:
    t_cuda = float(child.stdout.strip().splitlines()[-1])
    y_cuda = np.load(os.path.join(args.out, "02_y_cuda.npy"))
    cuda_label = "Numba CUDA kernel (GPU)" if args.device == "cuda" else "Numba CUDA kernel (simulator)"
else:
    y_cuda, t_cuda, cuda_label = None, float("nan"), "Numba CUDA kernel (unavailable: install the dev extra)"
    print(child.stderr.strip().splitlines()[-1])

print(f"\n{'method':42s} {'seconds':>9s} {'max |difference| from the loops':>32s}")
rows = [("naive loops (the formula)", t_loops, y_loops), ("im2col loops + one matrix product", t_im2col, y_im2col),
        ("Numba im2col kernel + BLAS (F.conv2d)", t_numba, y_numba), (cuda_label, t_cuda, y_cuda)]
worst = 0.0
for name, seconds, y in rows:
    diff = float(np.abs(y - y_loops).max()) if y is not None else float("nan")
    if y is not None:
        worst = max(worst, diff)
    print(f"{name:42s} {seconds:>9.4f} {diff:>32.2e}")

# Dilation: a 3x3 kernel with dilation 2 equals a 5x5 kernel whose in-between taps are zero.
sparse = np.zeros((C_OUT, C_IN, 5, 5), dtype=np.float32)
sparse[:, :, ::2, ::2] = w
y_sparse = F.conv2d(msn.tensor(x), msn.tensor(sparse), stride=STRIDE, padding=PAD).numpy()
dilation_gap = float(np.abs(y_sparse - y_numba).max())
print(f"\ndilated 3x3 (d=2) vs sparse 5x5 kernel: max |difference| {dilation_gap:.2e}")

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), layout="constrained")
limit = float(np.abs(w[0, 0]).max())  # one symmetric colour scale: white is exactly zero
axes[0].imshow(w[0, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
axes[0].set_title("3x3 kernel (9 weights)")
image = axes[1].imshow(sparse[0, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
axes[1].set_title("dilation 2 = 5x5 with holes")
fig.colorbar(image, ax=axes[:2], shrink=0.8, label="weight")
axes[2].bar(range(3), [t_loops, t_im2col, t_numba], color=["C3", "C1", "C0"], log=True)
axes[2].set_xticks(range(3), ["loops", "im2col\n+ matmul", "Numba\n+ BLAS"])
axes[2].set_ylim(min(t_loops, t_im2col, t_numba) / 10, max(t_loops, t_im2col, t_numba) * 4)  # room for labels
for i, seconds in enumerate([t_loops, t_im2col, t_numba]):
    axes[2].text(i, seconds, f"{seconds * 1e3:.2g} ms", ha="center", va="bottom")
axes[2].set_ylabel("seconds (log scale)")
axes[2].set_title("same convolution, three ways")
for ax, size in ((axes[0], 3), (axes[1], 5)):
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
figure = os.path.join(args.out, "02_convolution.png")
fig.savefig(figure, dpi=110)
agree = worst < 1e-4 and dilation_gap < 1e-4
print(f"\nsummary: all methods agree within 1e-4: {agree}; Numba speed-up over loops: {t_loops / t_numba:.0f}x; "
      f"figure: {figure}")
