"""Lesson 13: the data: annotation, ignored boundaries, and the long tail.

A segmentation label is a class for every pixel, and someone has to draw it. Annotating is slow,
and slowest where objects meet: the exact outline of an object is where annotators disagree and
where they spend their time. PASCAL VOC's answer is to give up there: a band of a few pixels
around every object is labelled 255, "ignore", and skipped both by the loss (cross-entropy with
``ignore_index=255``, minisegnet/functional/loss.py) and by the metrics (minisegnet/metrics.py).
The "things and stuff" generator draws the same band (``data.boundary_band``: the pixels next to
another label, around every thing) when asked, ``ThingsAndStuff(..., ignore_boundary=True)``. Its
labels are exact, drawn with the scene, so no annotator's trouble at the outlines can be measured
here; the lesson measures what the band does to a network instead.

The second fact about real data is its tail: a few classes hold most of the pixels and the rest
hold few. One common answer is to annotate the few common classes and mark everything else as
"other" (``data.merge_classes``, ``data.Relabelled``): fewer classes to tell apart, each with more
pixels, at the price of detail.

We measure the tail of the training scenes, then train the lessons' FCN-8s twice more with the
recipe of every other net (lessons/_lesson.py), once on training labels with the boundary band
ignored and once with the three rarest classes merged into "other", and score each against the
FCN-8s trained on the full labels: on the full validation labels for the band (and the way VOC
scores, with the band skipped), and on the merged labels for "other", the full net's predictions
merged by the same lookup table, so that both are scored on the same question.

    python lessons/13_the_data.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/data/things_and_stuff.py (boundary_band),
minisegnet/data/merge.py, minisegnet/metrics.py (boundary_accuracy, accuracy_by_boundary_distance).
"""
import os

from _lesson import RARE, lesson_arguments, lesson_data, lesson_labels, trained_model  # first: the command line

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from minisegnet.data import (CLASSES, IGNORE_INDEX, THINGS, ThingsAndStuff, colourise,  # noqa: E402
                             merge_classes, normalise, relabel)
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.metrics import (SegmentationMetrics, accuracy_by_boundary_distance, boundary_accuracy,  # noqa: E402
                                right_shape_rate)
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 13: the data: annotation, ignored boundaries, and the long tail",
                        quick="a small run in seconds")
data = lesson_data(args)  # the lessons' scenes and recipe (lessons/_lesson.py)
train_set, val_set, mean, std, _ = data
NAMES = tuple(c.name for c in CLASSES)
FAR = 3      # "away from boundaries": more than 3 px from the nearest label boundary
LITTLE = 0.01  # a cost is "little" when it is under one point of accuracy

# --- 1. The heavy tail: pixels per class ------------------------------------------------------------
freq = train_set.class_frequencies()
pixels = np.bincount(train_set.labels.ravel(), minlength=len(CLASSES))
order = np.argsort(freq)[::-1]
print(f"pixels per class in the {len(train_set)} training scenes, most to least frequent:")
for rank, c in enumerate(order, 1):
    print(f"  {rank}  {NAMES[c]:9s} {CLASSES[c].kind:6s} {pixels[c]:>9d} px {100 * freq[c]:6.2f}%")
most, least = order[0], order[-1]
rarest = sorted(NAMES[c] for c in order[-len(RARE):])
print(f"most / least frequent: {NAMES[most]} / {NAMES[least]} = {freq[most] / freq[least]:.1f}x")
print(f"the {len(RARE)} rarest classes here: {', '.join(rarest)}; merged into 'other' below: "
      f"{', '.join(sorted(RARE))}: {'the same' if rarest == sorted(RARE) else 'NOT the same'}")

fig, ax = plt.subplots(figsize=(8, 3.6))
ax.bar(range(len(order)), freq[order], color=[np.array(CLASSES[c].colour) / 255 for c in order], edgecolor="black")
ax.set_yscale("log")
ax.set_xticks(range(len(order)), [f"{NAMES[c]}\n({CLASSES[c].kind})" for c in order], fontsize=8)
ax.set(ylabel="share of the training pixels (log scale)",
       title=f"Pixel share per class, {len(train_set)} training scenes, most to least frequent")
