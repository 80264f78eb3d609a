"""Lesson 6: the segmentation task and its metrics, on heavily imbalanced data.

In the "things and stuff" data four stuff classes cover over 80% of the pixels and each thing
3-5%. That makes pixel accuracy a flattering number: a "model" that never predicts a thing (perfect
on stuff, painting every object with the stuff around it) already scores over 0.8 on it, while
mean accuracy and mean IU (the FCN paper's metrics, minisegnet/metrics.py) expose it: five of
the nine classes get nothing. A class's IU is |truth AND prediction| / |truth OR prediction| over
its pixels (intersection over union), drawn here for one object. (Predicting one class everywhere scores badly on every metric here,
because the four stuff classes are about equally common.) Then we train the same FCN-8s twice, with plain
cross-entropy and with median-frequency class weights (each class weighted by the inverse of its
pixel frequency, rescaled so that the median class weighs 1: rare classes count more in the loss,
minisegnet/train.py: median_frequency_weights), and see what the weights change, class by class:
a class's accuracy is its recall (of its pixels, the share labelled it), and weights buy recall for
the rare classes with precision (more pixels of other classes labelled as them), which IU counts too.
Both nets come from the lessons' model zoo (trained once, cached in OUT/models/).

    python lessons/06_metrics_and_imbalance.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]
"""
import os

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, STUFF, THINGS, colourise, normalise  # noqa: E402
from minisegnet.metrics import SegmentationMetrics  # noqa: E402
from minisegnet.train import evaluate, median_frequency_weights, predict  # noqa: E402

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
models = {}
for label, class_weights in (("FCN-8s, plain loss", None), ("FCN-8s, class-weighted", "median")):
    models[label], _, training = trained_model("fcn8s", args, data, class_weights)  # plain: lesson 10's FCN-8s
    results[label] = evaluate(models[label], val_set, device=args.device, mean=mean, std=std)
    print(f"{label}: {training}")

print(f"\nvalidation ({N_VAL} scenes; 'one class everywhere' paints {CLASSES[majority].name}):")
print(f"{'':24s} {'pixel acc.':>10s} {'mean acc.':>10s} {'mean IU':>8s} {'f.w. IU':>8s} {'things acc.':>11s}")
for label, s in results.items():
    things = np.nanmean(s["per_class_accuracy"][list(THINGS)])
    print(f"{label:24s} {s['pixel_accuracy']:>10.3f} {s['mean_accuracy']:>10.3f} {s['mean_iou']:>8.3f} "
          f"{s['fw_iou']:>8.3f} {things:>11.3f}")

plain, weighted = results["FCN-8s, plain loss"], results["FCN-8s, class-weighted"]
print("\nper class, plain loss -> class-weighted loss:")
print(f"{'':9s} {'kind':6s} {'weight':>6s} {'accuracy':>14s} {'IU':>14s}")
for c, cls in enumerate(CLASSES):
    print(f"{cls.name:9s} {cls.kind:6s} {weights[c]:>6.2f} {plain['per_class_accuracy'][c]:>6.3f} -> "
          f"{weighted['per_class_accuracy'][c]:.3f} {plain['per_class_iou'][c]:>6.3f} -> {weighted['per_class_iou'][c]:.3f}")

# --- Intersection over union, drawn: one object of the plain FCN-8s ------------------------------------
# The thing in the validation scenes whose IU is nearest 0.6: right enough to recognise, wrong enough that
# intersection and union differ visibly.
predicted = predict(models["FCN-8s, plain loss"], normalise(val_set.images, mean, std), device=args.device).argmax(axis=1)
candidates = []
for index in range(N_VAL):
    for c in THINGS:
        truth, guess = val_set.labels[index] == c, predicted[index] == c
        if truth.sum() >= 40:
            candidates.append((abs((truth & guess).sum() / (truth | guess).sum() - 0.6), index, c))
_, scene, shown_class = min(candidates)
truth, guess = val_set.labels[scene] == shown_class, predicted[scene] == shown_class
intersection, union = truth & guess, truth | guess
one_scene = SegmentationMetrics(len(CLASSES)).update(predicted[scene:scene + 1], val_set.labels[scene:scene + 1])
iou_here = one_scene.compute()["per_class_iou"][shown_class]
print(f"\nscene {scene}, {CLASSES[shown_class].name}: |truth| {truth.sum()}, |prediction| {guess.sum()}, "
      f"|intersection| {intersection.sum()}, |union| {union.sum()}: IU = {intersection.sum() / union.sum():.3f} "
      f"(SegmentationMetrics on this scene: {iou_here:.3f})")

