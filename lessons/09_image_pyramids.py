"""Lesson 9: image pyramids — one network, several scales (Farabet et al. 2013).

Before skip connections, Farabet, Couprie, Najman & LeCun gave a scene-labelling convnet context
by running the *same* feature extractor (shared weights) on the image at several scales: on the
half-size image every unit sees twice as much of the scene, in input pixels. Every scale's feature
maps are upsampled to the finest, concatenated, and one linear classifier labels each pixel from all
of them (``models.PyramidFCN``, trained end to end), so a feature can count differently when it
describes a larger piece of the scene. Their single-scale net saw 46 px of a 320-px scene: a window
far smaller than the objects.

A pyramid helps when the objects are larger than what one scale of the net sees. Our deep nets see
124 px, the whole 64-px scene, so this lesson takes a net whose window is far smaller than a thing,
as Farabet's was: the backbone's first stage alone (two 3x3 convolutions and a 2x2 pooling, scored
by a 1x1 convolution: r = 6 px, where a thing is about 22 px tall; the run prints the median). Inside
a disc or a square it sees one flat colour, and every thing's colour comes from the same distribution,
so colour cannot name the shape; near an outline it sees a few pixels of edge, too little to tell a
disc's from a square's. We compare it alone with a three-level pyramid of it (scales 1, 1/2 and 1/4,
each level the one above it halved; on even sizes halving averages 2x2 blocks exactly, so the 1/4
level enters the receptive-field arithmetic as two 2x2 average poolings and its units see 24 px),
trained the same way: their
receptive fields per branch, accuracy on things and on stuff, whether they name the right shape,
and the cost of the extra passes.

    python lessons/09_image_pyramids.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (PyramidFCN, ShallowFCN with stages=1), minisegnet/inspect.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, STUFF, THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.inspect import receptive_field  # noqa: E402
from minisegnet.metrics import confusion_matrix, right_shape_rate, scores_from_confusion  # noqa: E402
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 9: image pyramids", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
SIZE = data.val.images.shape[-1]
NAMES = {"shallow1": "one stage, one scale", "pyramid_shallow1": "one stage, scales 1, 1/2, 1/4"}
models = {name: trained_model(name, args, data) for name in NAMES}
print(f"data: {len(data.train)} training and {len(data.val)} validation scenes of {SIZE}x{SIZE}; "
      + "; ".join(f"{NAMES[n]}: {models[n][2]}" for n in NAMES))

# --- 1. What each branch sees -------------------------------------------------------------------
print("\n1. receptive field r and stride S of every score branch, in input pixels:")
fields = {branch: rows[-1] for branch, rows in receptive_field(models["pyramid_shallow1"][0]).items()}
for branch, row in fields.items():
    print(f"   {branch:48s} r = {row.size:4d}, S = {row.jump:3d}")
largest_full = max(row.size for branch, row in fields.items() if branch.startswith("scale 1.0"))
largest_coarse = max(row.size for branch, row in fields.items() if branch.startswith("scale 0.25"))
heights = [int((ids == k).any(axis=1).sum()) for ids in data.val.instances for k in np.unique(ids[ids > 0])]
print(f"   a thing in the validation scenes spans {np.median(heights):.0f} px from top to bottom (median of "
      f"{len(heights)})")

# --- 2. Accuracy after the same training ------------------------------------------------------------
print(f"\n2. validation after {data.epochs} epochs each (right shape: of the thing pixels labelled as some thing, "
      "the share labelled the right one):")
print(f"   {'':30s} {'mean IU':>8s} {'stuff IU':>9s} {'things IU':>10s} {'right shape':>12s} {'ms / scene':>11s}")
rows, scene_confusions, predicted = {}, {}, {}
scenes = normalise(data.val.images, data.mean, data.std)
for name, title in NAMES.items():
    model = models[name][0]
    predict(model, scenes, device=args.device)  # once to warm up (kernels loaded, memory allocated), then timed
    t0 = time.perf_counter()
    labels = predict(model, scenes, device=args.device).argmax(axis=1)
    ms = 1000 * (time.perf_counter() - t0) / len(data.val)
    predicted[name] = labels
    # one confusion matrix per scene (the bootstrap below redraws scenes); their sum scores the whole set
    scene_confusions[name] = np.stack([confusion_matrix(p, t, len(CLASSES)) for p, t in zip(labels, data.val.labels)])
    total = scene_confusions[name].sum(axis=0)
    s = scores_from_confusion(total)
    rows[name] = dict(miou=s["mean_iou"], stuff=float(np.nanmean(s["per_class_iou"][list(STUFF)])),
                      things=float(np.nanmean(s["per_class_iou"][list(THINGS)])),
                      shape=right_shape_rate(total, THINGS), ms=ms)
    r = rows[name]
    print(f"   {title:30s} {r['miou']:>8.3f} {r['stuff']:>9.3f} {r['things']:>10.3f} {r['shape']:>12.3f} {ms:>11.2f}")

count = 5
images = data.val.images[:count]
predictions = [(f"{title}\nmean IU {rows[name]['miou']:.2f}",
                predict(models[name][0], scenes[:count], device=args.device).argmax(axis=1))
               for name, title in NAMES.items()]
figure = plot_segmentations(images, data.val.labels[:count], predictions, os.path.join(args.out, "09_image_pyramids.png"),
                            f"Five {SIZE}x{SIZE} validation scenes: the first stage alone (r = {largest_full} px) "
                            f"and as a pyramid (scales 1, 1/2, 1/4: r up to {largest_coarse} px)")

one, pyramid = rows["shallow1"], rows["pyramid_shallow1"]


# --- Is the difference more than chance? A paired bootstrap over the validation scenes ----------------
# Draw 60 scenes with replacement, score both nets on the same draw, and repeat: the spread of the
# difference is how much it would move with another set of scenes. A gain counts only if the middle 95%
# of the differences lies above 0.
def things_and_shape(confusion):
    return float(np.nanmean(scores_from_confusion(confusion)["per_class_iou"][list(THINGS)])), \
        right_shape_rate(confusion, THINGS)


rng = np.random.default_rng(args.seed)
differences = []
for _ in range(1000):
    draw = rng.integers(0, len(data.val), len(data.val))
    (t1, s1), (tp, sp) = (things_and_shape(scene_confusions[n][draw].sum(axis=0)) for n in NAMES)
    differences.append((tp - t1, sp - s1))
(things_lo, shape_lo), (things_hi, shape_hi) = np.nanpercentile(np.array(differences), [2.5, 97.5], axis=0)
print(f"\npyramid minus one scale, 95% of 1000 bootstrap draws of the {len(data.val)} scenes: things IU "
      f"{things_lo:+.3f} to {things_hi:+.3f}, right shape {shape_lo:+.3f} to {shape_hi:+.3f}")

print(f"\nclaim: with the same feature weights, the quarter-scale branch sees {largest_coarse} px of the input where the "
      f"full-scale one sees {largest_full} px: {'yes' if largest_coarse > largest_full else 'NO'}")
print(f"claim: that context helps where the objects are larger than one scale's window, beyond the scene-to-scene "
      f"noise: things IU {pyramid['things']:.3f} vs {one['things']:.3f}, right shape {pyramid['shape']:.3f} vs "
      f"{one['shape']:.3f}: {'yes' if things_lo > 0 and shape_lo > 0 else 'NO'}")
# Which things gain? Printed per class, as a measurement, not a claim: the share of each thing class's pixels
# labelled right, one scale -> pyramid.
truth = data.val.labels
per_class = "; ".join(f"{CLASSES[k].name} ({(truth == k).sum()} px) " + " -> ".join(
    f"{(predicted[name][truth == k] == k).mean():.3f}" for name in NAMES) for k in THINGS if (truth == k).any())
print(f"which things: pixels labelled right, one scale -> pyramid: {per_class}")
print(f"(the price: {pyramid['ms'] / one['ms']:.2f}x the time per scene; stuff IU {pyramid['stuff']:.3f} vs "
      f"{one['stuff']:.3f})")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
