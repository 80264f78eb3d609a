"""Lesson 5: occlusion sensitivity — which pixels does the decision depend on?

Zeiler & Fergus slid a grey square over an image and watched the probability of the correct
class: where covering the image makes that probability drop, the network was looking. For a
segmentation network we score a region of the output: the mean probability of an object's class
over that object's pixels. ``inspect.occlusion_sensitivity`` stamps the square at every position
(here 8x8 px, stride 2: 841 positions on a 64x64 scene), runs the occluded copies through the
network in batches of 64, and returns the drop at each position.

If the network recognises a thing by its shape, the drop should be largest when the square
covers the object, and small far from it.

    python lessons/05_occlusion_sensitivity.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/inspect.py (occlusion_sensitivity), minisegnet/figures.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import functional as F, tensor  # noqa: E402
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

# --- Pick scenes where the net finds an object ------------------------------------------------------
images = normalise(data.val.images, data.mean, data.std)
probabilities = F.softmax(tensor(predict(model, images, device=args.device)), axis=1).numpy()
candidates = []
for index, labels in enumerate(data.val.labels):
    for c in range(len(CLASSES)):
        region = labels == c
        if region.sum() >= 60:
            candidates.append((c in THINGS, float(probabilities[index, c][region].mean()), index, c))
# things the net is surest of first; a briefly trained net (--quick) may find none, then stuff regions
chosen, used = [], set()
for is_thing, confidence, index, c in sorted(candidates, reverse=True):
    if index not in used and len(chosen) < COUNT and (is_thing and confidence > 0.5 or not is_thing):
        chosen.append((index, c, data.val.labels[index] == c))
        used.add(index)
print(f"regions scored: {', '.join(CLASSES[c].name for _, c, _ in chosen)}")

# --- Occlude every position, in batches; measure where the drop is ----------------------------------
print(f"\n{'scene':>5s} {'class':>9s} {'P before':>9s} {'max drop':>9s} {'mean drop: on object':>21s} "
      f"{'away from it':>13s} {'seconds':>8s}")
examples, hits, timings = [], 0, []
for index, c, region in chosen:
    t0 = time.perf_counter()
    heat, baseline, positions = occlusion_sensitivity(model, images[index], c, size=SIZE, stride=STRIDE,
                                                      fill=0.0, region=region, device=args.device)
    timings.append(time.perf_counter() - t0)
    # does the occluder at each position overlap the object at all?
    overlaps = np.array([region[t:t + SIZE, l:l + SIZE].any() for t, l in positions]).reshape(heat.shape)
    best = np.unravel_index(np.argmax(heat), heat.shape)
    hits += bool(overlaps[best])
    print(f"{index:>5d} {CLASSES[c].name:>9s} {baseline:>9.2f} {heat.max():>9.2f} {heat[overlaps].mean():>21.3f} "
          f"{heat[~overlaps].mean():>13.3f} {timings[-1]:>8.2f}")
    examples.append((data.val.images[index], data.val.labels[index], heat,
                     f"scene {index}: {CLASSES[c].name}, P = {baseline:.2f}"))

figure = plot_occlusion(examples, os.path.join(args.out, "05_occlusion_sensitivity.png"),
                        f"Occlusion sensitivity of FCN-8s ({SIZE}x{SIZE} square of the mean colour, stride {STRIDE}; "
                        "score: P(class) over the region)", size=SIZE)
print(f"\none occlusion map ({len(positions)} positions, {len(positions) // 64 + 1} batches): "
      f"{np.mean(timings):.2f} s on average")
print(f"claim: the largest drop is where the square covers the scored region in {hits}/{len(chosen)} scenes: "
      f"{'yes' if chosen and hits == len(chosen) else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
