"""Lesson 11: dilated convolution — a large receptive field without subsampling, and its price.

Subsampling buys a network its large receptive field (lesson 3) and costs it resolution
(lesson 8). The lecture weighs three ways out:

* remove the subsampling: the maps keep their size, but each unit then "looks at only a small
  window" (``models.NoPoolingNet``: every pooling removed, no dilation: stride 1, r = 19 px);
* use a shallower network, whose coarsest map is still fine: "not very semantic"
  (``models.ShallowFCN(stages=2)``: stages 1-2 only, stride 4, r = 16 px, less than a thing's
  19-28 px; with three stages, r = 36 px, it sees whole things on these scenes and names their shape
  almost as well as FCN-8s, so the two-stage net is the control that shows the warning);
* dilate: a 3x3 convolution with dilation d reads a (2d+1)x(2d+1) window with holes (lesson 2),
  so the field grows as fast as pooling would make it grow while the map keeps its size.
  DeepLab's recipe, ``models.DilatedFCN``: drop the pooling after stages 3 and 4 and dilate the
  convolutions of stages 4 and 5 by 2 and 4; the output stride stays 8 instead of 32.

"Not a panacea": every map after stage 3 now stays at 1/8 of the image, and a training step keeps
those maps for its backward pass. We measure that memory directly: the bytes of every array the
graph of one training step saved (``engine.saved_bytes``), not just the stage outputs.

The five nets are trained with the lessons' recipe on the lessons' 64x64 scenes (reused from
OUT/models/ when cached): the two controls, FCN-32s (the same backbone subsampled to stride 32),
FCN-8s (stride 8 reached through skip connections instead, lesson 10: the reference the controls are
held to) and the dilated net. "Semantic" is measured as the right-shape rate: of the thing pixels a
net labels as some thing, the share it labels the right thing (chance 1/5).

    python lessons/11_dilated_convolution.py [--quick] [--device cpu|cuda] [--out DIR] [--seed S]

Library code to read alongside: minisegnet/models.py (DilatedFCN, NoPoolingNet, ShallowFCN),
minisegnet/inspect.py (receptive_field), minisegnet/engine.py (saved_bytes).
"""
import os
import time

from _lesson import lesson_arguments, lesson_data, trained_model  # first: command line, output folder, off-screen figures

import numpy as np  # noqa: E402

from minisegnet import functional as F, tensor  # noqa: E402
from minisegnet.data import THINGS, normalise  # noqa: E402
from minisegnet.engine import saved_bytes  # noqa: E402
from minisegnet.figures import plot_segmentations  # noqa: E402
from minisegnet.inspect import receptive_field  # noqa: E402
from minisegnet.metrics import right_shape_rate  # noqa: E402
from minisegnet.models import build_model  # noqa: E402
from minisegnet.train import evaluate, predict  # noqa: E402

args = lesson_arguments("Lesson 11: dilated convolution", quick="small runs, seconds")
started = time.perf_counter()
data = lesson_data(args)
NETS = {"nopool": "no pooling, no dilation", "shallow2": "shallow (stages 1-2)", "fcn32s": "FCN-32s",
        "fcn8s": "FCN-8s (skips)", "dilated": "dilated (DeepLab)"}
trained = {name: trained_model(name, args, data) for name in NETS}
models = {name: model for name, (model, _, _) in trained.items()}
print(f"data: {len(data.train)} training and {len(data.val)} validation scenes of 64x64; "
      + "; ".join(f"{name} {training}" for name, (_, _, training) in trained.items()))


def field_and_stride(model):
    """(r, S): the largest receptive field over the net's score branches and the finest output stride."""
    rows = [receptive_field(layers)[-1] for layers in model.receptive_field_branches().values()]
    return max(row.size for row in rows), min(row.jump for row in rows)


