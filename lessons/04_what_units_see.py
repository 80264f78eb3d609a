"""Lesson 4: what units see — the top-activating patches of units in early and late layers.

Girshick et al. (R-CNN) looked inside a trained network by asking, for one unit: which image
regions make it fire hardest? Scan a dataset, keep the k largest activations of one channel of a
layer, and crop from each image the unit's receptive field (lesson 3) at the position where it
fired. Early units have small fields and fire on colours and edges; late units see most of an
object and fire on what the network was trained to find.

We take the FCN-8s the flagship lesson trains (reused from OUT/models/, trained here if missing),
scan the validation scenes for every channel of stages 1, 3 and 5 (r = 6, 36 and 124 px: the
last sees the whole 64-px scene), and check the claim behind the crops: a unit's value depends on
its receptive field only, so recomputing it from an image where everything outside the field is
blanked out gives the same number.

    python lessons/04_what_units_see.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/inspect.py (top_activating_patches, receptive_field,
unit_box), minisegnet/figures.py (plot_top_patches).
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import no_grad, tensor  # noqa: E402
from minisegnet.data import THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_top_patches  # noqa: E402
from minisegnet.inspect import clip_box, receptive_field, top_activating_patches, unit_box  # noqa: E402

args = lesson_arguments("Lesson 4: top-activating patches", quick="a small network, seconds")
started = time.perf_counter()
K = 9
data = lesson_data(args)
model, _, training = trained_model("fcn8s", args, data)
model.eval()  # (no dropout or batch norm here; eval() is the habit)
print(f"FCN-8s ready ({training})")

# The images we scan: the validation scenes, raw (the crops are drawn from these). The network
# sees them normalised, so the activation function normalises first.
images = data.val.images
labels = data.val.labels


def stage_activation(stage):
    def activation_fn(x):
        return model.backbone(tensor(normalise(x.numpy(), data.mean, data.std), device=args.device))[stage]
    return activation_fn


def centre_class(index, y, x, row):
    """The ground-truth class under the centre of unit (y, x)'s receptive field."""
    cy = min(max(y * row.jump - row.effective_padding + row.size // 2, 0), labels.shape[1] - 1)
    cx = min(max(x * row.jump - row.effective_padding + row.size // 2, 0), labels.shape[2] - 1)
    return labels[index, cy, cx]


def value_from_field_only(fn, channel, index, y, x, row, shrink=0):
    """The unit's activation recomputed with every pixel outside its receptive field (made ``shrink``
    pixels smaller on each side) set to the mean colour (which normalises to zero)."""
    top, bottom, left, right = clip_box(unit_box(row, y, x), images.shape[2], images.shape[3])
    top, bottom, left, right = top + shrink, bottom - shrink, left + shrink, right - shrink
    blank = np.broadcast_to(np.asarray(data.mean, dtype=images.dtype)[:, None, None], images.shape[1:]).copy()
    blank[:, top:bottom + 1, left:right + 1] = images[index, :, top:bottom + 1, left:right + 1]
    with no_grad():
        return float(fn(tensor(blank[None])).numpy()[0, channel, y, x])


figure_rows, worst, smaller = [], 0.0, 0.0
print(f"\n{'layer':8s} {'r (px)':>7s} {'channels':>9s} {'top-9 on one class':>19s} {'top-9 on things':>16s}")
for stage in (0, 2, 4):
    row = receptive_field(model.backbone.stage_layers(stage))[-1]
    fn = stage_activation(stage)
    channels = fn(tensor(images[:1])).shape[1] if not args.quick else 6  # --quick: the first few only
    purity, things, tops = [], [], []
    for channel in range(channels):
        results = top_activating_patches(fn, images, channel, row, k=K, batch_size=32)
        classes = np.array([centre_class(i, y, x, row) for _, i, (y, x), _ in results])
        purity.append(np.bincount(classes).max() / K)
        things.append(np.isin(classes, THINGS).mean())
        tops.append(results)
        value, index, (y, x), _ = results[0]
        worst = max(worst, abs(value_from_field_only(fn, channel, index, y, x, row) - value))
        if stage < 4:  # (stage 5's field is bigger than the image: there is nothing outside it)
            smaller = max(smaller, abs(value_from_field_only(fn, channel, index, y, x, row, shrink=1) - value))
    print(f"stage {stage + 1:<2d} {row.size:>7d} {channels:>9d} {np.mean(purity):>19.2f} {np.mean(things):>16.2f}")
    # the figure: the channel most devoted to things and the purest stuff channel
    thing_unit = int(np.argmax(things))
    stuff_unit = int(np.argmax(np.where(np.array(things) == 0, purity, -1)))
    for channel in (thing_unit, stuff_unit):
        figure_rows.append((f"stage {stage + 1}, ch {channel}\nr = {row.size} px\n{100 * things[channel]:.0f}% on things",
                            tops[channel]))

figure = plot_top_patches(figure_rows, os.path.join(args.out, "04_what_units_see.png"),
                          f"Top-{K} patches of FCN-8s units: each crop is the unit's receptive field where it fired "
                          "(grey = outside the image)")
print(f"\nthing pixels in the validation scenes: {100 * np.isin(labels, THINGS).mean():.0f}%")
print(f"claim: a unit recomputed from its receptive field alone gives the same value (worst difference over "
      f"{len(figure_rows) // 2} layers' top units {worst:.1e}; a field one pixel smaller changes them by up to "
      f"{smaller:.2f}): {'yes' if worst < 1e-4 < smaller else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