for i, c in enumerate(order):
    ax.text(i, freq[c] * 1.08, f"{100 * freq[c]:.1f}%", ha="center", va="bottom", fontsize=8)
ax.set_ylim(freq.min() / 2, freq.max() * 2)
fig.tight_layout()
tail_figure = os.path.join(args.out, "13_long_tail.png")
fig.savefig(tail_figure, dpi=100)
plt.close(fig)

# --- 2. The ignored band: what the annotator may skip -------------------------------------------------
band_data, _ = lesson_labels(data, "band_ignored")
assert np.array_equal(band_data.train.images, train_set.images)  # the same scenes, only labels differ
in_band = band_data.train.labels == IGNORE_INDEX
band_share = float(in_band.mean())
is_thing = np.isin(train_set.labels, THINGS)
in_band_share = {c: (in_band & (train_set.labels == c)).sum() / (train_set.labels == c).sum() for c in THINGS}
print(f"\nthe boundary band (the pixels next to another label, around every thing) holds {100 * band_share:.1f}% of "
      f"the training pixels; labelled 255 they need no annotation. That is "
      f"{100 * (in_band & is_thing).sum() / is_thing.sum():.0f}% of the thing pixels: "
      + ", ".join(f"{NAMES[c]} {100 * in_band_share[c]:.0f}%" for c in THINGS) + " (rings and poles are 6 px wide)")

# --- 3. Three FCN-8s, one recipe, three sets of training labels ---------------------------------------
nets = {}
for key, title in ((None, "full labels"), ("band_ignored", "band ignored"), ("rare_merged", "rare merged")):
    model, _, training = trained_model("fcn8s", args, data, labels=key)
    print(f"FCN-8s, {title}: {training}")
    nets[title] = predict(model, normalise(val_set.images, mean, std), device=args.device).argmax(axis=1)

# (a) The band. Scored on the full validation labels (every pixel counts), and the way VOC scores: the
# validation band labelled 255 too, so nobody is scored where nobody annotated.
truth = val_set.labels
voc_truth = ThingsAndStuff(len(val_set), val_set.size, seed=val_set.seed, ignore_boundary=True).labels
on_band = voc_truth == IGNORE_INDEX
print(f"\nthe ignored band, {len(val_set)} validation scenes scored on the full labels (and VOC's way: the "
      f"{100 * on_band.mean():.1f}% of pixels in the band skipped):")
print(f"{'FCN-8s trained on':18s} {'pixel acc.':>10s} {'mean IU':>8s} {'1 px':>6s} {'3 px':>6s} {f'> {FAR} px':>6s} "
      f"{'on band':>8s} {'VOC mean IU':>11s}")
band_rows = {}
for title in ("full labels", "band ignored"):
    pred = nets[title]
    s = SegmentationMetrics(len(CLASSES)).update(pred, truth).compute()
    voc = SegmentationMetrics(len(CLASSES)).update(pred, voc_truth).compute()
    _, by_distance = accuracy_by_boundary_distance(pred, truth, [FAR])
    row = (s["pixel_accuracy"], s["mean_iou"], boundary_accuracy(pred, truth, 1), boundary_accuracy(pred, truth, 3),
           by_distance[1], float((pred[on_band] == truth[on_band]).mean()), voc["mean_iou"])
    band_rows[title] = row
    print(f"{title:18s} {row[0]:>10.3f} {row[1]:>8.3f} {row[2]:>6.3f} {row[3]:>6.3f} {row[4]:>6.3f} {row[5]:>8.3f} "
          f"{row[6]:>11.3f}")
print("(1 px, 3 px: accuracy within that distance of a boundary; on band: accuracy on the band's pixels)")
thing_iou = {title: SegmentationMetrics(len(CLASSES)).update(nets[title], truth).compute()["per_class_iou"]
             for title in ("full labels", "band ignored")}
print("thing IU, full labels -> band ignored: " + ", ".join(
    f"{NAMES[c]} {thing_iou['full labels'][c]:.3f} -> {thing_iou['band ignored'][c]:.3f}" for c in THINGS))

