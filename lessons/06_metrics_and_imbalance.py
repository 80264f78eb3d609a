"""Lesson 6: the segmentation task and its metrics, on heavily imbalanced data.

In the "things and stuff" data four stuff classes cover over 80% of the pixels and each thing
3-5%. That makes pixel accuracy a flattering number: a "model" that never predicts a thing (perfect
on stuff, painting every object with the stuff around it) already scores over 0.8 on it, while
mean accuracy and mean IU (the FCN paper's metrics, minisegnet/metrics.py) expose it: five of
the nine classes get nothing. (Predicting one class everywhere scores badly on every metric here,
because the four stuff classes are about equally common.) Then we train the same FCN-8s twice, with plain
cross-entropy and with median-frequency class weights (rare classes count more in the loss,
minisegnet/train.py: median_frequency_weights), and see what the weights change.

    python lessons/06_metrics_and_imbalance.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]
"""
import os

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, THINGS  # noqa: E402
from minisegnet.metrics import SegmentationMetrics  # noqa: E402
from minisegnet.train import evaluate, median_frequency_weights  # noqa: E402

args = lesson_arguments("Lesson 6: metrics and class imbalance", quick="a small run in seconds")
data = lesson_data(args)  # the lessons' scenes and recipe (lessons/_lesson.py)
train_set, val_set, mean, std, _ = data
N_VAL = len(val_set)
freq = train_set.class_frequencies()
weights = median_frequency_weights(train_set, len(CLASSES))
print("class frequencies in the training pixels, and the median-frequency weight of each class:")
for c, (cls, f, w) in enumerate(zip(CLASSES, freq, weights)):
    print(f"  {cls.name:9s} {cls.kind:6s} {100 * f:5.1f}%   weight {w:5.2f}")

# --- 1. Two "models" without any learning ----------------------------------------------------------
majority = int(np.argmax(freq))
majority_scores = SegmentationMetrics(len(CLASSES)).update(np.full_like(val_set.labels, majority), val_set.labels)
no_things = val_set.labels.copy()
for labels in no_things:  # every object painted with the most common stuff class of its image
    is_thing = np.isin(labels, THINGS)
    labels[is_thing] = np.bincount(labels[~is_thing], minlength=len(CLASSES)).argmax()
trivial = SegmentationMetrics(len(CLASSES)).update(no_things, val_set.labels).compute()

# --- 2. The same FCN-8s, trained with and without class weights -----------------------------------
results = {"one class everywhere": majority_scores.compute(), "never a thing": trivial}
for label, class_weights in (("FCN-8s, plain loss", None), ("FCN-8s, class-weighted", "median")):
    model, _, _ = trained_model("fcn8s", args, data, class_weights)  # the plain one is lesson 10's FCN-8s
    results[label] = evaluate(model, val_set, device=args.device, mean=mean, std=std)

print(f"\nvalidation ({N_VAL} scenes; 'one class everywhere' paints {CLASSES[majority].name}):")
print(f"{'':24s} {'pixel acc.':>10s} {'mean acc.':>10s} {'mean IU':>8s} {'f.w. IU':>8s} {'things acc.':>11s}")
for label, s in results.items():
    things = np.nanmean(s["per_class_accuracy"][list(THINGS)])
    print(f"{label:24s} {s['pixel_accuracy']:>10.3f} {s['mean_accuracy']:>10.3f} {s['mean_iou']:>8.3f} "
          f"{s['fw_iou']:>8.3f} {things:>11.3f}")

# --- Figure: per-class accuracy of the three -------------------------------------------------------
fig, ax = plt.subplots(figsize=(10, 3.8))
shown = ["never a thing", "FCN-8s, plain loss", "FCN-8s, class-weighted"]
width = 0.27
for i, label in enumerate(shown):
    ax.bar(np.arange(len(CLASSES)) + (i - 1) * width, np.nan_to_num(results[label]["per_class_accuracy"]), width,
           label=f"{label} (pixel acc. {results[label]['pixel_accuracy']:.2f}, mean IU {results[label]['mean_iou']:.2f})")
ax.set_xticks(range(len(CLASSES)), [f"{c.name}\n({c.kind})" for c in CLASSES], fontsize=8)
ax.set(ylabel="per-class accuracy", ylim=(0, 1.05), title="Pixel accuracy hides the rare classes; class weights lift them")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
figure = os.path.join(args.out, "06_metrics_and_imbalance.png")
fig.savefig(figure, dpi=110)

plain, weighted = results["FCN-8s, plain loss"], results["FCN-8s, class-weighted"]
things_plain = np.nanmean(plain["per_class_accuracy"][list(THINGS)])
things_weighted = np.nanmean(weighted["per_class_accuracy"][list(THINGS)])
print(f"\nsummary: never predicting a thing scores pixel accuracy {trivial['pixel_accuracy']:.3f} but mean IU "
      f"{trivial['mean_iou']:.3f}; class weights change the things' mean accuracy {things_plain:.3f} -> "
      f"{things_weighted:.3f} and pixel accuracy {plain['pixel_accuracy']:.3f} -> {weighted['pixel_accuracy']:.3f}; "
      f"figure: {figure}")
