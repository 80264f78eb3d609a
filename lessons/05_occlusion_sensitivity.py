"""Lesson 5: occlusion sensitivity — does the decision depend on the whole object?

Zeiler & Fergus slid a grey square over an image and watched the classifier: when the square
covers the object, the network gets the image wrong; when it covers the background, it does not.
So the network uses the object itself, not its surroundings.

For a segmentation network the same experiment asks a sharper question. Covering pixels of course
changes *those* pixels' labels; the test is what happens to the object's pixels that stay
visible. If the net labels a thing by its shape (in our data every thing has the same colour and
texture, lesson 7), hiding part of the outline should make it mislabel the rest of the object;
hiding only the surroundings should matter much less.

``inspect.occlusion_sensitivity(..., score="accuracy", exclude_covered=True)`` stamps an 8x8 square
of the mean colour at every position (stride 2: 841 positions on a 64x64 scene), runs the occluded
copies through FCN-8s in batches of 64, and returns, at each position, the drop in the share of the
object's *uncovered* pixels that are labelled right. We compare positions where the square covers part
of the object with positions where it covers only the context.

    python lessons/05_occlusion_sensitivity.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/inspect.py (occlusion_sensitivity), minisegnet/figures.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet.data import CLASSES, THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_occlusion  # noqa: E402
from minisegnet.inspect import occlusion_sensitivity  # noqa: E402
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 5: occlusion sensitivity", quick="a small network and two scenes, seconds")
started = time.perf_counter()
SIZE, STRIDE = 8, 2
COUNT = 2 if args.quick else 4
data = lesson_data(args)
model, _, training = trained_model("fcn8s", args, data)
print(f"FCN-8s ready ({training})")

# --- Pick objects the net gets right -----------------------------------------------------------------
# One object per scene: a thing of at least 60 px whose pixels the net labels right, the best first. A
# briefly trained net (--quick) may get no thing right; then it scores the best stuff regions, and says so.
images = normalise(data.val.images, data.mean, data.std)
predicted = predict(model, images, device=args.device).argmax(axis=1)
candidates = []
for index, labels in enumerate(data.val.labels):
    for c in range(len(CLASSES)):
        region = labels == c
        if region.sum() >= 60:
            candidates.append((c in THINGS, float((predicted[index][region] == c).mean()), index, c))
chosen, used = [], set()
for is_thing, correct, index, c in sorted(candidates, reverse=True):
    if index not in used and len(chosen) < COUNT and (is_thing and correct > 0.5 or not is_thing):
        chosen.append((index, c, data.val.labels[index] == c))
        used.add(index)
print(f"regions scored: {', '.join(CLASSES[c].name for _, c, _ in chosen)}")

# --- Occlude every position; score the uncovered pixels of the object ---------------------------------
print(f"\nshare of the object's uncovered pixels labelled right, and its drop when the {SIZE}x{SIZE} square sits")
print(f"{'scene':>5s} {'class':>9s} {'before':>7s} {'right at worst position':>23s} {'mean drop: square on object':>28s} "
      f"{'on context only':>16s} {'seconds':>8s}")
examples, timings, on_object_wins = [], [], 0
worst_case = None
for index, c, region in chosen:
    t0 = time.perf_counter()
    heat, before, positions = occlusion_sensitivity(model, images[index], c, size=SIZE, stride=STRIDE, fill=0.0,
                                                    region=region, device=args.device, score="accuracy",
                                                    exclude_covered=True)
    timings.append(time.perf_counter() - t0)
    # does the square at each position cover part of the object? (NaN: it covered all of it; none here)
    overlaps = np.array([region[t:t + SIZE, l:l + SIZE].any() for t, l in positions]).reshape(heat.shape)
    on_object, on_context = np.nanmean(heat[overlaps]), np.nanmean(heat[~overlaps])
    on_object_wins += bool(on_object > on_context)
    worst = float(np.nanmax(heat))
    if worst_case is None or worst > worst_case[2]:
        worst_case = (index, before, worst)
    print(f"{index:>5d} {CLASSES[c].name:>9s} {before:>7.2f} {before - worst:>23.2f} {on_object:>28.3f} "
          f"{on_context:>16.3f} {timings[-1]:>8.2f}")
    examples.append((data.val.images[index], data.val.labels[index], heat,
                     f"scene {index}: {CLASSES[c].name}, {before:.2f} of its pixels right"))

figure = plot_occlusion(examples, os.path.join(args.out, "05_occlusion_sensitivity.png"),
                        f"Occlusion sensitivity of FCN-8s ({SIZE}x{SIZE} square of the mean colour, stride {STRIDE})",
                        size=SIZE, heat_title="drop in the share of the uncovered\nobject pixels labelled right",
                        heat_label="accuracy drop", shared_scale=False)
print("(each heat map on its own colour scale: read the values on its colour bar)")
print(f"\none occlusion map ({len(positions)} positions, {len(positions) // 64 + 1} batches): "
      f"{np.mean(timings):.2f} s on average")
index, before, worst = worst_case
print(f"worst position: scene {index}, the uncovered pixels right {before:.2f} -> {before - worst:.2f}")
print(f"claim: covering part of the object mislabels the rest of it more than covering its context does, in "
      f"{on_object_wins}/{len(chosen)} scenes: {'yes' if chosen and on_object_wins == len(chosen) else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