# (b) "Other". The merged net is scored on the merged validation labels; the full net too, its 9-class
# predictions merged by the same table (a ring taken for a pole is then right: both are "other").
lookup, merged_names = merge_classes(NAMES, RARE)
other = merged_names.index("other")
merged_truth = relabel(truth, lookup)
merged_scores = {"full labels, merged after": relabel(nets["full labels"], lookup),
                 "rare merged": nets["rare merged"]}
print(f"\n'other' = {' + '.join(RARE)}: {len(merged_names)} classes, scored on the merged validation labels:")
print(f"{'FCN-8s trained on':26s} {'pixel acc.':>10s} {'mean IU':>8s} {'kept mean IU':>12s} {'other IU':>8s} "
      f"{'3 px':>6s}")
merged_rows, per_class = {}, {}
for title, pred in merged_scores.items():
    s = SegmentationMetrics(len(merged_names)).update(pred, merged_truth).compute()
    per_class[title] = s["per_class_iou"]
    kept = np.nanmean(np.delete(s["per_class_iou"], other))
    merged_rows[title] = (s["pixel_accuracy"], s["mean_iou"], kept, s["per_class_iou"][other],
                          boundary_accuracy(pred, merged_truth, 3))
    print(f"{title:26s} " + " ".join(f"{v:>{w}.3f}" for v, w in zip(merged_rows[title], (10, 8, 12, 8, 6))))
print("per class IU, full labels merged after -> rare merged:")
for c, name in enumerate(merged_names):
    print(f"  {name:9s} {per_class['full labels, merged after'][c]:.3f} -> {per_class['rare merged'][c]:.3f}")
full = SegmentationMetrics(len(CLASSES)).update(nets["full labels"], truth)
rare = [NAMES.index(n) for n in RARE]
rare_iou = full.compute()["per_class_iou"][rare]
which = right_shape_rate(full.confusion, rare)
print(f"the detail given up: the full-label net's own IU of "
      f"{', '.join(f'{n} {v:.3f}' for n, v in zip(RARE, rare_iou))} (mean {np.nanmean(rare_iou):.3f}); of the rare "
      f"pixels it labels as some rare class it names the right one for {which:.3f}; the merged net cannot name any")

# --- Figures: one scene's ignored band; full against merged predictions --------------------------------
shown = list(range(4))
band_figure = plot_segmentations(
    val_set.images[shown], truth[shown],
    [("band ignored (black)", voc_truth[shown]), ("trained: full labels", nets["full labels"][shown]),
     ("trained: band ignored", nets["band ignored"][shown])],
    os.path.join(args.out, "13_ignored_band.png"),
    f"Four validation scenes: labels, the band VOC ignores, and two FCN-8s ({100 * on_band.mean():.0f}% of pixels in "
    "the band)")

palette = np.array([CLASSES[NAMES.index(n)].colour if n in NAMES else (150, 150, 150) for n in merged_names],
                   dtype=np.uint8)  # the kept classes in their colours, "other" grey
with_rare = [i for i in range(len(val_set)) if np.isin(truth[i], rare).sum() > 150][:4]
columns = [("image", [np.clip(val_set.images[i].transpose(1, 2, 0), 0, 1) for i in with_rare]),
           ("labels", [colourise(truth[i]) for i in with_rare]),
           ("trained: full labels", [colourise(nets["full labels"][i]) for i in with_rare]),
           ("labels, merged", [palette[merged_truth[i]] for i in with_rare]),
           ("full labels,\nmerged after", [palette[merged_scores["full labels, merged after"][i]] for i in with_rare]),
           ("trained: rare merged", [palette[nets["rare merged"][i]] for i in with_rare])]
fig, axes = plt.subplots(len(with_rare), len(columns), figsize=(1.9 * len(columns), 1.9 * len(with_rare) + 0.6),
                         squeeze=False)
for col, (title, pictures) in enumerate(columns):
    for row, picture in enumerate(pictures):
        axes[row, col].imshow(picture, interpolation="nearest")
        axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
    axes[0, col].set_title(title, fontsize=9)