def activation_bytes(model, size):
    """(all, stages 4-5) in MiB: the arrays a training step on one size x size image keeps for its
    backward pass (activations and the loss's; parameters and the input not counted), and the part
    of them that stages 4 and 5 add: the stages whose maps the dilated net keeps at stride 8."""
    x = tensor(np.zeros((1, 3, size, size), dtype=np.float32), device=args.device)
    labels = np.zeros((1, size, size), dtype=np.int64)
    total = saved_bytes(F.cross_entropy(model(x), labels))[0]
    stages = model.backbone(x)
    if len(stages) < 5:  # the shallow control has no stages 4 and 5
        return total / 2 ** 20, 0.0
    late = saved_bytes(stages[4].sum())[0] - saved_bytes(stages[2].sum())[0]
    return total / 2 ** 20, late / 2 ** 20


# --- 1. What each net sees, how accurate it is, and what it costs -----------------------------------
SIZE = 256  # memory is measured at a photo-like size; the lesson's scenes are 64x64
print(f"\nvalidation ({len(data.val)} scenes of 64x64) after the lessons' recipe; r: receptive field, S: output stride;")
print(f"memory: what a training step on one {SIZE}x{SIZE} image keeps for backward, in all and in stages 4-5")
print(f"{'':26s} {'r px':>5s} {'S':>3s} {'mean IU':>8s} {'things IU':>9s} {'right shape':>11s} {'boundary acc.':>13s} "
      f"{'MiB':>7s} {'stages 4-5':>11s}")
rows = {}
for name, title in NETS.items():
    model = models[name]
    s = evaluate(model, data.val, device=args.device, mean=data.mean, std=data.std, boundary_width=3)
    r, stride = field_and_stride(model)
    things = float(np.nanmean(s["per_class_iou"][list(THINGS)]))
    total, late = activation_bytes(model, SIZE)
    shape = right_shape_rate(s["confusion"], THINGS)
    rows[name] = dict(r=r, stride=stride, miou=s["mean_iou"], things=things, shape=shape,
                      boundary=s["boundary_accuracy"], mib=total, late=late)
    print(f"{title:26s} {r:>5d} {stride:>3d} {s['mean_iou']:>8.3f} {things:>9.3f} {shape:>11.3f} "
          f"{s['boundary_accuracy']:>13.3f} {total:>7.2f} {late:>11.2f}")

# The lesson's backbone is narrow (16 to 128 channels), so its full-resolution first stages hold most of
# the memory. VGG-16's widths and depths (DeepLab's backbone: 64 to 512 channels) put far more channels
# in the late stages. Memory does not depend on the weights, so untrained nets of that size will do.
VGG16 = dict(widths=(64, 128, 256, 512, 512), depths=(2, 2, 3, 3, 3))
print(f"\nthe same measurement with VGG-16's widths and depths (untrained), one {SIZE}x{SIZE} image:")
vgg = {name: activation_bytes(build_model(name, 9, **VGG16).to(args.device), SIZE) for name in ("fcn8s", "dilated")}
for name in vgg:
    print(f"{NETS[name]:26s} {vgg[name][0]:>7.1f} MiB in all, {vgg[name][1]:>6.1f} MiB in stages 4-5")

# --- Figure: the same validation scenes through the five nets ----------------------------------------
count = 5
images = data.val.images[:count]
predictions = [(f"{title}\nr {rows[name]['r']}, S {rows[name]['stride']}, IU {rows[name]['miou']:.2f}",
                predict(models[name], normalise(images, data.mean, data.std), device=args.device).argmax(axis=1))
               for name, title in NETS.items()]
figure = plot_segmentations(images, data.val.labels[:count], predictions,
                            os.path.join(args.out, "11_dilated_convolution.png"),
                            "Five validation scenes through five nets (r: receptive field in px, S: output stride, "
                            "IU: mean IU)")

