"""Lesson 7: things vs stuff, and the pre-convnet texture baseline.

Adelson's distinction: *stuff* (sky, grass, water, brick) is amorphous and known by its texture,
which a small patch shows; *things* (disc, square, triangle, ring, pole) have a shape, and in our
dataset all things share one colour and texture distribution, so only their outline tells them
apart.

Before convnets, segmentation described every pixel by a histogram of filter-bank responses in a
patch around it and classified that (``minisegnet/texture.py``: 12 Gaussian-derivative filters
plus colour, 5 bins each, 9x9 patches, a linear classifier). We train that baseline with the same
``fit`` as the networks and compare it, class by class, with the FCN-8s of lesson 10 (reused from
OUT/models/, trained here if missing).

    python lessons/07_things_vs_stuff.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/data/things_and_stuff.py, minisegnet/texture.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, STUFF, THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 7: things vs stuff and the texture baseline", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
frequencies = data.train.class_frequencies()
print("the classes (share of training pixels):")
for i, c in enumerate(CLASSES):
    print(f"  {c.name:9s} {c.kind:6s} {100 * frequencies[i]:5.1f}%")

# --- The texture baseline: fixed descriptors, a trained linear classifier ---------------------------
texture, _, texture_training = trained_model("texture", args, data)
fcn, _, _ = trained_model("fcn8s", args, data)
scores = {name: evaluate(model, data.val, device=args.device, mean=data.mean, std=data.std, boundary_width=3)
          for name, model in (("texture", texture), ("fcn8s", fcn))}

print(f"\nper-class IU on the validation scenes (texture baseline {texture_training}):")
print(f"{'':14s} " + " ".join(f"{c.name[:7]:>7s}" for c in CLASSES) + f" {'stuff':>6s} {'things':>6s}")
means = {}
for name, s in scores.items():
    iou = np.asarray(s["per_class_iou"])
    means[name] = (float(np.nanmean(iou[list(STUFF)])), float(np.nanmean(iou[list(THINGS)])))
    print(f"{'texture + linear' if name == 'texture' else 'FCN-8s':14s} " + " ".join(f"{v:>7.2f}" for v in iou)
          + f" {means[name][0]:>6.2f} {means[name][1]:>6.2f}")

count = 5
images = data.val.images[:count]
predictions = [(f"{'texture baseline' if n == 'texture' else 'FCN-8s'}\n(things IU {means[n][1]:.2f})",
                predict(m, normalise(images, data.mean, data.std), device=args.device).argmax(axis=1))
               for n, m in (("texture", texture), ("fcn8s", fcn))]
figure = plot_segmentations(images, data.val.labels[:count], predictions,
                            os.path.join(args.out, "07_things_vs_stuff.png"),
                            "Texture histograms find stuff, not things: a patch has no shape")

stuff, things = means["texture"]
print(f"\nclaim: the texture baseline handles stuff but not things (mean IU {stuff:.2f} on stuff vs {things:.2f} on "
      f"things; FCN-8s on things {means['fcn8s'][1]:.2f}): {'yes' if stuff > 2 * things and stuff > 0.4 else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
