"""Lesson 9: image pyramids — one network, several scales (Farabet et al. 2013).

Before skip connections, Farabet, Couprie, Najman & LeCun gave a scene-labelling convnet context
by running the *same* network (shared weights) on the image at several scales: on the half-size
image every unit sees twice as much of the scene, in input pixels. The score maps are resized to
the input and combined (``models.PyramidFCN``: summed, then trained end to end).

We compare a two-scale pyramid of our FCN-8s (scales 1 and 1/2) with the FCN-8s alone, trained
the same way: their receptive fields per branch (from the layers: the half-size branch enters as
a 2x2 average pooling), accuracy, and the cost of the extra pass.

    python lessons/09_image_pyramids.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (PyramidFCN), minisegnet/inspect.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

from minisegnet.data import THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.inspect import receptive_field  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 9: image pyramids", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
NAMES = {"fcn8s": "FCN-8s, one scale", "pyramid": "FCN-8s pyramid (1, 1/2)"}
models = {name: trained_model(name, args, data) for name in NAMES}

# --- 1. What each branch sees -------------------------------------------------------------------
print("1. receptive field r and stride S of every score branch, in input pixels:")
fields = {branch: rows[-1] for branch, rows in receptive_field(models["pyramid"][0]).items()}
for branch, row in fields.items():
    print(f"   {branch:48s} r = {row.size:4d}, S = {row.jump:3d}")
full = [row for branch, row in fields.items() if branch.startswith("scale 1.0")]
half = [row for branch, row in fields.items() if branch.startswith("scale 0.5")]
largest_full, largest_half = max(r.size for r in full), max(r.size for r in half)

# --- 2. Accuracy after the same training ------------------------------------------------------------
print(f"\n2. validation after {data.epochs} epochs each:")
print(f"   {'':26s} {'pixel acc.':>10s} {'mean IU':>8s} {'things IU':>10s} {'boundary acc.':>14s} {'train s':>8s}")
scores = {}
for name, title in NAMES.items():
    model, _, training = models[name]
    s = scores[name] = evaluate(model, data.val, device=args.device, mean=data.mean, std=data.std,
                                boundary_width=3)
    things = sum(s["per_class_iou"][c] for c in THINGS) / len(THINGS)
    print(f"   {title:26s} {s['pixel_accuracy']:>10.3f} {s['mean_iou']:>8.3f} {things:>10.3f} "
          f"{s['boundary_accuracy']:>14.3f} {training.seconds:>8.1f}")

if largest_full >= data.val.images.shape[-1]:
    print(f"   (on {data.val.images.shape[-1]}-px scenes the one-scale net's deepest branch already sees {largest_full} px, "
          "the whole scene, so the half scale has little context to add; Farabet et al.'s single-scale net saw "
          "46 px of 320-px scenes)")

count = 5
images = data.val.images[:count]
predictions = [(f"{title}\nmean IU {scores[name]['mean_iou']:.2f}",
                predict(models[name][0], normalise(images, data.mean, data.std), device=args.device).argmax(axis=1))
               for name, title in NAMES.items()]
figure = plot_segmentations(images, data.val.labels[:count], predictions, os.path.join(args.out, "09_image_pyramids.png"),
                            "Image pyramid: the same weights on the image at scales 1 and 1/2")

print(f"\nclaim: with the same weights, the half-scale branch sees {largest_half} px of the input where the full-scale "
      f"one sees {largest_full} px: {'yes' if largest_half > largest_full else 'NO'}; mean IU pyramid "
      f"{scores['pyramid']['mean_iou']:.3f} vs one scale {scores['fcn8s']['mean_iou']:.3f}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