# --- The lecture's claims, each decided by the table above --------------------------------------------
# The controls are held to FCN-8s, the deep net that reaches the same stride 8 through skips (lesson 10).
d, nopool, shallow, f32, f8 = (rows[n] for n in ("dilated", "nopool", "shallow2", "fcn32s", "fcn8s"))
small_window = nopool["r"] < f8["r"] and nopool["miou"] < f8["miou"] and nopool["things"] < f8["things"]
not_semantic = shallow["r"] < f8["r"] and shallow["shape"] < f8["shape"]
keeps_resolution = (d["stride"] < f32["stride"] and d["r"] >= f32["r"] and d["boundary"] > f32["boundary"]
                    and d["miou"] > f32["miou"])
late_ratio = {"lesson": d["late"] / f8["late"], "VGG-16": vgg["dilated"][1] / vgg["fcn8s"][1]}
total_ratio = {"lesson": d["mib"] / f8["mib"], "VGG-16": vgg["dilated"][0] / vgg["fcn8s"][0]}
print("\nclaims:")
print(f"  removing subsampling leaves a small window (r {nopool['r']} vs {f8['r']} px for FCN-8s) and loses accuracy "
      f"(mean IU {nopool['miou']:.3f} vs {f8['miou']:.3f}, things IU {nopool['things']:.3f} vs {f8['things']:.3f}): "
      f"{'yes' if small_window else 'NO'}")
print(f"  a shallower net (r {shallow['r']} px) is less semantic: it names the right shape of a thing less often than "
      f"FCN-8s ({shallow['shape']:.3f} vs {f8['shape']:.3f}): {'yes' if not_semantic else 'NO'}")
print(f"  dilation keeps stride {d['stride']} (vs {f32['stride']}) with a field of {d['r']} px (vs {f32['r']}) and "
      f"beats FCN-32s near boundaries ({d['boundary']:.3f} vs {f32['boundary']:.3f}) and in mean IU ({d['miou']:.3f} "
      f"vs {f32['miou']:.3f}): {'yes' if keeps_resolution else 'NO'}")
costs_more = min(late_ratio.values()) > 1
print(f"  not a panacea: stages 4-5 of the dilated net keep {late_ratio['lesson']:.2f}x the activation memory of "
      f"FCN-8s's ({late_ratio['VGG-16']:.2f}x with VGG-16's widths): {'yes' if costs_more else 'NO'}")
print(f"  (over the whole step only {total_ratio['lesson']:.2f}x and {total_ratio['VGG-16']:.2f}x: in these backbones the "
      "first, full-resolution stages, which both nets share, hold most of a step's memory; the cost grows with the "
      f"share of the network that runs dilated. Removing subsampling altogether costs "
      f"{nopool['mib'] / f8['mib']:.1f}x.)")
print(f"against FCN-8s, which reaches stride 8 through skips instead: mean IU {d['miou']:.3f} vs {f8['miou']:.3f}, "
      f"things IU {d['things']:.3f} vs {f8['things']:.3f}, right shape {d['shape']:.3f} vs {f8['shape']:.3f}, boundary acc. "
      f"{d['boundary']:.3f} vs {f8['boundary']:.3f} (no claim: the lecture offers both as answers; on 64-px scenes the "
      f"dilated net's stage 5 runs on 8x8 maps, where most taps of its dilation-4 kernels read padding, and after the "
      f"same training it names shapes {'less' if d['shape'] < shallow['shape'] else 'more'} often than even the "
      f"two-stage net, {d['shape']:.3f} vs {shallow['shape']:.3f})")
print(f"(recipes: every net trains {len(trained['fcn8s'][1])} epochs on the full scenes except the no-pooling net, "
      f"which runs every convolution at full resolution and so trains {len(trained['nopool'][1])} epochs on 24x24 crops "
      "(lessons/_lesson.py: CROPS, FULL_RECIPE_EPOCHS); its units see 19 px, so a crop still holds whole windows, but "
      "it had fewer steps)")
print(f"figure: {figure}; total {time.perf_counter() - started:.0f} s")
