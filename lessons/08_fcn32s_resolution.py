"""Lesson 8: FCN-32s and the resolution issue.

A classification convnet becomes a segmentation network by convolutionalising it: its last layer
scores every position of the last feature map instead of the whole image. But five 2x2 poolings
later, one score covers a 32x32 block of pixels: a 64x64 scene gets a 2x2 grid of class scores.
FCN-32s upsamples that grid x32 (bilinear) and takes the best class per pixel. Interiors of large
regions come out right; boundaries are blobs and thin objects vanish.

We look at the 2x2 score grid itself, and measure accuracy as a function of the distance to the
nearest true boundary (``metrics.boundary_mask``: the trimap bands of DeepLab's evaluation), for
the FCN-32s the flagship lesson trains (reused from OUT/models/, trained here if missing).

    python lessons/08_fcn32s_resolution.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (FCN, _upsample_to), minisegnet/metrics.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minisegnet import no_grad, tensor  # noqa: E402
from minisegnet.data import colourise, normalise  # noqa: E402
from minisegnet.figures import class_legend  # noqa: E402
from minisegnet.metrics import boundary_mask  # noqa: E402
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 8: FCN-32s and the resolution issue", quick="a small network, seconds")
started = time.perf_counter()
data = lesson_data(args)
model, _, training = trained_model("fcn32s", args, data)
print(f"FCN-32s ready ({training})")

# --- The coarse score grid: one class score vector per 32x32 block ------------------------------------
images = normalise(data.val.images, data.mean, data.std)
model.eval()
with no_grad():
    coarse = model.score(model.backbone(tensor(images[:4], device=args.device))[4]).numpy()
print(f"input 64x64 -> stage-5 score map {coarse.shape[2]}x{coarse.shape[3]} ({coarse.shape[1]} classes), "
      "upsampled x32 and cropped back to 64x64")

# --- Accuracy against the distance to the nearest boundary ------------------------------------------
prediction = predict(model, images, device=args.device).argmax(axis=1)
labels = data.val.labels
RINGS = (1, 2, 4, 8, 16)
print(f"\n{'distance to a boundary (px)':>28s} {'pixels':>8s} {'accuracy':>9s}")
accuracy, inner, names = [], np.zeros(labels.shape, dtype=bool), []
for previous, width in zip((0,) + RINGS, RINGS):
    names.append(str(width) if width == previous + 1 else f"{previous + 1}-{width}")
    band = boundary_mask(labels, width)
    ring = band & ~inner
    inner = band
    accuracy.append(float((prediction[ring] == labels[ring]).mean()))
    print(f"{names[-1]:>28s} {int(ring.sum()):>8d} {accuracy[-1]:>9.3f}")
far = ~inner
far_accuracy = float((prediction[far] == labels[far]).mean())
print(f"{'> ' + str(RINGS[-1]):>28s} {int(far.sum()):>8d} {far_accuracy:>9.3f}")

# --- Figure: image, ground truth, the 2x2 grid, the upsampled prediction; accuracy vs distance -------
fig = plt.figure(figsize=(11, 6.4))
grid = fig.add_gridspec(3, 5, height_ratios=(1, 1, 1.25))
for i in range(2):
    row = [(data.val.images[i].transpose(1, 2, 0), "image"), (colourise(labels[i]), "ground truth"),
           (colourise(coarse[i].argmax(axis=0)), f"{coarse.shape[2]}x{coarse.shape[3]} score grid (argmax)"),
           (colourise(prediction[i]), "FCN-32s: upsampled x32")]
    for j, (picture, title) in enumerate(row):
        ax = fig.add_subplot(grid[i, j])
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
ax = fig.add_subplot(grid[:2, 4])
ax.imshow(boundary_mask(labels[0], 2), cmap="gray", interpolation="nearest")
ax.set_title("2-px boundary band\n(scene 1)", fontsize=9)
ax.set_xticks([])
ax.set_yticks([])
ax = fig.add_subplot(grid[2, :])
ax.bar(names + [f"> {RINGS[-1]}"], accuracy + [far_accuracy], color="C0")
ax.set(xlabel="distance to the nearest true boundary (pixels)", ylabel="pixel accuracy", ylim=(0, 1.1),
       title="FCN-32s is right in the interiors and wrong near boundaries")
for k, v in enumerate(accuracy + [far_accuracy]):
    ax.text(k, v + 0.02, f"{v:.2f}", ha="center", fontsize=9)
class_legend(fig, ncol=9, y=0.0)
fig.suptitle("FCN-32s: one score per 32x32 block, upsampled: blobs", fontsize=11)
fig.tight_layout(rect=(0, 0.04, 1, 0.97))
figure = os.path.join(args.out, "08_fcn32s_resolution.png")
fig.savefig(figure, dpi=100)

print(f"\nclaim: FCN-32s is far less accurate within 2 px of a boundary than more than {RINGS[-1]} px away "
      f"({min(accuracy[:2]):.3f} vs {far_accuracy:.3f}): {'yes' if max(accuracy[:2]) + 0.1 < far_accuracy else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
