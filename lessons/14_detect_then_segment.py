"""Lesson 14: pre-convnet things: detect, then segment.

Before convnets, *stuff* was segmented by texture classifiers (lesson 7) and *things* by doing object
detection first, then segmenting out each detected object. The detectors of the time slid a window
over an image pyramid, described each window by histograms of oriented gradients (HOG, Dalal & Triggs
2005) and classified it with a linear classifier; the boxes that survived non-maximum suppression were
then segmented, object against surround.

In our scenes a thing's outline is the only cue to its class (all things share one colour and texture
distribution), and a texture histogram over a 9x9 patch cannot see an outline: lesson 7's baseline names
stuff, not shapes. A HOG window sees the whole object, its edges cell by cell. Here the whole pipeline,
from minisegnet's own ops (``minisegnet/detection.py``):

1. HOG: gradients by ``conv2d`` with fixed [-1, 0, 1] filters, 9 orientation bins, 4x4-pixel cells
   (``avg_pool2d``), 2x2-cell blocks L2-normalised; windows of 8x8 cells at three scales of the image.
2. Training windows from the generator's instance maps: positives are the windows whose box overlaps a
   thing's box (IoU >= 0.5), labelled with its shape; negatives are random windows that overlap no thing
   (IoU < 0.2). A linear classifier (background + 5 shapes) learns them with cross-entropy and Adam, then
   once more with the background windows it took for things added (hard negatives).
3. Detection on the validation scenes: every window scored (one convolution per scale: a linear classifier
   slid over a feature map *is* a convolution), the windows with P(shape) >= 0.5 kept, non-maximum
   suppression over all of them.
4. Segmentation of each kept box, grown by a quarter of its side (a box is only as precise as the window
   grid), in the image smoothed over 3x3 pixels: a pixel is the object's when its colour is nearer the
   object's colour than any colour just outside the grown box (the object's colour: the median of the
   pixels least like that surround), and the largest connected region of such pixels is kept. Stuff pixels
   come from the texture classifier of lesson 7, so the whole map is what a pre-convnet system would
   produce; the comparison below is on the things only (the stuff does not change the things' IU).

It is compared, on the things, with lesson 7's texture baseline and with the zoo's FCN-8s.

    python lessons/14_detect_then_segment.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/detection.py, minisegnet/texture.py, minisegnet/metrics.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

import minisegnet as msn  # noqa: E402
from minisegnet.data import CLASSES, STUFF, THINGS, normalise  # noqa: E402
from minisegnet.detection import (CELL, WINDOW, LinearDetector, box_iou, detect, hard_negatives,  # noqa: E402
                                  object_boxes, pyramid_windows, segment_detections, train_detector,
                                  training_windows)
from minisegnet.figures import plot_detections  # noqa: E402
from minisegnet.metrics import confusion_matrix, right_shape_rate, scores_from_confusion  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

SCALES = (1.2, 0.857, 0.6)  # a window's box is 24 px at scale 1: boxes of 20, 28 and 40 px in the scene
NEGATIVES = 8               # random background windows per training scene
THRESHOLD, NMS_IOU = 0.5, 0.3
DETECTOR_SCENES = 600       # the first 600 training scenes (about 1500 things) teach the detector
EPOCHS = 8

args = lesson_arguments("Lesson 14: pre-convnet things, detect then segment", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
thing_names = [CLASSES[t].name for t in THINGS]


def things_in(labels, instances):
    """(square boxes (M, 4), classes (M,) in 1..5: 1 + the index of the thing's class in THINGS) of a scene."""
    boxes = object_boxes(instances)
    classes = [1 + THINGS.index(int(labels[instances == k][0])) for k in boxes]
    return np.array(list(boxes.values()), dtype=np.float64).reshape(-1, 4), np.array(classes, dtype=np.int64)


# --- 1 and 2. HOG windows from the training scenes, and a linear classifier ---------------------------
n_scenes = min(DETECTOR_SCENES, len(data.train))
truth = [things_in(data.train.labels[k], data.train.instances[k]) for k in range(n_scenes)]
pyramid = pyramid_windows(data.train.images[:n_scenes], SCALES)
print(f"HOG windows of {WINDOW}x{WINDOW} cells of {CELL} px, at scales {', '.join(map(str, SCALES))}: "
      + ", ".join(f"{b.shape[0]}x{b.shape[1]} windows (box {b[0, 0, 2] - b[0, 0, 0]:.0f} px)" for _, b in pyramid)
      + f" per scene; {pyramid[0][0].shape[1]} numbers per block, {pyramid[0][0].shape[1] * (WINDOW - 1) ** 2} "
      f"per window")
msn.manual_seed(args.seed)
features, targets = training_windows(pyramid, truth, NEGATIVES)
counts = np.bincount(targets, minlength=len(THINGS) + 1)
print(f"training windows from {n_scenes} scenes ({sum(len(c) for _, c in truth)} things): "
      f"{counts[0]} background, " + ", ".join(f"{n} {name}" for n, name in zip(counts[1:], thing_names)))
detector = LinearDetector(len(THINGS) + 1)
t0 = time.perf_counter()
first = train_detector(detector, features, targets, epochs=EPOCHS)
hard = hard_negatives(detector, pyramid, truth, THRESHOLD)
second = train_detector(detector, np.concatenate([features, hard]),
                        np.concatenate([targets, np.zeros(len(hard), dtype=np.int64)]), epochs=EPOCHS)
print(f"linear classifier: loss {first[0]:.3f} -> {first[-1]:.3f} in {EPOCHS} epochs; {len(hard)} hard negatives "
      f"added (background windows it took for a thing); again {second[0]:.3f} -> {second[-1]:.3f} "
      f"({time.perf_counter() - t0:.0f} s)")
del pyramid, features

# --- 3. Detect on the validation scenes ------------------------------------------------------------
detections = detect(detector, data.val.images, SCALES, THRESHOLD, NMS_IOU)
val_truth = [things_in(l, i) for l, i in zip(data.val.labels, data.val.instances)]
found = 0
right, present = np.zeros(len(THINGS) + 1, dtype=np.int64), np.zeros(len(THINGS) + 1, dtype=np.int64)
for d, (boxes, classes) in zip(detections, val_truth):
    present += np.bincount(classes, minlength=len(THINGS) + 1)
    if len(d.boxes) and len(boxes):
        overlaps = box_iou(boxes, d.boxes)  # (things, kept boxes)
        hit = overlaps.max(axis=1) >= 0.5
        found += int(hit.sum())
        right += np.bincount(classes[hit & (d.classes[overlaps.argmax(axis=1)] == classes)], minlength=len(THINGS) + 1)
kept = sum(len(d.boxes) for d in detections)
print(f"\ndetections on the {len(data.val)} validation scenes: {kept} boxes kept of the windows with P(shape) >= "
      f"{THRESHOLD}; {found} of the {present.sum()} things have one at IoU >= 0.5, {right.sum()} of them with the "
      f"right shape: " + ", ".join(f"{name} {r}/{n}" for name, r, n in zip(thing_names, right[1:], present[1:])))
# Poles lean at any angle: one linear template per class must hold a bar at every angle at once, and a bar
# at one angle is mostly background for a bar at another. (Later detectors kept several templates per class,
# one per pose: Felzenszwalb et al.'s mixtures.)

# --- 4. Segment the boxes; stuff from the texture classifier; compare on the things ---------------------
texture, _, texture_training = trained_model("texture", args, data)
fcn, _, fcn_training = trained_model("fcn8s", args, data)
images = normalise(data.val.images, data.mean, data.std)
texture_scores = predict(texture, images, device=args.device)
painted = np.stack([segment_detections(image, d) for image, d in zip(data.val.images, detections)])  # 0, 1..5
stuff_only = np.asarray(STUFF)[texture_scores[:, list(STUFF)].argmax(axis=1)]  # texture's best stuff class
pipeline = np.where(painted > 0, np.asarray((0,) + THINGS)[painted], stuff_only)
confusions = {"texture + linear": evaluate(texture, data.val, device=args.device, mean=data.mean,
                                           std=data.std)["confusion"],
              "detect, segment": confusion_matrix(pipeline, data.val.labels, len(CLASSES)),
              "FCN-8s": evaluate(fcn, data.val, device=args.device, mean=data.mean, std=data.std)["confusion"]}
print(f"\nthe things of the {len(data.val)} validation scenes (texture baseline {texture_training}; FCN-8s "
      f"{fcn_training}): IU per class, their mean, and the right-shape rate (of the thing pixels predicted as some "
      f"thing, the share given the right shape)")
print(f"{'':16s} " + " ".join(f"{n[:8]:>8s}" for n in thing_names) + f" {'things':>7s} {'shape':>6s}")
results = {}
for name, confusion in confusions.items():
    iou = scores_from_confusion(confusion)["per_class_iou"][list(THINGS)]
    results[name] = (float(np.nanmean(iou)), right_shape_rate(confusion, THINGS))
    print(f"{name:16s} " + " ".join(f"{v:>8.2f}" for v in iou) + f" {results[name][0]:>7.2f} {results[name][1]:>6.2f}")

(ours, ours_shape), (tex, tex_shape), (fcn_iou, fcn_shape) = (results[k] for k in ("detect, segment",
                                                                                  "texture + linear", "FCN-8s"))
print(f"\nclaim: detecting things first, then segmenting the detected boxes, finds things the texture classifier "
      f"cannot (things mean IU {ours:.2f} vs {tex:.2f}, right shape {ours_shape:.2f} vs {tex_shape:.2f}): "
      f"{'yes' if ours > tex and ours_shape > tex_shape else 'NO'}")
print(f"against FCN-8s: things mean IU {ours:.2f} vs {fcn_iou:.2f}, right shape {ours_shape:.2f} vs {fcn_shape:.2f} "
      f"(detect-then-segment {'above' if ours > fcn_iou else 'below'} FCN-8s on things)")

# --- 5. The figure: boxes, and the segmentations side by side ---------------------------------------
shown = [k for k in range(len(data.val)) if len(detections[k].boxes)][:4]
fcn_labels = predict(fcn, images[shown], device=args.device).argmax(axis=1)
rows = [(data.val.images[k], [(box, f"{thing_names[c - 1]} {s:.2f}") for box, c, s in zip(*detections[k])],
         [data.val.labels[k], pipeline[k], texture_scores[k].argmax(axis=0), fcn_labels[r]])
        for r, k in enumerate(shown)]
figure = plot_detections(rows, ["ground truth", "detect, segment\n(stuff: texture)", "texture + linear", "FCN-8s"],
                         os.path.join(args.out, "14_detect_then_segment.png"),
                         f"{len(shown)} validation scenes: HOG detections (shape, P), their segmentation, "
                         f"the texture baseline and FCN-8s")
print(f"figure: {figure} ({len(shown)} scenes); total {time.perf_counter() - started:.0f} s")
