"""Lesson 8: FCN-32s and the resolution issue.

A classification convnet becomes a segmentation network by convolutionalising it: its last layer
scores every position of the last feature map instead of the whole image. But five 2x2 poolings
later, one score covers a 32x32 block of pixels: a 64x64 scene gets a 2x2 grid of class scores.
FCN-32s upsamples that grid x32 (bilinear) and takes the best class per pixel. Interiors of large
regions come out right; boundaries are blobs and small objects vanish.

We look at the 2x2 score grid itself, then measure the resolution issue: pixel accuracy against
the distance to the nearest true boundary (``metrics.boundary_distance``; a pixel at distance d
lies in the d-px trimap band of DeepLab's evaluation), for FCN-32s (stride 32) and for FCN-8s
(stride 8, lesson 10's skip connections), the two reused from OUT/models/ or trained here.

Two things would muddle a single curve. Pixels next to a boundary are often pixels of things
(small objects: every thing pixel is within a few px of a boundary), pixels far from one are all
stuff (sky, grass, water, brick), and things are harder. So stuff and things get curves of their
own, and at each distance the two nets are scored on the same pixels. The lesson's two claims are
the slide's two symptoms: within stuff, accuracy falls towards boundaries more for FCN-32s than for
FCN-8s; and things, smaller than one 32-px block, are lost whole (FCN-32s labels fewer thing pixels
right than FCN-8s at every distance from their boundary).

    python lessons/08_fcn32s_resolution.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (FCN, _upsample_to), minisegnet/metrics.py
(boundary_distance, accuracy_by_boundary_distance).
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import no_grad, tensor  # noqa: E402
from minisegnet.data import CLASSES, STUFF, THINGS, colourise, normalise  # noqa: E402
from minisegnet.figures import plot_accuracy_by_distance  # noqa: E402
from minisegnet.metrics import accuracy_by_boundary_distance, painted_at_stride  # noqa: E402
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 8: FCN-32s and the resolution issue", quick="smaller, shorter-trained nets, seconds")
started = time.perf_counter()
data = lesson_data(args)
NETS = {"fcn32s": "FCN-32s", "fcn8s": "FCN-8s"}
models = {}
for name, title in NETS.items():
    models[name], _, training = trained_model(name, args, data)
    print(f"{title} ready ({training})")

# --- The coarse score grid: one class score vector per 32x32 block ------------------------------------
images = normalise(data.val.images, data.mean, data.std)
fcn32s = models["fcn32s"]
fcn32s.eval()
with no_grad():
    coarse = fcn32s.score(fcn32s.backbone(tensor(images[:2], device=args.device))[4]).numpy()
print(f"input 64x64 -> stage-5 score map {coarse.shape[2]}x{coarse.shape[3]} ({coarse.shape[1]} classes), "
      "upsampled x32 and cropped back to 64x64")

# --- Accuracy against the distance to the nearest boundary, stuff and things apart -------------------
labels = data.val.labels
predictions = {name: predict(model, images, device=args.device).argmax(axis=1) for name, model in models.items()}
EDGES = (1, 2, 4, 8, 16)  # bands 1, 2, 3-4, 5-8, 9-16 and > 16 px
BANDS = ["1", "2", "3-4", "5-8", "9-16", "> 16"]
GROUPS = {"stuff": STUFF, "things": THINGS}
curves = {group: {name: accuracy_by_boundary_distance(predictions[name], labels, EDGES, classes=classes)
                  for name in NETS} for group, classes in GROUPS.items()}  # (pixels, accuracy) per band
print(f"\npixel accuracy by distance to the nearest true boundary, {len(labels)} validation scenes "
      "(both nets scored on the same pixels):")
print(f"{'distance (px)':>13s} | {'stuff px':>8s} {'FCN-32s':>8s} {'FCN-8s':>8s} | {'thing px':>8s} {'FCN-32s':>8s} "
      f"{'FCN-8s':>8s}")
for k, band in enumerate(BANDS):
    cells = []
    for group in GROUPS:
        pixels = curves[group]["fcn32s"][0][k]
        cells.append(f"{pixels:>8d} " + " ".join(f"{curves[group][name][1][k]:>8.3f}" for name in NETS))
    print(f"{band:>13s} | " + " | ".join(cells))

# --- The claim, measured: how far does each net's accuracy fall from the interior to the boundary? ---
# near: within 2 px of a boundary; far: more than 4 px away (the 5-8 px band is the deepest that
# holds enough thing pixels). The fall is far minus near, per net, within stuff and within things.
NEAR, FAR = 2, 4
print(f"\nwithin {NEAR} px (near) vs more than {FAR} px (far) from a boundary:")
print(f"{'':7s} {'net':>8s} {'near px':>8s} {'near':>6s} {'far px':>8s} {'far':>6s} {'fall':>6s}")
fall = {}
for group, classes in GROUPS.items():
    for name, title in NETS.items():
        (near_px, _, far_px), (near, _, far) = accuracy_by_boundary_distance(
            predictions[name], labels, (NEAR, FAR), classes=classes)
        fall[group, name] = far - near
        print(f"{group:7s} {title:>8s} {near_px:>8d} {near:>6.3f} {far_px:>8d} {far:>6.3f} {far - near:>6.3f}")
# Within things, a net that labels almost no thing pixel right has no accuracy to lose near their
# boundaries: its fall is small because it misses the objects outright, not because it draws them sharply.
# So the things' claim below is that: how many thing pixels each net labels right.
right = {name: np.nansum(curves["things"][name][0] * curves["things"][name][1]) / curves["things"][name][0].sum()
         for name in NETS}
print("thing pixels labelled right, all distances: " + ", ".join(f"{NETS[name]} {right[name]:.1%}" for name in NETS))

# --- Figure: the 2x2 grid, its x32 upsampling, FCN-8s; accuracy against distance, stuff and things ----
scenes = [[(data.val.images[i].transpose(1, 2, 0), "image"), (colourise(labels[i]), "ground truth"),
           (colourise(coarse[i].argmax(axis=0)), f"FCN-32s: {coarse.shape[2]}x{coarse.shape[3]} score grid (argmax)"),
           (colourise(predictions["fcn32s"][i]), "FCN-32s: grid upsampled x32"),
           (colourise(predictions["fcn8s"][i]), "FCN-8s")] for i in range(2)]
panels = [(f"{group.rstrip('s')} pixels", [(NETS[name], curves[group][name][1]) for name in NETS],
           curves[group]["fcn32s"][0]) for group in GROUPS]
figure = plot_accuracy_by_distance(
    scenes, BANDS, panels, os.path.join(args.out, "08_fcn32s_resolution.png"),
    f"Two validation scenes through FCN-32s (stride 32) and FCN-8s (stride 8); below, over all {len(labels)}:\n"
    "pixel accuracy by distance to the nearest true boundary, stuff pixels and thing pixels apart")

# Within stuff the slide's claim is the fall towards boundaries. Within things it is that small objects
# vanish: a thing (19-28 px) is smaller than one 32-px block of FCN-32s's grid, so its score is outvoted
# by the stuff around it, and the thing is lost whole, near its boundary and far from it alike.
stuff_fall = fall["stuff", "fcn32s"] > fall["stuff", "fcn8s"]
thing_bands = [k for k in range(len(BANDS)) if curves["things"]["fcn32s"][0][k] > 0]
lost_everywhere = all(curves["things"]["fcn32s"][1][k] < curves["things"]["fcn8s"][1][k] for k in thing_bands)
print(f"\nclaim: FCN-32s's accuracy falls more than FCN-8s's from more than {FAR} px to within {NEAR} px of a "
      f"boundary, within stuff ({fall['stuff', 'fcn32s']:.3f} vs {fall['stuff', 'fcn8s']:.3f}): "
      f"{'yes' if stuff_fall else 'NO'}")
# Is that the stride or the training? The ground truth itself, painted at stride 32 (metrics.painted_at_stride:
# the best any stride-32 net could label), loses the things too.
oracle = painted_at_stride(labels, len(CLASSES), 32).argmax(axis=1)
things = np.isin(labels, THINGS)
oracle_right = float((oracle[things] == labels[things]).mean())
print(f"claim: FCN-32s loses the small objects: fewer thing pixels right than FCN-8s ({right['fcn32s']:.1%} vs "
      f"{right['fcn8s']:.1%}), in every distance band that holds thing pixels: "
      f"{'yes' if right['fcn32s'] < right['fcn8s'] and lost_everywhere else 'NO'}")
print(f"(the stride, not the training: the ground truth itself painted at stride 32 labels {oracle_right:.1%} of the "
      f"thing pixels right, where FCN-8s gets {right['fcn8s']:.1%})")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
