"""Lesson 10: skip connections (FCN-32s vs FCN-16s vs FCN-8s), the flagship lesson.

A convnet classifies well because it subsamples: by the fifth stage one score covers a 32x32
block of pixels, so FCN-32s (score the last stage, upsample x32) paints blobs. Long, Shelhamer &
Darrell's answer: fuse the coarse, semantic scores with scores from earlier, finer stages.
FCN-16s adds stage 4 (stride 16), FCN-8s also stage 3 (stride 8). Each fusion upsamples the
coarse scores x2 with a learnable transposed convolution that starts as bilinear interpolation,
crops them where they line up with the finer map, and adds (``functional.crop_and_add``; the
offset comes from the layers, ``functional.crop_offset``). The skip score layers start at zero,
so each net begins as FCN-32s and learns how much detail to take from the finer stage.

We train the three nets the same way on the "things and stuff" data and compare them with the
FCN paper's metrics and with accuracy near object boundaries, where resolution shows most.

    python lessons/10_skip_connections.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Trained models are cached in OUT/models/<name>/ and reused by a later run (and by later lessons).
Library code to read alongside: minisegnet/models.py (FCN), minisegnet/functional/fusion.py,
minisegnet/metrics.py, minisegnet/train.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

from minisegnet.data import CLASSES, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 10: FCN-32s vs FCN-16s vs FCN-8s", quick="a small run in seconds")

# --- Data and recipe: the lessons' shared ones (lessons/_lesson.py), the same for all three nets --
# 240 training / 60 validation scenes, 14 epochs (96 / 24 / 6 with --quick); plain cross-entropy
# (lesson 6 is about class weights); Adam with the poly schedule, batches of 4.
data = lesson_data(args)
train_set, val_set, mean, std, EPOCHS = data
NAMES = ("fcn32s", "fcn16s", "fcn8s")
BAND = 3  # boundary band half-width in pixels for the "trimap" accuracy
started = time.perf_counter()
print(f"data: {len(train_set)} training and {len(val_set)} validation scenes of 64x64, {len(CLASSES)} classes")

# --- Train (or reuse) each net, then evaluate on the validation scenes ---------------------------
results = {}
for name in NAMES:
    model, history, seconds = trained_model(name, args, data)
    scores = evaluate(model, val_set, device=args.device, mean=mean, std=std, boundary_width=BAND)
    results[name] = (model, scores, seconds, history[-1]["train_loss"])

print(f"\nvalidation, {EPOCHS} epochs each (the FCN paper's table, plus accuracy within {BAND} px of a boundary):")
print(f"{'':8s} {'pixel acc.':>10s} {'mean acc.':>10s} {'mean IU':>8s} {'f.w. IU':>8s} {'boundary acc.':>14s} "
      f"{'train loss':>10s} {'train s':>8s}")
for name, (_, s, seconds, loss) in results.items():
    print(f"{name:8s} {s['pixel_accuracy']:>10.3f} {s['mean_accuracy']:>10.3f} {s['mean_iou']:>8.3f} {s['fw_iou']:>8.3f} "
          f"{s['boundary_accuracy']:>14.3f} {loss:>10.3f} {seconds.seconds:>8.1f}")
print("(train s: the time the training took; " + "; ".join(f"{name} {t}" for name, (_, _, t, _) in results.items()) + ")")
print("\nper-class IU:")
print(f"{'':8s} " + " ".join(f"{c.name[:7]:>7s}" for c in CLASSES))
for name, (_, s, _, _) in results.items():
    print(f"{name:8s} " + " ".join(f"{v:>7.2f}" for v in s["per_class_iou"]))

# --- Figure: the same validation scenes through the three nets ----------------------------------
count = 5
images = val_set.images[:count]
predictions = [(f"{name} (mean IU {results[name][1]['mean_iou']:.2f})",
                predict(results[name][0], normalise(images, mean, std), device=args.device).argmax(axis=1))
               for name in NAMES]
figure = plot_segmentations(images, val_set.labels[:count], predictions,
                            os.path.join(args.out, "10_skip_connections.png"),
                            "Skip connections: FCN-32s paints coarse blobs; FCN-16s and FCN-8s follow boundaries\n"
                            "more closely (the shapes of things are still often wrong)")

b32, b8 = results["fcn32s"][1]["boundary_accuracy"], results["fcn8s"][1]["boundary_accuracy"]
m32, m8 = results["fcn32s"][1]["mean_iou"], results["fcn8s"][1]["mean_iou"]
print(f"\nclaim: FCN-8s beats FCN-32s near boundaries ({b8:.3f} vs {b32:.3f}) and in mean IU ({m8:.3f} vs {m32:.3f}): "
      f"{'yes' if b8 > b32 and m8 > m32 else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