# --- Figures: intersection and union of that object; per-class accuracy of the three ----------------
fig, axes = plt.subplots(1, 5, figsize=(11, 2.7))
panels = [("image", np.clip(val_set.images[scene].transpose(1, 2, 0), 0, 1)),
          ("FCN-8s's labels", colourise(predicted[scene])),
          (f"truth: {truth.sum()} px", truth), (f"prediction: {guess.sum()} px", guess)]
for ax, (title, picture) in zip(axes, panels):
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, interpolation="nearest")
    ax.set_title(title, fontsize=9)
overlap = np.zeros(truth.shape + (3,))
overlap[truth & ~guess] = (0.9, 0.3, 0.3)    # missed: in the truth only
overlap[guess & ~truth] = (0.3, 0.5, 0.95)   # false alarm: in the prediction only
overlap[intersection] = (1.0, 1.0, 1.0)      # both
axes[4].imshow(overlap, interpolation="nearest")
axes[4].set_title(f"white: intersection {intersection.sum()} px\nall colours: union {union.sum()} px", fontsize=9)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle(f"IU of the {CLASSES[shown_class].name} in validation scene {scene}: {intersection.sum()} / {union.sum()} = "
             f"{intersection.sum() / union.sum():.2f} (red: missed, blue: false alarm)", fontsize=10)
fig.tight_layout()
iou_figure = os.path.join(args.out, "06_intersection_over_union.png")
fig.savefig(iou_figure, dpi=100)
plt.close(fig)

fig, ax = plt.subplots(figsize=(13, 3.8))
shown = ["never a thing", "FCN-8s, plain loss", "FCN-8s, class-weighted"]
width = 0.27
for i, label in enumerate(shown):
    note = " (copies the true stuff labels)" if label == "never a thing" else ""
    ax.bar(np.arange(len(CLASSES)) + (i - 1) * width, np.nan_to_num(results[label]["per_class_accuracy"]), width,
           label=f"{label}{note} (pixel acc. {results[label]['pixel_accuracy']:.2f}, "
                 f"mean IU {results[label]['mean_iou']:.2f})")
ax.set_xticks(range(len(CLASSES)), [f"{c.name}\n({c.kind})" for c in CLASSES], fontsize=8)
ax.set(ylabel="per-class accuracy", ylim=(0, 1.05), title=f"Per-class accuracy on the {N_VAL} validation scenes")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, covering none
fig.tight_layout()
figure = os.path.join(args.out, "06_metrics_and_imbalance.png")
fig.savefig(figure, dpi=110)
plt.close(fig)

things_plain = np.nanmean(plain["per_class_accuracy"][list(THINGS)])
things_weighted = np.nanmean(weighted["per_class_accuracy"][list(THINGS)])
raised = [CLASSES[c].name for c in THINGS if weighted["per_class_accuracy"][c] > plain["per_class_accuracy"][c]]
print(f"\nsummary: never predicting a thing scores pixel accuracy {trivial['pixel_accuracy']:.3f} but mean IU "
      f"{trivial['mean_iou']:.3f}; class weights change the things' mean accuracy {things_plain:.3f} -> "
      f"{things_weighted:.3f} and pixel accuracy {plain['pixel_accuracy']:.3f} -> {weighted['pixel_accuracy']:.3f}; "
      f"figures: {figure}, {iou_figure}")
pixel_gap = plain["pixel_accuracy"] - trivial["pixel_accuracy"]
iou_gap = plain["mean_iou"] - trivial["mean_iou"]
print(f"claim: pixel accuracy hides the missing things: it puts 'never a thing' {pixel_gap:.3f} below FCN-8s, mean IU "
      f"{iou_gap:.3f} below: {'yes' if iou_gap > max(pixel_gap, 0) else 'NO'}")
lowered = [CLASSES[c].name for c in STUFF if weighted["per_class_accuracy"][c] < plain["per_class_accuracy"][c]]
print(f"claim: class weights raise the accuracy (recall) of the rare things, {len(raised)}/{len(THINGS)} thing classes "
      f"({', '.join(raised) or 'none'}): {'yes' if things_weighted > things_plain else 'NO'}")
things_iou = [float(np.nanmean(r["per_class_iou"][list(THINGS)])) for r in (plain, weighted)]
print(f"(the price: {len(lowered)}/{len(STUFF)} stuff classes lose accuracy, as the weighted loss labels more pixels "
      f"as things; by IU, which also counts those false alarms, the things move {things_iou[0]:.3f} -> "
      f"{things_iou[1]:.3f} and mean IU {plain['mean_iou']:.3f} -> {weighted['mean_iou']:.3f})")
