"""Lesson 12: putting it together — DeepLab's dilated network and a fully connected CRF.

DeepLab (Chen et al. 2015) combines the two answers to the resolution problem: a dilated network
(lesson 11) keeps stride 8, and a fully connected CRF (Krähenbühl & Koltun 2011) snaps the
remaining blur to the image's edges: every pixel is linked to every other, pulled towards the
labels of pixels that are near *and* of similar colour (appearance kernel) and of pixels that are
very near (smoothness kernel). ``minisegnet.crf.dense_crf`` runs 10 mean-field iterations; each
is two Gaussian filterings over all pixels, done in O(N) on a permutohedral lattice
(``kernels/crf/``; the exact N^2 version is the reference the tests hold it to).

We take lesson 11's dilated net (reused from OUT/models/, trained here if missing), run the CRF
with the library's defaults (``crf.DEFAULTS``) on its softmax output, and compare before and after.

    python lessons/12_deeplab_crf.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/crf.py, kernels/crf/, minisegnet/models.py (DilatedFCN).
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import crf, functional as F, tensor  # noqa: E402
from minisegnet.backend import to_device  # noqa: E402
from minisegnet.data import CLASSES, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.metrics import SegmentationMetrics, boundary_accuracy  # noqa: E402
from minisegnet.train import predict  # noqa: E402

args = lesson_arguments("Lesson 12: DeepLab (dilated net + fully connected CRF)", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
model, _, training = trained_model("dilated", args, data)
print(f"dilated net ready ({training})")
print("CRF parameters: " + ", ".join(f"{k} = {v:g}" for k, v in crf.DEFAULTS.items()))

# --- The network's probabilities, then the CRF on each scene -----------------------------------------
images, labels = data.val.images, data.val.labels
scores = predict(model, normalise(images, data.mean, data.std), device=args.device)
probabilities = F.softmax(tensor(scores), axis=1).numpy()
t0 = time.perf_counter()
refined = np.stack([to_device(crf.dense_crf(to_device(p, args.device), to_device(i, args.device)), "cpu")
                    for p, i in zip(probabilities, images)])
crf_seconds = (time.perf_counter() - t0) / len(images)


def measure(probs):
    metrics = SegmentationMetrics(len(CLASSES))
    metrics.update(probs.argmax(axis=1), labels)
    s = metrics.compute()
    return s, {w: boundary_accuracy(probs, labels, w) for w in (1, 3, 5)}


before, after = measure(probabilities), measure(refined)
print(f"\nvalidation, {len(images)} scenes ({crf_seconds * 1000:.0f} ms of CRF per 64x64 scene):")
print(f"{'':18s} {'pixel acc.':>10s} {'mean acc.':>10s} {'mean IU':>8s} {'f.w. IU':>8s} "
      + " ".join(f"{'boundary ' + str(w) + 'px':>12s}" for w in (1, 3, 5)))
for title, (s, b) in (("dilated net", before), ("dilated net + CRF", after)):
    print(f"{title:18s} {s['pixel_accuracy']:>10.3f} {s['mean_accuracy']:>10.3f} {s['mean_iou']:>8.3f} "
          f"{s['fw_iou']:>8.3f} " + " ".join(f"{b[w]:>12.3f}" for w in (1, 3, 5)))
print("per-class IU before -> after: " + ", ".join(
    f"{c.name} {before[0]['per_class_iou'][i]:.2f}->{after[0]['per_class_iou'][i]:.2f}" for i, c in enumerate(CLASSES)))

count = 5
figure = plot_segmentations(images[:count], labels[:count],
                            [(f"dilated net\nmean IU {before[0]['mean_iou']:.2f}", probabilities[:count].argmax(axis=1)),
                             (f"+ CRF\nmean IU {after[0]['mean_iou']:.2f}", refined[:count].argmax(axis=1))],
                            os.path.join(args.out, "12_deeplab_crf.png"),
                            "DeepLab: the fully connected CRF pulls labels to the image's edges")
b3, a3 = before[1][3], after[1][3]
print(f"\nclaim: the CRF improves accuracy within 3 px of boundaries ({b3:.3f} -> {a3:.3f}) and mean IU "
      f"({before[0]['mean_iou']:.3f} -> {after[0]['mean_iou']:.3f}): "
      f"{'yes' if a3 > b3 and after[0]['mean_iou'] > before[0]['mean_iou'] else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
