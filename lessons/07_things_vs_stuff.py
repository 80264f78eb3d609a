"""Lesson 7: things vs stuff, and the pre-convnet texture baseline.

Adelson's distinction: *stuff* (sky, grass, water, brick) is amorphous and known by its texture,
which a small patch shows; *things* (disc, square, triangle, ring, pole) have a shape, and in our
dataset all things share one colour and texture distribution, so only their outline tells them
apart.

Before convnets, segmentation described every pixel by a histogram of filter-bank responses in a
patch around it and classified that (``minisegnet/texture.py``: 12 Gaussian-derivative filters
plus colour, 5 bins each, 9x9 patches, a linear classifier). We train that baseline with the same
``fit`` as the networks and compare it, class by class, with the FCN-8s of lesson 10 (reused from
OUT/models/, trained here if missing). Per-class IU mixes two questions, "is it a thing?" and "which
thing?"; the confusion matrix among the thing classes asks the second alone: of the pixels that are a
thing and were predicted as some thing, which shape was named?

Last, what semantic segmentation cannot do at all: the generator knows every thing it drew (an
instance map, one id per thing), while the label map gives two touching things of one class one
label, so its connected regions cannot count them.

    python lessons/07_things_vs_stuff.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/data/things_and_stuff.py, minisegnet/texture.py,
minisegnet/metrics.py (confusion_among, right_shape_rate, connected_components, count_instances).
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, STUFF, THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_instances, plot_segmentations  # noqa: E402
from minisegnet.metrics import confusion_among, count_instances, right_shape_rate  # noqa: E402
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

names = {"texture": "texture + linear", "fcn8s": "FCN-8s"}
print(f"\nper-class IU on the validation scenes (texture baseline {texture_training}):")
print(f"{'':16s} " + " ".join(f"{c.name[:7]:>7s}" for c in CLASSES) + f" {'stuff':>6s} {'things':>6s}")
means = {}
for name, s in scores.items():
    iou = np.asarray(s["per_class_iou"])
    means[name] = (float(np.nanmean(iou[list(STUFF)])), float(np.nanmean(iou[list(THINGS)])))
    print(f"{names[name]:16s} " + " ".join(f"{v:>7.2f}" for v in iou)
          + f" {means[name][0]:>6.2f} {means[name][1]:>6.2f}")

# --- Which shape? The confusion among the thing classes --------------------------------------------
# Rows: the true thing class; columns: the thing class predicted; only pixels that are a thing and were
# predicted as some thing (a thing missed as stuff says nothing about shape). The right-shape rate is the
# diagonal's share. Chance is not simply 1/5: a guess that ignores the shape but names each class as
# often as the model does is right with probability sum_i (row share_i)(column share_i), which is
# exactly what a model that always answers "disc" gets.
shape = {}
thing_names = [CLASSES[t].name for t in THINGS]
print("\nwhich shape, among the thing pixels predicted as some thing (rows: true class, columns: predicted; pixels):")
for name, s in scores.items():
    among = confusion_among(s["confusion"], THINGS)  # (5, 5)
    rows, columns, total = among.sum(axis=1), among.sum(axis=0), int(among.sum())
    rate = right_shape_rate(s["confusion"], THINGS)
    chance = float((rows * columns).sum() / total ** 2) if total else float("nan")
    shape[name] = (rate, chance)
    print(f"{names[name]:16s} " + " ".join(f"{n[:8]:>8s}" for n in thing_names) + f" | {'total':>6s} {'right':>6s}")
    for k, (thing, row) in enumerate(zip(thing_names, among)):
        right = row[k] / rows[k] if rows[k] else float("nan")
        print(f"  {thing:14s} " + " ".join(f"{int(v):>8d}" for v in row) + f" | {int(rows[k]):>6d} {right:>6.2f}")
    print(f"{names[name]}: right shape {rate:.2f} of {total} pixels; chance {1 / len(THINGS):.2f} (1/{len(THINGS)}), "
          f"{chance:.2f} for its mix of predicted classes")

count = 5
images = data.val.images[:count]
predictions = [(f"{'texture baseline' if n == 'texture' else 'FCN-8s'}\n(things IU {means[n][1]:.2f})",
                predict(m, normalise(images, data.mean, data.std), device=args.device).argmax(axis=1))
               for n, m in (("texture", texture), ("fcn8s", fcn))]
figure = plot_segmentations(images, data.val.labels[:count], predictions,
                            os.path.join(args.out, "07_things_vs_stuff.png"),
                            f"{count} validation scenes: ground truth, the texture baseline and FCN-8s")

# --- What semantic labels cannot count: instances ------------------------------------------------
# For each thing class, the 4-connected regions of (labels == class) are what one could count from the
# label map; the generator's instance map says how many things there really are. A thing is "merged"
# when its region also holds another thing of its class.
counts = [count_instances(labels, ids, THINGS) for labels, ids in zip(data.val.labels, data.val.instances)]
objects, regions, merged = (sum(c[k] for c in counts) for k in range(3))
with_merge = [k for k, c in enumerate(counts) if c.merged]
print(f"\ninstances in the {len(counts)} validation scenes: {objects} things (the generator's instance maps); the "
      f"semantic labels show {regions} connected thing regions; {merged} things share a region with another thing "
      f"of their class (in {len(with_merge)} scenes)")
shown = [(data.val.images[k], data.val.labels[k], data.val.instances[k],
          (f"semantic labels: {counts[k].regions} thing regions",
           f"instances: {counts[k].instances} things, {counts[k].merged} sharing a region")) for k in with_merge[:2]]
instance_figure = plot_instances(shown, os.path.join(args.out, "07_instances.png"), f"{len(shown)} validation scenes "
                                 "with touching things of one class: semantic labels vs instances") if shown else None

stuff, things = means["texture"]
(texture_rate, texture_chance), (fcn_rate, fcn_chance) = shape["texture"], shape["fcn8s"]
# the slide's claim in numbers: stuff segmented (mean IU over 0.4 and over twice the things'); the texture
# baseline's right-shape rate within 0.1 of chance for its mix; FCN-8s's more than 1/5 above chance for its
# own mix, and above the baseline's
holds = (stuff > 0.4 and stuff > 2 * things and abs(texture_rate - texture_chance) < 0.1
         and fcn_rate > fcn_chance + 0.2 and fcn_rate > texture_rate)
print(f"\nclaim: texture histograms tell stuff apart but name a thing's shape hardly better than chance (within 0.1 of "
      f"it), FCN-8s names the shape (texture: "
      f"stuff mean IU {stuff:.2f}, things {things:.2f}, right shape {texture_rate:.2f} vs chance {texture_chance:.2f}; "
      f"FCN-8s right shape {fcn_rate:.2f} vs chance {fcn_chance:.2f}): {'yes' if holds else 'NO'}")
print(f"claim: semantic labels do not separate instances ({merged} of {objects} things share a region with another "
      f"thing of their class): {'yes' if merged > 0 else 'NO'}")
print(f"figures: {figure}, {instance_figure}; total {time.perf_counter() - started:.0f} s")