fig.legend(handles=[Patch(facecolor=np.array(c.colour) / 255, edgecolor="black", label=c.name) for c in CLASSES]
           + [Patch(facecolor=palette[other] / 255, edgecolor="black", label="other (" + ", ".join(RARE) + ")")],
           loc="lower center", ncol=5, fontsize=8, frameon=False)
fig.suptitle(f"Validation scenes with {', '.join(RARE)}: all classes against 'other'", fontsize=10)
fig.tight_layout(rect=(0, 0.07, 1, 0.97))
merged_figure = os.path.join(args.out, "13_rare_merged.png")
fig.savefig(merged_figure, dpi=100)
plt.close(fig)
print(f"\nfigures: {tail_figure}, {band_figure}, {merged_figure}")

# --- Claims, as the slides state them, decided by the tables above ----------------------------------------
full_row, band_row = band_rows["full labels"], band_rows["band ignored"]
off_band = ~on_band
full_off = float((nets["full labels"][off_band] == truth[off_band]).mean())
# The slide says annotation is hardest where objects meet. The generator's labels are exact (it draws them),
# so annotators' trouble cannot be measured on these scenes; what can be is the other half of the slide's
# point, that the band is also where a segmentation net goes wrong:
print(f"claim: where objects meet, segmentation is hardest (the lecture adds: so is annotation, which these "
      f"exact, generated labels cannot show): the full-label net labels {full_row[5]:.3f} of the band's pixels "
      f"right and {full_off:.3f} of the others: {'yes' if full_row[5] < full_off else 'NO'}")
cost = full_row[4] - band_row[4]
shown_cost = f"{cost:.3f}".replace("-0.000", "0.000")  # (a cost that rounds to zero is printed without a sign)
print(f"claim: ignoring the boundary band ({100 * band_share:.1f}% of the training pixels unlabelled) costs little "
      f"accuracy away from boundaries: more than {FAR} px away {band_row[4]:.3f} vs {full_row[4]:.3f} with full "
      f"labels, a cost of {shown_cost} (little: under {LITTLE}): {'yes' if cost < LITTLE else 'NO'}")
voc_cost = full_row[6] - band_row[6]
# Two prices, measured and printed, but not claims of the slides (the lecture says why VOC ignores the band
# and why datasets merge classes, not that either is free):
print(f"measured: ignoring the boundary band in training costs mean IU, scored VOC's way (the band skipped in "
      f"validation too): {band_row[6]:.3f} vs {full_row[6]:.3f}, a cost of {voc_cost:.3f}")
plain_merged, trained_merged = merged_rows["full labels, merged after"], merged_rows["rare merged"]
print(f"measured: training on the merged labels, rather than merging a full-label net's predictions after, changes "
      f"the mean IU of the 7 classes from {plain_merged[1]:.3f} to {trained_merged[1]:.3f} "
      f"({trained_merged[1] - plain_merged[1]:+.3f})")
print(f"claim: marking the rare classes 'other' raises the mean IU a benchmark reports: the merged net on the 7 classes "
      f"{trained_merged[1]:.3f}, the full-label net on the 9 {full_row[1]:.3f}: "
      f"{'yes' if trained_merged[1] > full_row[1] else 'NO'}")
print(f"claim: 'other' trades detail for reliability: the merged net's 'other' scores IU {trained_merged[3]:.3f}, the "
      f"{len(RARE)} classes it replaces {np.nanmean(rare_iou):.3f} on their own (mean IU, full-label net): "
      f"{'yes' if trained_merged[3] > np.nanmean(rare_iou) else 'NO'}")
separate = np.nanmean(rare_iou)
print(f"(of that gain, {trained_merged[3] - separate:+.3f}, asking the coarser question gives "
      f"{plain_merged[3] - separate:+.3f}: the full-label net, its predictions merged after, scores 'other' "
      f"{plain_merged[3]:.3f}; training on the merged labels adds {trained_merged[3] - plain_merged[3]:+.3f})")
