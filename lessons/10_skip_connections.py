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
FCN paper's metrics and with accuracy near object boundaries, where resolution shows most, and
ask whether they name the right shape of each thing. Then the lecture's red arrows: a skip is
also a short path for the gradient, straight from the loss into stages 3 and 4. We measure the
gradient that reaches each stage's weights with the skips open and with them blocked
(``FCN.forward(skip_gradients=False)``: the same scores, but no gradient flows back through a skip);
their difference is exactly what the skips deliver.

    python lessons/10_skip_connections.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Trained models are cached in OUT/models/<name>/ and reused by a later run (and by later lessons).
Library code to read alongside: minisegnet/models.py (FCN), minisegnet/functional/fusion.py,
minisegnet/metrics.py, minisegnet/train.py.
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import functional as F, tensor  # noqa: E402
from minisegnet.data import CLASSES, THINGS, normalise  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.metrics import SegmentationMetrics, boundary_accuracy, painted_at_stride, right_shape_rate  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 10: FCN-32s vs FCN-16s vs FCN-8s", quick="a small run in seconds")

# --- Data and recipe: the lessons' shared ones (lessons/_lesson.py), the same for all three nets --
# 1200 training / 60 validation scenes, 8 epochs (96 / 24 / 6 with --quick); plain cross-entropy
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
print("(right shape: of the thing pixels labelled as some thing, the share labelled the right thing; chance 1/5)")
print(f"{'':8s} {'pixel acc.':>10s} {'mean acc.':>10s} {'mean IU':>8s} {'f.w. IU':>8s} {'boundary acc.':>14s} "
      f"{'right shape':>11s} {'train loss':>10s} {'train s':>8s}")
for name, (_, s, seconds, loss) in results.items():
    shape = right_shape_rate(s["confusion"], THINGS)
    print(f"{name:8s} {s['pixel_accuracy']:>10.3f} {s['mean_accuracy']:>10.3f} {s['mean_iou']:>8.3f} {s['fw_iou']:>8.3f} "
          f"{s['boundary_accuracy']:>14.3f} {shape:>11.3f} {loss:>10.3f} {seconds.seconds:>8.1f}")
print("(train s: the time the training took; " + "; ".join(f"{name} {t}" for name, (_, _, t, _) in results.items()) + ")")
print("\nper-class IU:")
print(f"{'':8s} " + " ".join(f"{c.name[:7]:>7s}" for c in CLASSES))
for name, (_, s, _, _) in results.items():
    print(f"{name:8s} " + " ".join(f"{v:>7.2f}" for v in s["per_class_iou"]))

# --- What resolution alone allows: the ground truth itself, painted at each net's stride -------------
# metrics.painted_at_stride: the truth as one-hot maps, averaged over s x s blocks (what one score cell can
# hold) and upsampled back bilinearly x s, as the nets upsample their scores: the best a net that knew every
# answer could score if it painted at stride s. The gap between a net and this ceiling is learning.
print("\nthe ground truth painted at each stride (the ceiling of resolution alone) vs the net of that stride:")
print(f"{'stride':>6s} {'ceiling mean IU':>16s} {'net':>8s} {'ceiling boundary acc.':>22s} {'net':>8s}")
for name, stride in (("fcn32s", 32), ("fcn16s", 16), ("fcn8s", 8)):
    painted = painted_at_stride(val_set.labels, len(CLASSES), stride)
    ceiling = SegmentationMetrics(len(CLASSES)).update(painted, val_set.labels).compute()["mean_iou"]
    ceiling_band = boundary_accuracy(painted, val_set.labels, BAND)
    net = results[name][1]
    print(f"{stride:>6d} {ceiling:>16.3f} {net['mean_iou']:>8.3f} {ceiling_band:>22.3f} {net['boundary_accuracy']:>8.3f}")

# --- The red arrows: the gradient each stage of FCN-8s receives, with the skips open and blocked ----
def stage_gradients(model, images, labels, skip_gradients):
    """The loss gradient on each backbone stage's weights, for one batch: one flat vector per stage."""
    model.zero_grad()
    scores = model(tensor(images, device=args.device), skip_gradients=skip_gradients)
    F.cross_entropy(scores, labels).backward()
    return [np.concatenate([p.grad.ravel() for p in stage.parameters()]) for stage in model.backbone.stages]


fcn8s = results["fcn8s"][0]
batch = normalise(val_set.images[:16], mean, std)
open_ = stage_gradients(fcn8s, batch, val_set.labels[:16], skip_gradients=True)
blocked = stage_gradients(fcn8s, batch, val_set.labels[:16], skip_gradients=False)  # the deep path alone
fcn8s.zero_grad()
# The scores are the same either way, so the difference is exactly what arrives through the skips.
through_skips = [a - b for a, b in zip(open_, blocked)]
print("\ngradient on each stage's weights of FCN-8s (16 validation scenes): norms through the deep path alone "
      "(skips blocked) and through the skips (open minus blocked):")
print(f"{'stage':>5s} {'deep path':>10s} {'skips':>10s} {'ratio':>7s}")
ratio = []
for k, (deep, skip) in enumerate(zip(blocked, through_skips)):
    ratio.append(np.linalg.norm(skip) / np.linalg.norm(deep))
    print(f"{k + 1:>5d} {np.linalg.norm(deep):>10.4f} {np.linalg.norm(skip):>10.4f} {ratio[-1]:>7.2f}")

# --- Figure: the same validation scenes through the three nets ----------------------------------
count = 5
images = val_set.images[:count]
predictions = [(f"{name} (mean IU {results[name][1]['mean_iou']:.2f})",
                predict(results[name][0], normalise(images, mean, std), device=args.device).argmax(axis=1))
               for name in NAMES]
figure = plot_segmentations(images, val_set.labels[:count], predictions,
                            os.path.join(args.out, "10_skip_connections.png"),
                            "Five validation scenes through FCN-32s, FCN-16s and FCN-8s, trained the same way")

b32, b8 = results["fcn32s"][1]["boundary_accuracy"], results["fcn8s"][1]["boundary_accuracy"]
m32, m8 = results["fcn32s"][1]["mean_iou"], results["fcn8s"][1]["mean_iou"]
print(f"\nclaim: FCN-8s beats FCN-32s near boundaries ({b8:.3f} vs {b32:.3f}) and in mean IU ({m8:.3f} vs {m32:.3f}): "
      f"{'yes' if b8 > b32 and m8 > m32 else 'NO'}")
# (right shape is NaN for a net that labels no thing pixel as any thing: it never names a shape, right or wrong)
shape32, shape8 = (right_shape_rate(results[n][1]["confusion"], THINGS) for n in ("fcn32s", "fcn8s"))
named32 = "it labels no thing pixel as a thing" if np.isnan(shape32) else f"{shape32:.3f}"
print(f"claim: FCN-8s names the right shape of a thing more often than FCN-32s ({shape8:.3f} vs {named32}): "
      f"{'yes' if shape8 > (0 if np.isnan(shape32) else shape32) else 'NO'}")
# stage 5 feeds no skip: nothing arrives there but through the deep path (exactly 0, not just small)
# (how much depends on how strongly training weighted each skip: the ratio varies from net to net)
print(f"claim: the skips carry gradient straight into the stages they read, {ratio[2]:.2f}x (stage 3) and "
      f"{ratio[3]:.2f}x (stage 4) what arrives through the deep path, and nothing into stage 5 ({ratio[4]:.2f}x): "
      f"{'yes' if min(ratio[2], ratio[3]) > 0 and ratio[4] == 0 else 'NO'}")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
