"""Lesson 11: dilated convolution — a large receptive field without subsampling.

Subsampling buys a network its large receptive field (lesson 3) and costs it resolution
(lesson 8). A dilated 3x3 convolution with dilation d reads a (2d+1)x(2d+1) window with holes
(lesson 2), so it grows the field as fast as pooling would, while the map keeps its size.
DeepLab's recipe, ``models.DilatedFCN``: drop the pooling after stages 3 and 4 and dilate the
convolutions of stages 4 and 5 by 2 and 4. The output stride stays 8 instead of 32.

We compare it with FCN-32s (the same backbone, subsampled to stride 32): receptive fields and
strides from the layers, accuracy after the same training, and the price: the bytes of every
feature map the backbone keeps.

    python lessons/11_dilated_convolution.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (DilatedFCN), minisegnet/inspect.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import no_grad, tensor  # noqa: E402
from minisegnet.data import normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.inspect import receptive_field  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 11: dilated convolution", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
NAMES = {"fcn32s": "FCN-32s (subsampling)", "dilated": "dilated (DeepLab)"}
models = {name: trained_model(name, args, data) for name in NAMES}

# --- 1. Receptive field and stride, stage by stage ------------------------------------------------
print("1. receptive field r and stride S at the end of each stage (from the layers):")
print(f"   {'stage':6s} " + " ".join(f"{title:>24s}" for title in NAMES.values()))
for stage in range(5):
    cells = []
    for name in NAMES:
        row = receptive_field(models[name][0].backbone.stage_layers(stage))[-1]
        cells.append(f"r = {row.size:3d}, S = {row.jump:2d}")
    print(f"   {stage + 1:<6d} " + " ".join(f"{c:>24s}" for c in cells))

# --- 2. Accuracy after the same training ------------------------------------------------------------
print(f"\n2. validation after {data.epochs} epochs each:")
print(f"   {'':24s} {'pixel acc.':>10s} {'mean IU':>8s} {'boundary acc.':>14s} {'train s':>8s}")
scores = {}
for name, title in NAMES.items():
    model, _, training = models[name]
    scores[name] = evaluate(model, data.val, device=args.device, mean=data.mean, std=data.std, boundary_width=3)
    s = scores[name]
    print(f"   {title:24s} {s['pixel_accuracy']:>10.3f} {s['mean_iou']:>8.3f} {s['boundary_accuracy']:>14.3f} "
          f"{training.seconds:>8.1f}")


# --- 3. The price: the feature maps at full resolution ----------------------------------------------
def feature_bytes(model, size):
    """Bytes of the five stage outputs for one size x size image (float32)."""
    x = tensor(np.zeros((1, 3, size, size), dtype=np.float32), device=args.device)
    with no_grad():
        maps = model.backbone(x)
    return [m.data.nbytes for m in maps], [tuple(m.shape[2:]) for m in maps]


print("\n3. memory of the stage outputs for one image (float32):")
print(f"   {'image':>9s} " + " ".join(f"{title:>24s}" for title in NAMES.values()) + f" {'ratio':>6s}")
ratios = {}
for size in (64, 256, 512):
    totals = [sum(feature_bytes(models[name][0], size)[0]) for name in NAMES]
    ratios[size] = totals[1] / totals[0]
    print(f"   {size:>4d}x{size:<4d} " + " ".join(f"{t / 2**20:>20.2f} MiB" for t in totals) + f" {ratios[size]:>6.2f}")
shapes = {name: feature_bytes(models[name][0], 64)[1] for name in NAMES}
print("   stage-5 map for a 64x64 image: " + ", ".join(f"{NAMES[n]} {shapes[n][4]}" for n in NAMES))

count = 5
images = data.val.images[:count]
predictions = [(f"{title}\nmean IU {scores[name]['mean_iou']:.2f}",
                predict(models[name][0], normalise(images, data.mean, data.std), device=args.device).argmax(axis=1))
               for name, title in NAMES.items()]
figure = plot_segmentations(images, data.val.labels[:count], predictions,
                            os.path.join(args.out, "11_dilated_convolution.png"),
                            "Dilated convolution keeps stride 8 and still grows the receptive field")

last = {n: receptive_field(models[n][0].backbone.stage_layers(4))[-1] for n in NAMES}
better = scores["dilated"]["boundary_accuracy"] > scores["fcn32s"]["boundary_accuracy"]
print(f"\nclaim: the dilated net keeps stride {last['dilated'].jump} (vs {last['fcn32s'].jump}) with a receptive field "
      f"of {last['dilated'].size} px (vs {last['fcn32s'].size}), is more accurate near boundaries "
      f"({scores['dilated']['boundary_accuracy']:.3f} vs {scores['fcn32s']['boundary_accuracy']:.3f}), and pays "
      f"{ratios[256]:.1f}x the feature-map memory: {'yes' if better and ratios[256] > 1 else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
